package maildir

import (
	"cmp"
	"context"
	"errors"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// snapshot lists new/ and cur/, orders the messages, gives each a unique id
// and a wire size (from ,W=, the cache, or by reading the file).
//
// new/ is listed before cur/: a message moved from new/ to cur/ by another
// reader while we list is then seen twice (and deduplicated by inode), never
// missed.
func (m *Mailbox) snapshot(ctx context.Context) error {
	fds := m.fds
	// A capacity hint from the directories' sizes (on ext4 and XFS about
	// 40-70 bytes per entry), so that appends rarely copy.
	sizes := [2]int64{dirSize(fds[0]), dirSize(fds[1])}
	hint := snapshotHint(sizes[0] + sizes[1])
	var arena strings.Builder
	arena.Grow(int(max(hint, 4<<10)))
	msgs := make([]message, 0, hint/64+16)
	for d, fd := range fds {
		err := readDir(fd, sizes[d], &arena, func(ino uint64, typ uint8, off, nlen int) {
			// The builder was grown ahead: String does not copy.
			name := arena.String()[off : off+nlen]
			if typ != unix.DT_REG && typ != unix.DT_UNKNOWN {
				m.log.Debug("not a regular file, ignored", "file", subdirs[d]+"/"+name)
				return
			}
			ni := parseName(name)
			x := message{ino: ino, off: uint32(off), nlen: uint16(nlen), ulen: uint16(ni.uniqLen), uid: -1,
				dir: uint8(d), ts: ni.ts, hasTS: ni.hasTS, h: nameHash(name[:ni.uniqLen])}
			if !ni.hasTS || typ == unix.DT_UNKNOWN {
				// The only stats of a snapshot: names without a delivery
				// time (ordered by mtime) and filesystems without d_type.
				var st unix.Stat_t
				if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
					if !errors.Is(err, unix.ENOENT) {
						m.log.Warn("cannot stat message, ignored", "file", subdirs[d]+"/"+name, "err", err)
					}
					return
				}
				if st.Mode&unix.S_IFMT != unix.S_IFREG {
					return
				}
				if !ni.hasTS {
					x.ts = st.Mtim.Sec
				}
				x.dsize, x.mtime = st.Size, st.Mtim.Nano()
			}
			if ni.hasW {
				x.size, x.src = ni.wsize, srcW
			}
			msgs = append(msgs, x)
		})
		if err != nil {
			return wrapPath(m.dir, subdirs[d], err)
		}
	}
	m.names = arena.String()
	namesCap := arena.Cap()

	msgs = m.sortMessages(msgs)
	msgs = m.dedupe(msgs)
	m.msgs = msgs
	m.applyCache()

	// Sizes not from the cache. Dovecot's ,W= counts a message without a
	// final newline without the CRLF that RETR appends (seen with
	// dovecot-lda 2.3.19: 22 bytes ending in "no newline" got W=24, the
	// wire form is 26), so the last byte is checked once and the result
	// cached like a computed size.
	var todo []int
	for i := range m.msgs {
		if s := m.msgs[i].src; s == srcNone || s == srcW {
			todo = append(todo, i)
		}
	}
	if len(todo) > 0 {
		if err := m.computeSizes(ctx, fds, todo); err != nil {
			return err
		}
		m.dirty = true
		// Drop what could not be read: it vanished, or is unreadable and
		// was logged. It is not touched, and shows in a later session.
		// Second names are keyed by index: they move with their message,
		// or Commit would unlink one of a message the user kept.
		out := m.msgs[:0]
		var alias map[int]location
		for i, x := range m.msgs {
			if x.src == srcNone {
				continue
			}
			if a, ok := m.alias[i]; ok {
				if alias == nil {
					alias = make(map[int]location)
				}
				alias[len(out)] = a
			}
			out = append(out, x)
		}
		clear(m.msgs[len(out):])
		m.msgs = out
		m.alias = alias
	}
	m.resolveUIDCollisions(nil)
	m.trim(namesCap)
	return nil
}

// snapshotHint is the capacity hint, in bytes of names, for directories
// of dirSizes bytes in all. It is capped (about 8 MiB, enough for 100k
// messages) because an ext4 directory never shrinks: one that once held
// a million entries would otherwise make every login allocate 64 MiB of
// names and as much of messages. A larger mailbox grows by appending.
func snapshotHint(dirSizes int64) int64 {
	return min(max(dirSizes, 0), maxHint)
}

const maxHint = 8 << 20

// trim gives back what the capacity hints over-estimated: the snapshot
// lives as long as the session, and for the many small mailboxes of a busy
// server the hint (a directory's size is at least one block) was most of
// each idle session's memory.
//
// Only a gross over-estimate is worth the copy (a directory that once held
// many more entries keeps its size): on a large mailbox a moderate one costs
// less memory than the copy costs time.
func (m *Mailbox) trim(namesCap int) {
	if cap(m.msgs) > 2*len(m.msgs)+16 {
		m.msgs = slices.Clone(m.msgs)
	}
	if n := len(m.names); namesCap > 2*n+1024 {
		m.names = strings.Clone(m.names)
	}
}

// sortMessages orders msgs by delivery time, unique name, cur/ before new/,
// file name. Times and indexes are packed into uint64s and radix-sorted by
// time (a comparison sort was a sixth of a 100k login); only runs of equal
// times (rare) then need the full comparison. The messages are then
// permuted in place.
func (m *Mailbox) sortMessages(msgs []message) []message {
	const idxBits = 27 // 134M messages
	full := func(a, b *message) int {
		if c := cmp.Compare(a.ts, b.ts); c != 0 {
			return c
		}
		if c := strings.Compare(m.uniq(a), m.uniq(b)); c != 0 {
			return c
		}
		if c := cmp.Compare(b.dir, a.dir); c != 0 { // cur/ first
			return c
		}
		return strings.Compare(m.name(a), m.name(b))
	}
	keys := make([]uint64, len(msgs))
	packed := len(msgs) < 1<<idxBits
	for i := range msgs {
		ts := msgs[i].ts
		if ts < 0 || ts >= 1<<(64-idxBits) {
			packed = false
			break
		}
		keys[i] = uint64(ts)<<idxBits | uint64(i)
	}
	mask := uint64(1<<idxBits - 1)
	if !packed {
		mask = ^uint64(0)
	}
	idx := func(k uint64) int { return int(k & mask) }
	if packed {
		radixSortTS(keys, idxBits)
		for lo := 0; lo < len(keys); {
			hi := lo + 1
			for hi < len(keys) && keys[hi]>>idxBits == keys[lo]>>idxBits {
				hi++
			}
			if hi-lo > 1 {
				slices.SortFunc(keys[lo:hi], func(a, b uint64) int { return full(&msgs[idx(a)], &msgs[idx(b)]) })
			}
			lo = hi
		}
	} else {
		for i := range keys {
			keys[i] = uint64(i)
		}
		slices.SortFunc(keys, func(a, b uint64) int { return full(&msgs[a], &msgs[b]) })
	}
	// Apply the permutation in place, cycle by cycle (a second array of
	// messages would be 5-6 MB of fresh memory at 100k).
	const done = 1<<64 - 1
	for i := range keys {
		if keys[i] == done {
			continue
		}
		tmp := msgs[i]
		j := i
		for {
			k := idx(keys[j])
			keys[j] = done
			if k == i {
				msgs[j] = tmp
				break
			}
			msgs[j] = msgs[k]
			j = k
		}
	}
	return msgs
}

// radixSortTS sorts keys by their bits above low, stably (least significant
// digit first, 8 bits a pass, skipping digits that are the same in every
// key: delivery times of one mailbox span a few years, so this is 3-4
// passes).
func radixSortTS(keys []uint64, low uint) {
	if len(keys) < 2 {
		return
	}
	lo, hi := keys[0]>>low, keys[0]>>low
	for _, k := range keys {
		lo, hi = min(lo, k>>low), max(hi, k>>low)
	}
	span := hi - lo
	tmp := make([]uint64, len(keys))
	src, dst := keys, tmp
	for shift := uint(0); shift < 64 && span>>shift != 0; shift += 8 {
		var count [257]int
		for _, k := range src {
			count[((k>>low-lo)>>shift)&0xff+1]++
		}
		if count[((src[0]>>low-lo)>>shift)&0xff+1] == len(src) {
			continue // every key has this digit
		}
		for i := 1; i < 257; i++ {
			count[i] += count[i-1]
		}
		for _, k := range src {
			d := ((k>>low - lo) >> shift) & 0xff
			dst[count[d]] = k
			count[d]++
		}
		src, dst = dst, src
	}
	if &src[0] != &keys[0] {
		copy(keys, src)
	}
}

// dedupe handles the same unique name listed more than once. The same inode
// twice is one message seen during a rename by another program: keep one
// (cur/ sorts first). Different inodes are different messages that share a
// unique name (a broken delivery): keep both, the later with an id derived
// from its directory and file name, so that unique ids stay unique.
func (m *Mailbox) dedupe(msgs []message) []message {
	out := msgs[:0]
	// Equal unique names are adjacent unless their time came from mtimes.
	var byName map[string]int
	for _, x := range msgs {
		if len(out) > 0 {
			p := &out[len(out)-1]
			if p.ts == x.ts && m.uniq(p) == m.uniq(&x) {
				if p.ino == x.ino {
					m.addAlias(len(out)-1, &x)
					continue
				}
				x.uid, x.dup = m.addID(derivedUID(dupKey(x.dir, m.name(&x)))), true
			}
		}
		if !x.hasTS && x.uid < 0 {
			if byName == nil {
				byName = make(map[string]int)
			}
			if k, ok := byName[m.uniq(&x)]; ok {
				if out[k].ino == x.ino {
					m.addAlias(k, &x)
					continue
				}
				x.uid, x.dup = m.addID(derivedUID(dupKey(x.dir, m.name(&x)))), true
			} else {
				byName[m.uniq(&x)] = len(out)
			}
		}
		out = append(out, x)
	}
	clear(msgs[len(out):])
	return out
}

// addAlias remembers a second name of message i's file (a hard link left by
// a move caught midway), so that deleting the message removes both.
func (m *Mailbox) addAlias(i int, x *message) {
	if m.alias == nil {
		m.alias = make(map[int]location)
	}
	m.alias[i] = location{dir: x.dir, name: m.name(x)}
}

// addID stores a derived unique-id and returns its index for message.uid.
func (m *Mailbox) addID(id string) int32 {
	m.derived = append(m.derived, id)
	return int32(len(m.derived) - 1)
}

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

// computeSizes reads the files of the messages at indexes todo with a
// bounded pool of workers and sets their wire sizes. Messages that cannot be
// read keep srcNone.
func (m *Mailbox) computeSizes(ctx context.Context, fds [2]int, todo []int) error {
	// More workers than CPUs: on a cold cache or NFS the reads wait.
	// A few files are read by one worker: each holds a 64 KiB buffer, and a
	// small mailbox gains nothing from parallel reads.
	workers := min(max(4*runtime.GOMAXPROCS(0), 8), 32, (len(todo)+filesPerWorker-1)/filesPerWorker)
	var shortEOF [2]bool
	for d, fd := range fds {
		var st unix.Statfs_t
		shortEOF[d] = unix.Fstatfs(fd, &st) == nil && shortReadIsEOF(int64(st.Type)) // its width differs by GOARCH
	}
	var next int
	var mu sync.Mutex // guards next
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			for {
				if ctx.Err() != nil {
					return
				}
				mu.Lock()
				k := next
				next++
				mu.Unlock()
				if k >= len(todo) {
					return
				}
				x := &m.msgs[todo[k]] // each worker writes only its own entries
				name := m.name(x)
				var size, dsize, mtime int64
				var err error
				if x.src == srcW {
					var st unix.Stat_t
					size, st, err = fileWCheck(fds[x.dir], name, x.size)
					dsize, mtime = st.Size, st.Mtim.Nano()
					if err == nil && !plausibleSize(size, dsize) {
						// A ,W= no file of this size can have: the
						// name lies (or was made to); read the file.
						m.log.Debug("implausible ,W= size in the file name, computed", "file", subdirs[x.dir]+"/"+name,
							"w", size, "disk", dsize)
						size, dsize, err = fileWireSize(fds[x.dir], name, buf, shortEOF[x.dir])
						mtime = 0
					}
				} else {
					size, dsize, err = fileWireSize(fds[x.dir], name, buf, shortEOF[x.dir])
				}
				if err != nil {
					x.src = srcNone
					if !errors.Is(err, unix.ENOENT) {
						m.log.Warn("cannot read message, left out of this session", "file", subdirs[x.dir]+"/"+name, "err", err)
					}
					continue
				}
				x.size, x.src, x.dsize, x.mtime = size, srcComputed, dsize, mtime
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// fileWireSize reads the file name in the directory dirfd and returns its
// wire size and its size on disk.
//
// With shortEOF (see shortReadIsEOF) there is no fstat: a read of a
// regular file there returns less than asked only at the end of the file,
// so the loop ends on a short read, and open, read, close are the only
// system calls for a typical message (fstat and the read returning 0 made
// this 40% slower on 100k files). Elsewhere it reads until a read returns
// 0. What is not a regular file despite its directory entry (replaced
// meanwhile) is caught anyway: a directory fails with EISDIR, a FIFO opened
// O_NONBLOCK reads as empty or EAGAIN, and maxMessage bounds an endless
// device.
func fileWireSize(dirfd int, name string, buf []byte, shortEOF bool) (int64, int64, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, 0, err
	}
	defer unix.Close(fd)
	var w wireCounter
	for {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, 0, err
		}
		w.write(buf[:n])
		if n == 0 || (shortEOF && n < len(buf)) {
			return w.size(), w.n, nil
		}
		if w.n > maxMessage {
			return 0, 0, errors.New("larger than 64 GiB")
		}
	}
}

// shortReadIsEOF reports whether on a filesystem of this type (statfs
// f_type) a read of a regular file returns less than asked only at the
// end of the file. That holds for local filesystems read through the page
// cache; FUSE (sshfs, direct_io), CIFS and others may return short reads in
// the middle of a file, which would undercount a size that is then cached.
func shortReadIsEOF(fsType int64) bool {
	switch uint32(fsType) {
	case unix.EXT4_SUPER_MAGIC, unix.XFS_SUPER_MAGIC, unix.BTRFS_SUPER_MAGIC, unix.TMPFS_MAGIC:
		return true
	}
	return false
}

// filesPerWorker is how many files to size make one more reader worthwhile.
const filesPerWorker = 16

// maxMessage bounds the bytes read to size one message.
const maxMessage = 64 << 30

// plausibleSize reports whether a file of disk octets can have the wire
// size wire: at least its own length (line endings only grow), at most
// twice that plus a final CRLF (every byte a bare LF), and no larger than
// a message pop3d would read. Sizes from ,W= and from the cache are used
// only then; otherwise the file is read.
func plausibleSize(wire, disk int64) bool {
	return disk >= 0 && disk <= maxMessage && wire >= disk && wire <= 2*disk+2
}

// fileWCheck returns the wire size of a file whose name carries Dovecot's
// ,W=w: w, plus 2 when the file does not end in LF.
func fileWCheck(dirfd int, name string, w int64) (int64, unix.Stat_t, error) {
	var st unix.Stat_t
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, st, err
	}
	defer unix.Close(fd)
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, st, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return 0, st, errors.New("not a regular file")
	}
	if st.Size == 0 {
		return 0, st, nil
	}
	var b [1]byte
	for {
		n, err := unix.Pread(fd, b[:], st.Size-1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, st, err
		}
		if n == 1 && b[0] != '\n' {
			w += 2
		}
		return w, st, nil
	}
}

// relocate finds message i again after its file disappeared under the
// listed name: another program renamed it (flags, new/ -> cur/). It must
// have the same unique name and inode. One fresh listing serves the misses
// of the next two seconds, so that a client fetching thousands of messages
// deleted under it does not relist the Maildir for each; force relists
// anyway (for a listing that proved out of date). Callers hold m.mu.
func (m *Mailbox) relocate(i int, force bool) (found, relisted bool) {
	if force || m.fresh == nil || time.Since(m.freshAt) > 2*time.Second {
		m.fresh, m.freshAt = m.listAll(m.fds), time.Now()
		m.relists++
		relisted = true
	}
	l, ok := m.fresh.find(m.uniq(&m.msgs[i]), m.msgs[i].ino)
	if !ok {
		return false, relisted
	}
	if m.moved == nil {
		m.moved = make(map[int]location)
	}
	m.moved[i] = l
	return true, relisted
}

// listing is where every file in new/ and cur/ is now, by unique name and
// inode: two messages may share a unique name (a broken delivery), and each
// must be found again.
type listing map[listKey]location

type listKey struct {
	u   string
	ino uint64
}

// find returns the place of the file with unique name u and inode ino.
func (l listing) find(u string, ino uint64) (location, bool) {
	p, ok := l[listKey{u, ino}]
	return p, ok
}

// listAll lists new/ and cur/ afresh.
func (m *Mailbox) listAll(fds [2]int) listing {
	l := make(listing)
	for d, fd := range fds {
		// The descriptors from login were listed before (the snapshot, or
		// an earlier relisting): start from the beginning.
		if _, err := unix.Seek(fd, 0, io.SeekStart); err != nil {
			m.log.Warn("cannot list directory", "dir", subdirs[d], "err", err)
			continue
		}
		var arena strings.Builder
		err := readDir(fd, dirSize(fd), &arena, func(ino uint64, _ uint8, off, nlen int) {
			n := arena.String()[off : off+nlen]
			l[listKey{n[:parseName(n).uniqLen], ino}] = location{dir: uint8(d), name: n}
		})
		if err != nil {
			m.log.Warn("cannot list directory", "dir", subdirs[d], "err", err)
		}
	}
	return l
}

// wrapPath adds the Maildir and subdirectory to err, keeping it matchable.
func wrapPath(dir, sub string, err error) error {
	return &pathError{dir: dir, sub: sub, err: err}
}

type pathError struct {
	dir, sub string
	err      error
}

func (e *pathError) Error() string { return "maildir " + e.dir + ": " + e.sub + "/: " + e.err.Error() }
func (e *pathError) Unwrap() error { return e.err }
