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
// Once started, Commit does not stop for ctx: each step is atomic, and
// finishing the user's QUIT is better than leaving half of it.
func (m *Mailbox) Commit(ctx context.Context, deleted, retrieved []int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done {
		return errors.New("maildir: mailbox already closed")
	}
	m.done = true
	defer m.lk.release()
	if err := ctx.Err(); err != nil {
		if m.dirty {
			m.saveCache(nil)
		}
		return fmt.Errorf("maildir %s: commit: %w", m.dir, err)
	}
	isDel := make([]bool, len(m.msgs))
	fds, err := m.openDirs()
	if err != nil {
		n := 0
		for _, i := range deleted {
			if m.valid(i) && !isDel[i] {
				isDel[i] = true
				n++
			}
		}
		if n == 0 {
			return err
		}
		return &CommitError{NotRemoved: n, Err: err}
	}
	defer closeDirs(fds)

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
			if errors.Is(err, unix.ENOENT) {
				continue // gone
			}
			if err != nil {
				m.log.Warn("cannot mark message seen", "uid", m.UID(i), "file", subdirs[d]+"/"+n, "err", err)
			}
		}
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
		return &CommitError{NotRemoved: notRemoved, Err: firstErr}
	}
	return syncErr
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
