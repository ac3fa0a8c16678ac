package maildir

import (
	"errors"

	"golang.org/x/sys/unix"
)

// applyCache takes sizes from the cache file by one merge pass over both
// lists, which are sorted by delivery time; within one second (usually one
// message) records are matched by name hash and inode. Cache entries
// override ,W= (they exist for such a name only after its last byte was
// checked, or a RETR proved ,W= wrong).
func (m *Mailbox) applyCache() {
	recs, err := readCache(m.root, cacheLimit(len(m.msgs)))
	if err != nil {
		if !errors.Is(err, unix.ENOENT) {
			m.log.Debug("size cache ignored", "err", err)
		}
		m.dirty = true
		return
	}
	count := len(recs) / recSize
	hits, k := 0, 0
	var big map[[2]uint64]int // for a crowded second, see below
	for lo := 0; lo < len(m.msgs); {
		ts := m.msgs[lo].ts
		hi := lo + 1
		for hi < len(m.msgs) && m.msgs[hi].ts == ts {
			hi++
		}
		for k < count && recordTS(recs, k) < ts {
			k++
		}
		ke := k
		for ke < count && recordTS(recs, ke) == ts {
			ke++
		}
		crowded := (hi-lo)*(ke-k) > 64
		if crowded {
			// Thousands delivered in one second (an import): a map
			// keeps this linear.
			clear(big)
			if big == nil {
				big = make(map[[2]uint64]int)
			}
			for j := k; j < ke; j++ {
				e := record(recs, j)
				big[[2]uint64{e.h, e.ino}] = j
			}
		}
		for i := lo; i < hi; i++ {
			x := &m.msgs[i]
			h := x.h
			j := -1
			if crowded {
				if jj, ok := big[[2]uint64{h, x.ino}]; ok {
					j = jj
				}
			} else {
				for jj := k; jj < ke; jj++ {
					if e := record(recs, jj); e.h == h && e.ino == x.ino {
						j = jj
						break
					}
				}
			}
			if j >= 0 {
				// A record no file could have (a negative or absurd size;
				// the cache is the Maildir owner's to write) is not
				// believed: the size is computed and the record replaced.
				if e := record(recs, j); plausibleSize(e.wsize, e.dsize) {
					x.size, x.src, x.dsize, x.mtime = e.wsize, srcCache, e.dsize, e.mtime
					hits++
				}
			}
		}
		k = ke
		lo = hi
	}
	if stale := count - hits; stale > 0 && stale >= count/8 {
		// Prune entries of messages that are gone, once there are enough
		// of them to matter: rewriting 100k entries because one message
		// was deleted would cost more than the stale entries do.
		m.dirty = true
	}
}
