package maildir

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

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
	f *os.File
}

// acquireLock takes the session lock on the Maildir at dir without waiting.
func acquireLock(dir string) (*lock, error) {
	p := filepath.Join(dir, lockName)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("maildir %s: lock: %w", dir, err)
	}
	fl := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	for {
		err = unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &fl)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("maildir %s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("maildir %s: lock: %w", dir, err)
	}
	return &lock{f: f}, nil
}

// release drops the lock (closing the description releases it).
func (l *lock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
