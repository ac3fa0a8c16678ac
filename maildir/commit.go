package maildir

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Commit is the UPDATE state: it unlinks the messages in deleted, gives the
// ones in retrieved (and not deleted) the S flag and moves them from new/ to
// cur/ when Options.MarkRead is set, fsyncs the directories, and releases
// the mailbox. Indexes are 0-based; out-of-range and repeated ones are
// ignored.
//
// A message renamed by another program during the session is found again by
// unique name and inode and still deleted; one that vanished is simply gone.
// A file is unlinked only under the name it was listed with while that name
// still holds the message's inode, or under the name a fresh listing shows
// with the same unique name and inode; a second name (hard link) only while
// it holds the same inode as the file just unlinked; renames (S flag) find
// the file the same way, stay within the Maildir and never replace an
// existing file; so no message is lost or flagged that was not marked. If unlinks fail, the error is a *CommitError
// counting them, and everything else was still done.
//
// Commit works on the directories opened at login, never on paths. If the
// Maildir is no longer at its path (moved away, replaced, removed), it
// changes nothing and, when messages were to be deleted, returns a
// *CommitError wrapping ErrGone: the client must not be told that they
// are gone. CommitError.Permanent tells failures a retry will not cure.
//
// Once started, Commit does not stop for ctx: each step is atomic, and
// finishing the user's QUIT is better than leaving half of it.
func (m *Mailbox) Commit(ctx context.Context, deleted, retrieved []int) error {
	if len(deleted) > 0 || len(retrieved) > 0 {
		// Nothing to do needs no messages: a lazy snapshot stays unread
		// (and its state file unpruned) when the session only asked STAT.
		m.ensure()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done {
		return errors.New("maildir: mailbox already closed")
	}
	m.done = true
	defer m.closeDirs()
	defer m.lk.release()
	defer m.releaseMsgs()
	if m.closeLazy() {
		// Not read, so nothing was asked of any message: there is nothing
		// to change, and the state file must not be pruned to the empty
		// set of messages read.
		return nil
	}
	if m.loadErr != nil {
		return m.loadErr
	}
	if m.listingBad || len(deleted) > 0 || (m.opts.MarkRead && len(retrieved) > 0) {
		// Before any change: a record must never outlive the listing it
		// describes, even if the change leaves the directories' stamps
		// as they were (see listcache.go).
		m.dropListing()
	}
	if err := ctx.Err(); err != nil {
		if m.dirty {
			m.saveCache(nil)
		}
		return fmt.Errorf("maildir %s: commit: %w", m.dir, err)
	}
	isDel := make([]bool, len(m.msgs))
	fds := m.fds
	if err := m.checkInPlace(); err != nil {
		// The Maildir opened at login is not the one at its path any more
		// (moved away, a new one made in its place, or removed): changing
		// it would delete from, or flag in, a copy the user no longer
		// reads, and report that as done. Nothing is changed; the client
		// is told that its deletions were not made.
		n := 0
		for _, i := range deleted {
			if m.valid(i) && !isDel[i] {
				isDel[i] = true
				n++
			}
		}
		m.log.Warn("maildir moved or removed during the session; nothing changed", "deleted", n, "err", err)
		if n == 0 {
			return nil
		}
		return &CommitError{NotRemoved: n, Err: err}
	}

	// A listing taken now, on the first message not found under its
	// listed name.
	var fresh listing
	find := func(i int) (location, bool) {
		if fresh == nil {
			fresh = m.listAll(fds)
		}
		return fresh.find(m.uniq(&m.msgs[i]), m.msgs[i].ino)
	}

	var changed [2]bool
	notRemoved, removed := 0, 0
	var quotaBytes int64 // what the Maildir++ quota counted of the removed
	var firstErr error
	perm := true // every failure so far is permanent
	for _, i := range deleted {
		if !m.valid(i) || isDel[i] {
			continue
		}
		isDel[i] = true
		d, n, st, err := m.locate(fds, i, find)
		if errors.Is(err, unix.ENOENT) {
			m.log.Debug("message to delete already gone", "uid", m.UID(i), "file", n)
			continue
		}
		if err == nil {
			err = unix.Unlinkat(fds[d], n, 0)
			if errors.Is(err, unix.ENOENT) {
				continue
			}
		}
		if err != nil {
			notRemoved++
			perm = perm && isPermanent(err)
			if firstErr == nil {
				firstErr = fmt.Errorf("maildir %s: unlink %s/%s: %w", m.dir, subdirs[d], n, err)
			}
			m.log.Error("cannot delete message", "uid", m.UID(i), "file", subdirs[d]+"/"+n, "err", err)
			continue
		}
		removed++
		quotaBytes += quotaSize(n, st.Size)
		changed[d] = true
		if a, ok := m.alias[i]; ok {
			// A second name of the same file, seen at listing; unlinked
			// only while it still is the file just removed.
			var ast unix.Stat_t
			err := unix.Fstatat(fds[a.dir], a.name, &ast, unix.AT_SYMLINK_NOFOLLOW)
			switch {
			case err == nil && ast.Ino == st.Ino && ast.Dev == st.Dev:
				err = unix.Unlinkat(fds[a.dir], a.name, 0)
				if err == nil {
					changed[a.dir] = true
				}
			case err == nil:
				m.log.Warn("second name of deleted message now holds another file, left alone", "uid", m.UID(i),
					"file", subdirs[a.dir]+"/"+a.name)
			}
			if err != nil && !errors.Is(err, unix.ENOENT) {
				m.log.Warn("cannot remove second link of deleted message", "uid", m.UID(i),
					"file", subdirs[a.dir]+"/"+a.name, "err", err)
			}
		}
	}

	tooLong := 0
	if m.opts.MarkRead {
		for _, i := range retrieved {
			if !m.valid(i) || isDel[i] {
				continue
			}
			// Renamed only while the name holds the message's inode, as
			// for deletes: a file now under that name is another message.
			d, n, _, err := m.locate(fds, i, find)
			if err == nil {
				err = m.markSeen(fds, d, n, &changed)
			}
			switch {
			case errors.Is(err, unix.ENOENT):
				continue // gone
			case errors.Is(err, unix.ENAMETOOLONG):
				// Its name has no room for ":2,S": it stays unseen in
				// every session, which is not worth a warning each time.
				tooLong++
			case err != nil:
				m.log.Warn("cannot mark message seen", "uid", m.UID(i), "file", subdirs[d]+"/"+n, "err", err)
			}
		}
	}
	if tooLong > 0 {
		m.log.Debug("messages left unseen: their file names have no room for the seen flag", "messages", tooLong)
	}

	var syncErr error
	for d, fd := range fds {
		if !changed[d] {
			continue
		}
		if err := unix.Fsync(fd); err != nil && syncErr == nil {
			syncErr = fmt.Errorf("maildir %s: fsync %s/: %w", m.dir, subdirs[d], err)
		}
	}
	if removed > 0 {
		m.updateQuota(quotaBytes, int64(removed))
	}
	if m.dirty || (removed > 0 && removed >= len(m.msgs)/8) {
		m.saveCache(isDel)
	}
	m.saveRetrievals(isDel, retrieved)
	if notRemoved > 0 {
		return &CommitError{NotRemoved: notRemoved, Err: firstErr, Permanent: perm}
	}
	return syncErr
}

// checkInPlace reports an error unless the Maildir opened at login still
// exists and is still the directory at its path.
func (m *Mailbox) checkInPlace() error {
	var st unix.Stat_t
	if err := unix.Fstat(m.root, &st); err != nil {
		return fmt.Errorf("maildir %s: %w", m.dir, err)
	}
	if st.Nlink == 0 {
		return fmt.Errorf("maildir %s: %w (removed)", m.dir, ErrGone)
	}
	var now unix.Stat_t
	if err := unix.Stat(m.dir, &now); err != nil {
		return fmt.Errorf("maildir %s: %w: %w", m.dir, ErrGone, err)
	}
	if now.Dev != m.rootDev || now.Ino != m.rootIno {
		return fmt.Errorf("maildir %s: %w (another directory is at its path now)", m.dir, ErrGone)
	}
	return nil
}

// locate returns where message i's file is now and its stat: under its
// listed (or relocated) name if that still holds the message's inode, else
// wherever a fresh listing (find) shows the same unique name and inode. A
// name now holding another file is not the message: unlinking it would lose
// a message nobody marked. ENOENT means the message is gone.
func (m *Mailbox) locate(fds [2]int, i int, find func(int) (location, bool)) (uint8, string, unix.Stat_t, error) {
	var st unix.Stat_t
	d, n := m.where(i)
	err := unix.Fstatat(fds[d], n, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err == nil && st.Ino == m.msgs[i].ino {
		return d, n, st, nil
	}
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return d, n, st, err
	}
	// Gone from that name, or replaced there. The fresh listing compares
	// inodes from getdents, as the snapshot did, so it also covers a
	// filesystem whose getdents and stat inodes differ.
	l, ok := find(i)
	if !ok {
		if err == nil {
			m.log.Info("file of message replaced by another, left alone", "uid", m.UID(i),
				"file", subdirs[d]+"/"+n)
		}
		return d, n, st, unix.ENOENT
	}
	d, n = l.dir, l.name
	err = unix.Fstatat(fds[d], n, &st, unix.AT_SYMLINK_NOFOLLOW)
	return d, n, st, err
}

// markSeen gives the file d/n the S flag, moving it to cur/.
func (m *Mailbox) markSeen(fds [2]int, d uint8, n string, changed *[2]bool) error {
	to, ok := seenName(n, parseName(n))
	if !ok || (d == inCur && to == n) {
		return nil
	}
	if len(to) > maxNameLen {
		return unix.ENAMETOOLONG
	}
	if err := renameNoReplace(fds[d], n, fds[inCur], to); err != nil {
		return err
	}
	changed[d], changed[inCur] = true, true
	return nil
}

// renameNoReplace renames without ever replacing an existing file (which
// would lose that message): renameat2(RENAME_NOREPLACE) where the
// filesystem has it, else link + unlink (NFS), which fails with EEXIST just
// the same. If the unlink of the old name fails, the message has two names
// for a while; the next snapshot sees one inode twice and lists it once.
func renameNoReplace(oldfd int, oldname string, newfd int, newname string) error {
	err := unix.Renameat2(oldfd, oldname, newfd, newname, unix.RENAME_NOREPLACE)
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EOPNOTSUPP) {
		return err
	}
	if err := unix.Linkat(oldfd, oldname, newfd, newname, 0); err != nil {
		return err
	}
	return unix.Unlinkat(oldfd, oldname, 0)
}

// maxNameLen is the longest file name Linux filesystems take (NAME_MAX).
const maxNameLen = 255
