package maildir

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/bits"
)

// The size cache, pop3d-cache at the top of the Maildir, remembers wire sizes
// computed by reading files, so that later sessions need not read them
// again. It is binary with fixed-size records, because parsing a text form
// and comparing names cost half of the 100k-message login budget:
//
//	"pop3d-cache 3\n"  magic and version
//	count              uint32
//	count records of 48 bytes:
//	    ts int64, inode uint64, name hash uint64,
//	    disk size int64, mtime ns int64, wire size int64
//	crc32c             uint32 over every byte before it
//
// All integers little-endian. Records are sorted by (ts, hash), so that
// matching them to the snapshot is one merge pass by delivery time instead
// of a 100k-entry map.
//
// A record is used only when the delivery time, the inode (from getdents,
// free) and a 64-bit hash of the unique name all match; a collision would
// need the same inode and second as well. Size and mtime are recorded too but
// checked only when the message is opened (fstat of the open file, free):
// checking them at login would need a stat per message, 2-3 µs each here,
// which alone would cost three times the 70 ms budget for a 100k-message
// login. A Maildir message is never rewritten in place (the Maildir
// contract); if a program does it anyway, Open(i) notices the changed size
// or mtime, and the engine's CorrectSize fixes the entry after RETR. A wrong
// checksum, version or length makes the whole file ignored: it only costs
// time.
const (
	cacheName    = "pop3d-cache"
	cacheTmpName = "pop3d-cache.tmp"
	cacheMagic   = "pop3d-cache 3\n"
	recSize      = 48
	maxCacheSize = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// cacheEntry is one record.
type cacheEntry struct {
	ts    int64
	ino   uint64
	h     uint64 // nameHash of the unique name
	dsize int64
	mtime int64
	wsize int64
}

// nameHash is a 64-bit hash of a unique name for the cache key. It needs to
// be stable across versions and processes (so not hash/maphash) and fast on
// short strings; it is not a defence against chosen names, which the inode
// and time in the key make pointless.
func nameHash(s string) uint64 {
	const m = 0x9E3779B97F4A7C15
	h := uint64(len(s)) * m
	for len(s) >= 8 {
		h = mix(h ^ le64(s))
		s = s[8:]
	}
	var w uint64
	for i := len(s) - 1; i >= 0; i-- {
		w = w<<8 | uint64(s[i])
	}
	return mix(mix(h^w) ^ 0x2545F4914F6CDD1D)
}

func mix(h uint64) uint64 {
	hi, lo := bits.Mul64(h, 0x9E3779B97F4A7C15)
	return hi ^ lo
}

func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// cacheLimit is the largest cache file worth reading for a snapshot of n
// messages: twice the records it could need, plus slack. The file is
// writable by the mailbox's owner, so its size must not decide what a
// login allocates (a sparse 1 GiB file would cost 1 GiB a login); a larger
// one is ignored and rewritten.
func cacheLimit(n int) int64 {
	return int64(n)*recSize*2 + 4<<10
}

// readCache reads and verifies the cache file in the Maildir open as root,
// if it is at most limit bytes, and returns its records, undecoded. It is
// read as readSmallFile reads: never through a link, never blocking on a
// FIFO the Maildir's owner put in its place (that hung the login), regular
// files only.
func readCache(root int, limit int64) ([]byte, error) {
	b, err := readSmallFile(root, cacheName, min(limit, maxCacheSize))
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return parseCache(b)
}

// parseCache verifies a whole cache file and returns its records.
func parseCache(b []byte) ([]byte, error) {
	if len(b) < len(cacheMagic)+8 || string(b[:len(cacheMagic)]) != cacheMagic {
		return nil, errors.New("cache: bad header or version")
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, errors.New("cache: checksum mismatch")
	}
	count := int(binary.LittleEndian.Uint32(body[len(cacheMagic):]))
	recs := body[len(cacheMagic)+4:]
	if len(recs) != count*recSize {
		return nil, errors.New("cache: bad length")
	}
	return recs, nil
}

// record decodes record k of recs.
func record(recs []byte, k int) cacheEntry {
	r := recs[k*recSize : (k+1)*recSize]
	return cacheEntry{
		ts:    int64(binary.LittleEndian.Uint64(r)),
		ino:   binary.LittleEndian.Uint64(r[8:]),
		h:     binary.LittleEndian.Uint64(r[16:]),
		dsize: int64(binary.LittleEndian.Uint64(r[24:])),
		mtime: int64(binary.LittleEndian.Uint64(r[32:])),
		wsize: int64(binary.LittleEndian.Uint64(r[40:])),
	}
}

// recordTS decodes only the time of record k.
func recordTS(recs []byte, k int) int64 {
	return int64(binary.LittleEndian.Uint64(recs[k*recSize:]))
}

// writeCache replaces the cache file of the Maildir open as root (dir is
// its path, for messages) with ents atomically: temp file, fsync, rename.
// ents must be sorted by (ts, h). Callers hold the lock, so the fixed
// temporary name cannot be shared.
func writeCache(root int, dir string, ents []cacheEntry) error {
	b := make([]byte, 0, len(cacheMagic)+8+len(ents)*recSize)
	b = append(b, cacheMagic...)
	b = binary.LittleEndian.AppendUint32(b, 0) // count, filled in below
	n := uint32(0)
	for _, e := range ents {
		if e.wsize < 0 {
			continue
		}
		b = binary.LittleEndian.AppendUint64(b, uint64(e.ts))
		b = binary.LittleEndian.AppendUint64(b, e.ino)
		b = binary.LittleEndian.AppendUint64(b, e.h)
		b = binary.LittleEndian.AppendUint64(b, uint64(e.dsize))
		b = binary.LittleEndian.AppendUint64(b, uint64(e.mtime))
		b = binary.LittleEndian.AppendUint64(b, uint64(e.wsize))
		n++
	}
	binary.LittleEndian.PutUint32(b[len(cacheMagic):], n)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))

	// writeFileAt makes the temporary file afresh with O_EXCL after
	// removing whatever is in its place (a stale one, or a FIFO or link
	// planted there), and renameat replaces a FIFO or link at the final
	// name without following it.
	if err := writeFileAt(root, cacheTmpName, cacheName, b); err != nil {
		return fmt.Errorf("maildir %s: write size cache: %w", dir, err)
	}
	return nil
}
