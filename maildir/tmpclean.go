package maildir

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// TmpMaxAge is how long a file may sit in tmp/ unmodified before a login
// removes it: the Maildir specification's 36 hours (Courier waits 48). A
// delivery still writing keeps touching its file.
const TmpMaxAge = 36 * time.Hour

// cleanTmp removes the files (not directories, not dot-files) in tmp/ of the
// Maildir open as rootfd that were last modified before now-TmpMaxAge, and
// returns how many it removed. tmp/ is opened without following a symlink;
// entries are examined with lstat and unlinked relative to it, so nothing
// outside tmp/ is ever touched.
func cleanTmp(rootfd int, now time.Time) (int, error) {
	fd, err := unix.Openat(rootfd, "tmp", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("tmp/: %w", err)
	}
	d := os.NewFile(uintptr(fd), "tmp")
	defer d.Close()
	limit := now.Add(-TmpMaxAge).Unix()
	removed := 0
	for {
		names, err := d.Readdirnames(1024)
		for _, n := range names {
			if n == "" || n[0] == '.' {
				continue
			}
			var st unix.Stat_t
			if unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
				continue
			}
			if st.Mode&unix.S_IFMT == unix.S_IFDIR || st.Mtim.Sec >= limit {
				continue
			}
			if unix.Unlinkat(fd, n, 0) == nil {
				removed++
			}
		}
		if err != nil || len(names) == 0 {
			break
		}
	}
	return removed, nil
}
