package maildir

import (
	"errors"
	"io"
	"time"

	"golang.org/x/sys/unix"
)

// The listing record, pop3d-listing at the top of the Maildir, lets a login
// skip reading new/ and cur/ when neither changed since a snapshot: at 100k
// messages the two getdents runs were almost all of a repeat login. It holds
// the snapshot as listed and sized (before the UIDL sources of uidl.go are
// applied, which run at every login) together with what new/ and cur/
// looked like just before they were listed (listrecord.go has its bytes).
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
	racyMargin     = 2 * time.Second
	// listingMinMessages: a smaller snapshot is listed at every login. Its
	// two getdents calls cost no more than reading a record, and writing
	// one after every change (a session that deletes or marks messages
	// read removes it) would cost more than it saves.
	listingMinMessages = 256
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

// saveListing writes the record of a snapshot just taken in stamp. It is
// an optimisation: failing is logged only.
func (m *Mailbox) saveListing(stamp listStamp) {
	if !listingSupported() {
		return
	}
	for _, id := range m.derived {
		if len(id) > 0xffff {
			return
		}
	}
	write := func(w io.Writer) error { return m.writeListing(w, stamp) }
	if err := replaceFileWith(m.root, listingTmpName, listingName, write, false); err != nil {
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
