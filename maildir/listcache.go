package maildir

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The listing record, pop3d-listing at the top of the Maildir, lets a login
// skip reading new/ and cur/ when neither changed since a snapshot: at 100k
// messages the two getdents runs were almost all of a repeat login. It holds
// the snapshot as listed and sized (before the UIDL sources of uidl.go are
// applied, which run at every login) together with what new/ and cur/
// looked like just before they were listed:
//
//	"pop3d-listing 1\n"   magic and version
//	at                    int64, ns: the clock just before the stamps were taken
//	2 stamps of 32 bytes  new/, cur/: device, inode, mtime ns, ctime ns
//	nmsgs, nnames, nderived, nalias   uint32 each
//	nmsgs messages of 64 bytes (see putMessage)
//	nnames bytes of names (Mailbox.names)
//	nderived ids: uint16 length, bytes
//	nalias aliases: uint32 index, uint8 dir, uint16 length, name bytes
//	crc32c                uint32 over every byte before it
//
// It is trusted only when all of these hold (listingFresh):
//   - new/ and cur/ are on ext4, xfs, btrfs or tmpfs, where a directory's
//     mtime and ctime change with every entry added, removed or renamed
//     (NFS caches attributes, FUSE and others promise nothing: there the
//     directories are always listed);
//   - both directories have the recorded device, inode, mtime and ctime
//     (a Maildir restored, rsynced or copied has other inodes or a newer
//     ctime, which no program can set back);
//   - git's racy-timestamp rule: each recorded mtime and ctime is older than
//     the record's time minus racyMargin. A change in the same timestamp
//     tick as the recorded one would leave the stamps as they were; a
//     change after the record was taken gets a timestamp at or after the
//     record's time, so it differs from a recorded one that is clearly
//     older. The margin covers filesystems with one-second timestamps
//     (ext4 with 128-byte inodes) and the kernel's coarse clock;
//   - the clock has not gone back before the record's time.
//
// The record is the Maildir owner's to write, like the size cache: every
// name is checked to be a plain file name (no '/', not "." or ".."), so a
// forged record can only name files in new/ and cur/ (opened without
// following links, as always); ids, indexes and sizes are range-checked.
// A record that fails any check is ignored and the directories are listed.
//
// It is written (without fsync: any version that survives a crash carries
// its own stamps and checksum, so an old one is ignored, never believed
// about a newer directory) right after a listing whose stamps did not change
// while it ran, and removed when a session changes the Maildir (Commit with
// deletions or moves) or learns that a size in it is wrong.
const (
	listingName    = "pop3d-listing"
	listingTmpName = "pop3d-listing.tmp"
	listingMagic   = "pop3d-listing 1\n"
	listMsgSize    = 64
	racyMargin     = 2 * time.Second
)

// dirStamp is what tells a changed directory.
type dirStamp struct {
	dev, ino     uint64
	mtime, ctime int64 // ns
}

// listStamp is the state of new/ and cur/ a listing was taken in.
type listStamp struct {
	at   int64 // ns, taken before the stamps
	dirs [2]dirStamp
}

// localFS reports whether a filesystem of this type (statfs f_type) is
// local, with directory timestamps that change with every entry.
func localFS(fsType int64) bool {
	switch uint32(fsType) {
	case unix.EXT4_SUPER_MAGIC, unix.XFS_SUPER_MAGIC, unix.BTRFS_SUPER_MAGIC, unix.TMPFS_MAGIC:
		return true
	}
	return false
}

// statDirs returns the stamps of new/ and cur/ and whether both are on a
// local filesystem; ok is false when either cannot be had.
func statDirs(fds [2]int) (st [2]dirStamp, local, ok bool) {
	local = true
	for d, fd := range fds {
		var s unix.Stat_t
		var fs unix.Statfs_t
		if unix.Fstat(fd, &s) != nil || unix.Fstatfs(fd, &fs) != nil {
			return st, false, false
		}
		st[d] = dirStamp{dev: s.Dev, ino: s.Ino, mtime: s.Mtim.Nano(), ctime: s.Ctim.Nano()}
		local = local && localFS(int64(fs.Type)) // its width differs by GOARCH
	}
	return st, local, true
}

// listingFresh decides whether a record taken in rec still describes
// directories whose stamps are now cur, at time now (ns).
func listingFresh(rec listStamp, cur [2]dirStamp, now int64) bool {
	if now < rec.at || rec.dirs != cur {
		return false
	}
	limit := rec.at - int64(racyMargin)
	for _, d := range rec.dirs {
		if d.mtime >= limit || d.ctime >= limit {
			return false // racy: a change in the same tick would not show
		}
	}
	return true
}

// listNow is the clock of listing records.
func (m *Mailbox) listNow() int64 {
	if m.opts.testNow != nil {
		return m.opts.testNow().UnixNano()
	}
	return time.Now().UnixNano()
}

// hook calls the test hook at a named point of the login, if one is set.
func (m *Mailbox) hook(point string) {
	if m.opts.testHook != nil {
		m.opts.testHook(point)
	}
}

// listingLimit bounds the record read for directories of these sizes: the
// record must not decide what a login allocates (the Maildir's owner can
// write it). A directory takes at least 20 bytes an entry on the local
// filesystems (tmpfs counts 20, ext4 and xfs more with the name); a record
// takes 64 plus the name, up to 255.
func listingLimit(dirSizes int64) int64 {
	return min(16*max(dirSizes, 0)+64<<10, maxCacheSize)
}

// loadListing replaces the listing of new/ and cur/ by the record when it is
// fresh for the stamps cur taken at now. It reports whether it did.
func (m *Mailbox) loadListing(cur [2]dirStamp, now int64, dirSizes int64) bool {
	b, err := readSmallFile(m.root, listingName, listingLimit(dirSizes))
	if err != nil {
		if !errors.Is(err, unix.ENOENT) {
			m.log.Debug("listing record ignored", "err", err)
		}
		return false
	}
	rec, err := decodeListing(b)
	if err != nil {
		m.log.Debug("listing record ignored", "err", err)
		return false
	}
	if !listingFresh(rec.stamp, cur, now) {
		return false
	}
	m.names, m.msgs, m.derived, m.alias = rec.names, rec.msgs, rec.derived, rec.alias
	return true
}

// listingRecord is a decoded record.
type listingRecord struct {
	stamp   listStamp
	names   string
	msgs    []message
	derived []string
	alias   map[int]location
}

var errListing = errors.New("listing record: malformed")

// decodeListing verifies and decodes a whole record.
func decodeListing(b []byte) (*listingRecord, error) {
	const head = len(listingMagic) + 8 + 2*32 + 16
	if len(b) < head+4 || string(b[:len(listingMagic)]) != listingMagic {
		return nil, errors.New("listing record: bad header or version")
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, errors.New("listing record: checksum mismatch")
	}
	r := &listingRecord{}
	p := body[len(listingMagic):]
	u64 := func() uint64 { v := binary.LittleEndian.Uint64(p); p = p[8:]; return v }
	u32 := func() uint32 { v := binary.LittleEndian.Uint32(p); p = p[4:]; return v }
	r.stamp.at = int64(u64())
	for d := range r.stamp.dirs {
		r.stamp.dirs[d] = dirStamp{dev: u64(), ino: u64(), mtime: int64(u64()), ctime: int64(u64())}
	}
	nmsgs, nnames, nderived, nalias := int(u32()), int(u32()), int(u32()), int(u32())
	if nmsgs*listMsgSize+nnames > len(p) || nderived > len(p) || nalias > len(p) {
		return nil, errListing
	}
	msgPart, p := p[:nmsgs*listMsgSize], p[nmsgs*listMsgSize:]
	r.names, p = string(p[:nnames]), p[nnames:]
	// No name may hold a '/' or NUL: checked once over all of them (a
	// check per name was half of a 100k-message login from the record).
	if strings.IndexByte(r.names, '/') >= 0 || strings.IndexByte(r.names, 0) >= 0 {
		return nil, fmt.Errorf("%w: file names", errListing)
	}
	r.derived = make([]string, 0, nderived)
	for range nderived {
		if len(p) < 2 || len(p) < 2+int(binary.LittleEndian.Uint16(p)) {
			return nil, errListing
		}
		n := int(binary.LittleEndian.Uint16(p))
		id := string(p[2 : 2+n])
		if !uidOK(id) {
			return nil, fmt.Errorf("%w: unique-id %q", errListing, id)
		}
		r.derived, p = append(r.derived, id), p[2+n:]
	}
	r.msgs = make([]message, nmsgs)
	for i := range r.msgs {
		x, ok := getMessage(msgPart[i*listMsgSize:])
		if !ok || int(x.off)+int(x.nlen) > len(r.names) || int(x.uid) >= len(r.derived) ||
			(i > 0 && x.ts < r.msgs[i-1].ts) {
			return nil, fmt.Errorf("%w: message %d", errListing, i)
		}
		r.msgs[i] = x
		if x.nlen == 0 || r.names[x.off] == '.' {
			return nil, fmt.Errorf("%w: file name of message %d", errListing, i)
		}
	}
	for range nalias {
		if len(p) < 7 || len(p) < 7+int(binary.LittleEndian.Uint16(p[5:])) {
			return nil, errListing
		}
		i, d, n := int(binary.LittleEndian.Uint32(p)), p[4], int(binary.LittleEndian.Uint16(p[5:]))
		name := string(p[7 : 7+n])
		if i >= nmsgs || d > inCur || !plainName(name) {
			return nil, errListing
		}
		if r.alias == nil {
			r.alias = make(map[int]location)
		}
		r.alias[i] = location{dir: d, name: name}
		p = p[7+n:]
	}
	if len(p) != 0 {
		return nil, errListing
	}
	return r, nil
}

// plainName reports whether n can be a directory entry pop3d lists: not
// empty, not starting with '.', no '/' or NUL.
func plainName(n string) bool {
	return n != "" && n[0] != '.' && !strings.ContainsAny(n, "/\x00")
}

// putMessage appends the 64-byte form of a snapshot entry.
func putMessage(b []byte, x *message) []byte {
	le := binary.LittleEndian
	b = le.AppendUint64(b, uint64(x.ts))
	b = le.AppendUint64(b, x.ino)
	b = le.AppendUint64(b, x.h)
	b = le.AppendUint64(b, uint64(x.size))
	b = le.AppendUint64(b, uint64(x.dsize))
	b = le.AppendUint64(b, uint64(x.mtime))
	b = le.AppendUint32(b, x.off)
	b = le.AppendUint16(b, x.nlen)
	b = le.AppendUint16(b, x.ulen)
	b = le.AppendUint32(b, uint32(x.uid))
	var flags uint8
	if x.hasTS {
		flags |= 1
	}
	if x.dup {
		flags |= 2
	}
	return append(b, x.dir, flags, 0, 0)
}

// getMessage decodes one 64-byte entry; ok is false for values no snapshot
// has.
func getMessage(r []byte) (x message, ok bool) {
	le := binary.LittleEndian
	x = message{
		ts: int64(le.Uint64(r)), ino: le.Uint64(r[8:]), h: le.Uint64(r[16:]),
		size: int64(le.Uint64(r[24:])), dsize: int64(le.Uint64(r[32:])), mtime: int64(le.Uint64(r[40:])),
		off: le.Uint32(r[48:]), nlen: le.Uint16(r[52:]), ulen: le.Uint16(r[54:]), uid: int32(le.Uint32(r[56:])),
		dir: r[60], hasTS: r[61]&1 != 0, dup: r[61]&2 != 0, src: srcCache,
	}
	ok = x.dir <= inCur && r[61]&^3 == 0 && x.ulen <= x.nlen && x.uid >= -1 && plausibleSize(x.size, x.dsize)
	return x, ok
}

// encodeListing is the record of the snapshot m holds, taken in stamp.
func (m *Mailbox) encodeListing(stamp listStamp) []byte {
	n := len(listingMagic) + 8 + 64 + 16 + len(m.msgs)*listMsgSize + len(m.names) + 4
	for _, id := range m.derived {
		n += 2 + len(id)
	}
	for _, a := range m.alias {
		n += 7 + len(a.name)
	}
	le := binary.LittleEndian
	b := make([]byte, 0, n)
	b = append(b, listingMagic...)
	b = le.AppendUint64(b, uint64(stamp.at))
	for _, d := range stamp.dirs {
		b = le.AppendUint64(b, d.dev)
		b = le.AppendUint64(b, d.ino)
		b = le.AppendUint64(b, uint64(d.mtime))
		b = le.AppendUint64(b, uint64(d.ctime))
	}
	b = le.AppendUint32(b, uint32(len(m.msgs)))
	b = le.AppendUint32(b, uint32(len(m.names)))
	b = le.AppendUint32(b, uint32(len(m.derived)))
	b = le.AppendUint32(b, uint32(len(m.alias)))
	for i := range m.msgs {
		b = putMessage(b, &m.msgs[i])
	}
	b = append(b, m.names...)
	for _, id := range m.derived {
		b = le.AppendUint16(b, uint16(len(id)))
		b = append(b, id...)
	}
	for i, a := range m.alias {
		b = le.AppendUint32(b, uint32(i))
		b = append(b, a.dir)
		b = le.AppendUint16(b, uint16(len(a.name)))
		b = append(b, a.name...)
	}
	return le.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// saveListing writes the record of a snapshot just taken in stamp. It is
// an optimisation: failing is logged only.
func (m *Mailbox) saveListing(stamp listStamp) {
	for _, id := range m.derived {
		if len(id) > 0xffff {
			return
		}
	}
	if err := replaceFileAt(m.root, listingTmpName, listingName, m.encodeListing(stamp), false); err != nil {
		m.log.Warn("listing record not saved", "err", err)
	}
}

// dropListing removes the record: the session changed the Maildir or a size
// in the record proved wrong.
func (m *Mailbox) dropListing() {
	if err := unix.Unlinkat(m.root, listingName, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		m.log.Warn("listing record not removed", "err", err)
	}
}
