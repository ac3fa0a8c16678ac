package maildir

import (
	"errors"
	"fmt"
	"io"
	"io/fs"

	"golang.org/x/sys/unix"
)

// lockName is the lock file at the top of the Maildir.
const lockName = "pop3d-lock"

// The lock is an open file description (OFD) write lock, fcntl(F_OFD_SETLK),
// on pop3d-lock in the Maildir. Why this kind:
//
//   - It is held by the open file, not the process: two sessions in the same
//     daemon process exclude each other (a classic POSIX fcntl lock would
//     not, and closing any descriptor of the file would drop it).
//   - The kernel releases it when the holder dies, however it dies (kill -9,
//     OOM, power loss of an NFS client once its lease expires), so a crashed
//     session never locks the user out and no stale-lock guessing by age or
//     pid is needed, unlike an O_EXCL lock file.
//   - Over NFS the Linux client turns it into an NFSv4 byte-range lock (or an
//     NLM lock on v3), which the server enforces for every host; flock(2) is
//     emulated with such a lock too but is per host on older kernels.
//   - It is advisory: MTAs deliver without any lock, as Maildir intends.
//
// The file is never removed: removing a lock file opens a race in which two
// sessions lock two different inodes of the same name.
type lock struct {
	fd int // -1 once released
}

// acquireLock takes the session lock on the Maildir open as root (dir is
// its path, for messages) without waiting. The lock file is opened relative
// to root, never through a symlink and without blocking (a FIFO in its place
// would block a read-only open); anything but a regular file there makes
// the Maildir unusable (ErrNotMaildir) rather than unlocked: no session can
// hold a lock on it, and removing it would race with another session doing
// the same.
func acquireLock(root int, dir string) (*lock, error) {
	fd, err := openatRetry(root, lockName, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.ENXIO) {
		return nil, fmt.Errorf("maildir %s: %w: %s is not a regular file: %w", dir, ErrNotMaildir, lockName, err)
	}
	if err != nil {
		return nil, fmt.Errorf("maildir %s: lock: %w", dir, &fs.PathError{Op: "open", Path: dir + "/" + lockName, Err: err})
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("maildir %s: lock: %w", dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("maildir %s: %w: %s is not a regular file", dir, ErrNotMaildir, lockName)
	}
	fl := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	for {
		err = unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &fl)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("maildir %s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("maildir %s: lock: %w", dir, err)
	}
	return &lock{fd: fd}, nil
}

// release drops the lock (closing the description releases it).
func (l *lock) release() error {
	if l == nil || l.fd < 0 {
		return nil
	}
	err := unix.Close(l.fd)
	l.fd = -1
	return err
}
