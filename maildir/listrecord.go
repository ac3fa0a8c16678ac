package maildir

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"unsafe"

	"github.com/pop3d/pop3d/internal/wireform"
	"golang.org/x/sys/unix"
)

// The listing record's bytes (listcache.go says when it is trusted):
//
//	"pop3d-listing 2\n"   magic and version
//	at                    int64, ns: the clock just before the stamps were taken
//	2 stamps of 32 bytes  new/, cur/: device, inode, mtime ns, ctime ns
//	nmsgs, nnames, nderived, nalias   uint32 each
//	total                 int64: the sum of the messages' wire sizes (STAT)
//	nmsgs messages of 64 bytes: the snapshot's message structs as they lie
//	                      in memory (little-endian; see nativeListing)
//	nnames bytes of names (Mailbox.names)
//	nderived ids: uint16 length, bytes
//	nalias aliases: uint32 index, uint8 dir, uint16 length, name bytes
//	crc32c                uint32 over every byte before it
//
// The messages are read straight into the snapshot's []message and the
// names into the bytes that become Mailbox.names: at 100k messages a
// decoding copy of the 11 MB, and the fresh memory it needed, cost more
// than the rest of the login. Version 1 (64-byte entries decoded field by
// field) is no longer read; such a record is replaced at the next listing.
const (
	listingMagic  = "pop3d-listing 2\n"
	listMsgSize   = 64
	listingHeader = len(listingMagic) + 8 + 2*32 + 4*4 + 8
)

// nativeListing: the message struct has the record's layout (no padding,
// the fields at the offsets the format gives), so its memory can be the
// record's bytes. The byte order is checked at run time (littleEndian).
const nativeListing = unsafe.Sizeof(message{}) == listMsgSize &&
	unsafe.Offsetof(message{}.ts) == 0 && unsafe.Offsetof(message{}.ino) == 8 &&
	unsafe.Offsetof(message{}.h) == 16 && unsafe.Offsetof(message{}.size) == 24 &&
	unsafe.Offsetof(message{}.dsize) == 32 && unsafe.Offsetof(message{}.mtime) == 40 &&
	unsafe.Offsetof(message{}.off) == 48 && unsafe.Offsetof(message{}.nlen) == 52 &&
	unsafe.Offsetof(message{}.ulen) == 54 && unsafe.Offsetof(message{}.uid) == 56 &&
	unsafe.Offsetof(message{}.dir) == 60 && unsafe.Offsetof(message{}.src) == 61 &&
	unsafe.Offsetof(message{}.hasTS) == 62 && unsafe.Offsetof(message{}.dup) == 63

// listingSupported reports whether this machine reads and writes listing
// records: on a big-endian one (s390x) the directories are always listed.
func listingSupported() bool {
	x := uint16(1)
	return nativeListing && *(*byte)(unsafe.Pointer(&x)) == 1
}

// msgBytes is the memory of msgs as bytes: the record's form of them.
func msgBytes(msgs []message) []byte {
	if len(msgs) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(msgs))), len(msgs)*listMsgSize)
}

// listingRecord is a decoded record.
type listingRecord struct {
	stamp   listStamp
	names   string
	msgs    []message
	derived []string
	alias   map[int]location
	pooled  bool // msgs came from a SnapshotPool
}

var errListing = errors.New("listing record: malformed")

// listingCounts is the header after the stamps.
type listingCounts struct {
	msgs, names, derived, alias int
}

// parseListingHeader reads the fixed header and checks the counts against
// the record's total length.
func parseListingHeader(h []byte, size int64) (st listStamp, n listingCounts, total int64, err error) {
	if len(h) < listingHeader || string(h[:len(listingMagic)]) != listingMagic {
		return st, n, 0, errors.New("listing record: bad header or version")
	}
	le := binary.LittleEndian
	p := h[len(listingMagic):]
	st.at = int64(le.Uint64(p))
	p = p[8:]
	for d := range st.dirs {
		st.dirs[d] = dirStamp{dev: le.Uint64(p), ino: le.Uint64(p[8:]), mtime: int64(le.Uint64(p[16:])), ctime: int64(le.Uint64(p[24:]))}
		p = p[32:]
	}
	n = listingCounts{int(le.Uint32(p)), int(le.Uint32(p[4:])), int(le.Uint32(p[8:])), int(le.Uint32(p[12:]))}
	total = int64(le.Uint64(p[16:]))
	// Every count is bounded by the length before it decides an allocation.
	rest := size - int64(listingHeader) - 4
	if int64(n.msgs)*listMsgSize+int64(n.names) > rest || int64(n.derived) > rest || int64(n.alias) > rest || total < 0 {
		return st, n, total, errListing
	}
	return st, n, total, nil
}

// decodeListing verifies and decodes a whole record held in b, as a login
// reads one from its file.
func decodeListing(b []byte) (*listingRecord, error) {
	r, err := readListingHeader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, err
	}
	return r.load(nil)
}

// errStale: the record describes directories as they no longer are.
var errStale = errors.New("listing record: stale")

// openRecord is a listing record whose header is read, its body not yet.
type openRecord struct {
	src    io.ReaderAt // the whole record, size bytes
	size   int64
	fd     int         // src's file, for a record opened by openListing
	st     unix.Stat_t // fd's, when it was opened
	stamp  listStamp
	n      listingCounts
	total  int64 // the sum of the messages' wire sizes
	header []byte
}

// openListing opens the record named name in the directory open as dirfd
// and reads its header; errStale when use refuses its stamps. A record
// larger than limit is not read: the Maildir's owner can write it, and it
// must not decide what a login allocates. The caller closes r.fd.
func openListing(dirfd int, name string, limit int64, use func(listStamp) bool) (r *openRecord, err error) {
	if !listingSupported() {
		return nil, unix.ENOENT // as if there were none
	}
	fd, err := openatRetry(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, errors.New("listing record: not a regular file")
	}
	if st.Size > limit {
		return nil, fmt.Errorf("listing record: %d bytes, more than %d", st.Size, limit)
	}
	if r, err = readListingHeader(fdReaderAt(fd), st.Size); err != nil {
		return nil, err
	}
	r.fd, r.st = fd, st
	if !use(r.stamp) {
		return nil, errStale
	}
	return r, nil
}

// readListingHeader reads and checks the header of the record of size
// bytes in src.
func readListingHeader(src io.ReaderAt, size int64) (*openRecord, error) {
	if !listingSupported() {
		return nil, errors.New("listing record: not used on this machine")
	}
	r := &openRecord{src: src, size: size, fd: -1, header: make([]byte, listingHeader)}
	if _, err := src.ReadAt(r.header, 0); err != nil {
		return nil, fmt.Errorf("listing record: %w", err)
	}
	var err error
	if r.stamp, r.n, r.total, err = parseListingHeader(r.header, size); err != nil {
		return nil, err
	}
	return r, nil
}

// load reads and checks the body of the record into the memory it keeps:
// the messages straight into a []message, the names into the bytes that
// become the names string.
func (r *openRecord) load(pool *SnapshotPool) (*listingRecord, error) {
	rec := &listingRecord{stamp: r.stamp}
	rec.msgs, rec.pooled = pool.get(r.n.msgs)
	raw := msgBytes(rec.msgs)
	names := make([]byte, r.n.names)
	tail := make([]byte, r.size-int64(listingHeader+len(raw)+len(names)))
	rd := io.NewSectionReader(r.src, int64(listingHeader), r.size-int64(listingHeader))
	sum := crc32.Checksum(r.header, castagnoli)
	var err error
	for _, b := range [][]byte{raw, names} {
		if sum, err = readSummed(rd, b, sum); err != nil {
			return nil, fmt.Errorf("listing record: %w", err)
		}
	}
	if _, err := io.ReadFull(rd, tail); err != nil {
		return nil, fmt.Errorf("listing record: %w", err)
	}
	sum = crc32.Update(sum, castagnoli, tail[:len(tail)-4])
	if sum != binary.LittleEndian.Uint32(tail[len(tail)-4:]) {
		return nil, errors.New("listing record: checksum mismatch")
	}
	if len(names) > 0 {
		// names is never written again: the string may share it.
		rec.names = unsafe.String(unsafe.SliceData(names), len(names))
	}
	if err := rec.check(r.n, tail[:len(tail)-4]); err != nil {
		return nil, err
	}
	if t := wireTotal(rec.msgs); t != r.total {
		return nil, fmt.Errorf("%w: total %d, the messages add up to %d", errListing, r.total, t)
	}
	return rec, nil
}

// wireTotal is the sum of the messages' wire sizes as STAT counts it.
func wireTotal(msgs []message) int64 {
	var t int64
	for i := range msgs {
		t = wireform.AddSize(t, msgs[i].size)
	}
	return t
}

// fdReaderAt reads a file descriptor at offsets (io.ReaderAt: all of p,
// or an error).
type fdReaderAt int

func (f fdReaderAt) ReadAt(p []byte, off int64) (int, error) {
	total := 0
	for total < len(p) {
		n, err := unix.Pread(int(f), p[total:], off+int64(total))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return total, err
		}
		if n == 0 {
			return total, io.EOF
		}
		total += n
	}
	return total, nil
}

// readSummed fills b from r and adds it to the CRC-32C sum, in pieces that
// stay in the CPU's cache from the read to the checksum: 11 MB read back
// from memory cost a third of a 100k-message login.
func readSummed(r io.Reader, b []byte, sum uint32) (uint32, error) {
	for len(b) > 0 {
		piece := b[:min(len(b), 128<<10)]
		if _, err := io.ReadFull(r, piece); err != nil {
			return sum, err
		}
		sum = crc32.Update(sum, castagnoli, piece)
		b = b[len(piece):]
	}
	return sum, nil
}

// check verifies the messages read into r.msgs against r.names and decodes
// the ids and aliases from p, which must hold exactly them. The record is
// the Maildir owner's to write: nothing in it may reach outside new/ and
// cur/, inject a line, or be a value no snapshot has.
func (r *listingRecord) check(n listingCounts, p []byte) error {
	// No name may hold a '/' or NUL: checked once over all of them (a
	// check per name was half of a 100k-message login from the record).
	if strings.IndexByte(r.names, '/') >= 0 || strings.IndexByte(r.names, 0) >= 0 {
		return fmt.Errorf("%w: file names", errListing)
	}
	r.derived = make([]string, 0, n.derived)
	for range n.derived {
		if len(p) < 2 || len(p) < 2+int(binary.LittleEndian.Uint16(p)) {
			return errListing
		}
		l := int(binary.LittleEndian.Uint16(p))
		id := string(p[2 : 2+l])
		if !uidOK(id) {
			return fmt.Errorf("%w: unique-id %q", errListing, id)
		}
		r.derived, p = append(r.derived, id), p[2+l:]
	}
	raw := msgBytes(r.msgs)
	for i := range r.msgs {
		// The byte fields first, as bytes: a bool holding other than 0 or 1
		// must never be read as one.
		if f := raw[i*listMsgSize+60 : (i+1)*listMsgSize]; f[0] > inCur ||
			(sizeSrc(f[1]) != srcW && sizeSrc(f[1]) != srcCache && sizeSrc(f[1]) != srcComputed) || f[2] > 1 || f[3] > 1 {
			return fmt.Errorf("%w: message %d", errListing, i)
		}
		x := &r.msgs[i]
		if int(x.off)+int(x.nlen) > len(r.names) || x.ulen > x.nlen || x.uid < -1 || int(x.uid) >= len(r.derived) ||
			!plausibleSize(x.size, x.dsize) || (i > 0 && x.ts < r.msgs[i-1].ts) {
			return fmt.Errorf("%w: message %d", errListing, i)
		}
		if x.nlen == 0 || r.names[x.off] == '.' {
			return fmt.Errorf("%w: file name of message %d", errListing, i)
		}
	}
	for range n.alias {
		if len(p) < 7 || len(p) < 7+int(binary.LittleEndian.Uint16(p[5:])) {
			return errListing
		}
		i, d, l := int(binary.LittleEndian.Uint32(p)), p[4], int(binary.LittleEndian.Uint16(p[5:]))
		name := string(p[7 : 7+l])
		if i >= len(r.msgs) || d > inCur || !plainName(name) {
			return errListing
		}
		if r.alias == nil {
			r.alias = make(map[int]location)
		}
		r.alias[i] = location{dir: d, name: name}
		p = p[7+l:]
	}
	if len(p) != 0 {
		return errListing
	}
	return nil
}

// plainName reports whether n can be a directory entry pop3d lists: not
// empty, not starting with '.', no '/' or NUL.
func plainName(n string) bool {
	return n != "" && n[0] != '.' && !strings.ContainsAny(n, "/\x00")
}

// encodeListing is the record of the snapshot m holds, taken in stamp.
func (m *Mailbox) encodeListing(stamp listStamp) []byte {
	var b bytes.Buffer
	m.writeListing(&b, stamp) // a bytes.Buffer does not fail
	return b.Bytes()
}

// writeListing writes the record of the snapshot m holds, taken in stamp,
// through a small buffer: the record is as large as the snapshot, and
// fresh memory for a copy of it cost more than the writing. The names are
// written in message order (each message's off changed to match), so
// that the sessions that load the record read them in order for UIDL:
// in listing order, every UIDL line at 100k messages was a cache and TLB
// miss, a quarter of a LIST+UIDL.
func (m *Mailbox) writeListing(w io.Writer, stamp listStamp) error {
	le := binary.LittleEndian
	crc := crc32.New(castagnoli)
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 64<<10)
	var h []byte
	h = append(h, listingMagic...)
	h = le.AppendUint64(h, uint64(stamp.at))
	for _, d := range stamp.dirs {
		h = le.AppendUint64(h, d.dev)
		h = le.AppendUint64(h, d.ino)
		h = le.AppendUint64(h, uint64(d.mtime))
		h = le.AppendUint64(h, uint64(d.ctime))
	}
	nnames := 0
	for i := range m.msgs {
		nnames += int(m.msgs[i].nlen)
	}
	h = le.AppendUint32(h, uint32(len(m.msgs)))
	h = le.AppendUint32(h, uint32(nnames))
	h = le.AppendUint32(h, uint32(len(m.derived)))
	h = le.AppendUint32(h, uint32(len(m.alias)))
	h = le.AppendUint64(h, uint64(wireTotal(m.msgs)))
	bw.Write(h)
	// The messages go out a thousand at a time through a copy whose offs
	// are changed, never a copy of the whole snapshot.
	part := make([]message, 0, 1024)
	off := uint32(0)
	for i := 0; i < len(m.msgs); i += cap(part) {
		part = append(part[:0], m.msgs[i:min(i+cap(part), len(m.msgs))]...)
		for j := range part {
			part[j].off, off = off, off+uint32(part[j].nlen)
		}
		bw.Write(msgBytes(part))
	}
	for i := range m.msgs {
		bw.WriteString(m.name(&m.msgs[i]))
	}
	for _, id := range m.derived {
		bw.Write(le.AppendUint16(nil, uint16(len(id))))
		bw.WriteString(id)
	}
	for i, a := range m.alias {
		var e []byte
		e = le.AppendUint32(e, uint32(i))
		e = append(e, a.dir)
		e = le.AppendUint16(e, uint16(len(a.name)))
		bw.Write(append(e, a.name...))
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err := w.Write(le.AppendUint32(nil, crc.Sum32()))
	return err
}

// listingLimit bounds the record read for directories of these sizes. A
// directory takes at least 20 bytes an entry on the local filesystems
// (tmpfs counts 20, ext4 and xfs more with the name); a record takes 64
// plus the name, up to 255.
func listingLimit(dirSizes int64) int64 {
	return min(16*max(dirSizes, 0)+64<<10, maxCacheSize)
}
