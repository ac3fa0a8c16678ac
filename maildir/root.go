package maildir

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// The single-uid model. Every Maildir is owned by the one user pop3d runs as
// (or, started as root without a user, by anyone: then root's checks are the
// ones below). A user who can write into their own Maildir (a shell
// account, an upload tool) must not reach anything else through pop3d, so:
//
//   - The Maildir root is opened once, without following a symbolic link in
//     its last component, and new/ and cur/, the lock and the size cache
//     are opened relative to it (openat, O_NOFOLLOW; directories with
//     O_DIRECTORY): a symlink in place of new/ or cur/ makes the Maildir
//     unusable instead of serving the directory it points to, and nothing
//     pop3d writes is ever reached through a symlink. The descriptors are
//     kept for the whole session; UPDATE works on them, never on paths.
//   - A Maildir root that is itself a symlink is an admin's layout only
//     when the link and the directory it names are owned by root or by
//     pop3d's user, and the link leads straight to a directory (not to
//     another link); a link anyone else made, or one to a directory of
//     another uid, is refused.
//   - The directories above the Maildirs (the template's fixed part) are
//     the admin's: they are followed as the kernel resolves them.

// errUntrusted marks a Maildir root that is a symlink pop3d does not follow.
var errUntrusted = errors.New("symbolic link not owned by root or pop3d's user, or leading to another uid's directory")

// openFlagsDir opens a directory of the Maildir without following a link.
const openFlagsDir = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

// openRoot opens the Maildir root dir (name relative to dirfd, or a path
// with unix.AT_FDCWD) as a directory, following a symlink in its last
// component only under the admin-layout rule above. Errors: ErrNotFound,
// ErrNotMaildir (not a directory, or an untrusted symlink), or the cause
// (fs.ErrPermission matches EACCES).
func openRoot(dirfd int, name, dir string) (int, error) {
	fd, err := openatRetry(dirfd, name, openFlagsDir, 0)
	if err == nil {
		return fd, nil
	}
	switch {
	case errors.Is(err, unix.ENOENT):
		return -1, fmt.Errorf("maildir %s: %w", dir, ErrNotFound)
	case errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.ELOOP):
		// A symlink (O_DIRECTORY|O_NOFOLLOW gives ENOTDIR for one), a
		// file, or a file among the components above.
		var st unix.Stat_t
		if lerr := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); lerr == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return openTrustedLink(dirfd, name, dir, &st)
		}
		return -1, fmt.Errorf("maildir %s: %w: %w", dir, ErrNotMaildir, err)
	}
	return -1, fmt.Errorf("maildir %s: %w", dir, &fs.PathError{Op: "open", Path: dir, Err: err})
}

// openTrustedLink follows the symlink name (its lstat in lst) when it and
// its target directory belong to root or to pop3d's user. The link is read
// between two lstats of the same inode, so that a link swapped meanwhile is
// not followed on the strength of the old one's owner; its target's last
// component must be the directory itself, not a further link.
func openTrustedLink(dirfd int, name, dir string, lst *unix.Stat_t) (int, error) {
	refuse := func(why string) (int, error) {
		return -1, fmt.Errorf("maildir %s: %w: %w (%s)", dir, ErrNotMaildir, errUntrusted, why)
	}
	euid := uint32(unix.Geteuid())
	if !trustedOwner(lst.Uid, euid) {
		return refuse(fmt.Sprintf("link owned by uid %d", lst.Uid))
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dirfd, name, buf)
	if err != nil {
		return -1, fmt.Errorf("maildir %s: readlink: %w", dir, err)
	}
	var again unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &again, unix.AT_SYMLINK_NOFOLLOW); err != nil ||
		again.Ino != lst.Ino || again.Dev != lst.Dev || again.Uid != lst.Uid {
		return refuse("link replaced while being read")
	}
	target := string(buf[:n])
	if !filepath.IsAbs(target) && dirfd == unix.AT_FDCWD {
		target = filepath.Join(filepath.Dir(name), target)
	}
	fd, err := openatRetry(dirfd, target, openFlagsDir, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return -1, fmt.Errorf("maildir %s: %w (dangling symbolic link to %s)", dir, ErrNotFound, target)
	case errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.ELOOP):
		return refuse("target " + target + " is not a directory or is a further link")
	case err != nil:
		return -1, fmt.Errorf("maildir %s: %w", dir, &fs.PathError{Op: "open", Path: target, Err: err})
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("maildir %s: %w", dir, err)
	}
	if !trustedOwner(st.Uid, euid) {
		unix.Close(fd)
		return refuse(fmt.Sprintf("target %s owned by uid %d", target, st.Uid))
	}
	return fd, nil
}

// trustedOwner reports whether uid is root or pop3d's own user.
func trustedOwner(uid, euid uint32) bool { return uid == 0 || uid == euid }

// openSub opens new/ or cur/ of the Maildir open as root, never through a
// symlink. A missing one gives errNoSubdir (which Options.Create fixes).
func openSub(root int, sub, dir string) (int, error) {
	fd, err := openatRetry(root, sub, openFlagsDir, 0)
	switch {
	case err == nil:
		return fd, nil
	case errors.Is(err, unix.ENOENT):
		return -1, fmt.Errorf("maildir %s: %w: %w %s/", dir, ErrNotMaildir, errNoSubdir, sub)
	case errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.ELOOP):
		return -1, fmt.Errorf("maildir %s: %w: %s is not a directory (symbolic links are not followed)", dir, ErrNotMaildir, sub)
	}
	return -1, fmt.Errorf("maildir %s: %w", dir, &fs.PathError{Op: "open", Path: filepath.Join(dir, sub), Err: err})
}

// openatRetry is openat(2), retried on EINTR.
func openatRetry(dirfd int, name string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, mode)
		if !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
}

// createRoot creates the missing Maildir dir: its missing parents, each
// made with mkdirat relative to its parent's descriptor and then opened
// without following a link (a directory pop3d just made that is a symlink
// now was replaced by someone else), and dir itself. It returns the
// descriptor of dir's parent (for openRoot) or an error.
func createRoot(dir string) (int, error) {
	parent, err := mkdirParents(filepath.Dir(dir))
	if err != nil {
		return -1, fmt.Errorf("maildir %s: create: %w", dir, err)
	}
	if err := unix.Mkdirat(parent, filepath.Base(dir), 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		unix.Close(parent)
		return -1, fmt.Errorf("maildir %s: create: %w", dir, &fs.PathError{Op: "mkdir", Path: dir, Err: err})
	}
	return parent, nil
}

// mkdirParents returns a descriptor of the directory p, creating it and its
// missing parents (mode 0700). Existing components are the admin's layout
// and resolved as usual; the ones it creates are opened with O_NOFOLLOW.
func mkdirParents(p string) (int, error) {
	fd, err := openatRetry(unix.AT_FDCWD, p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err == nil || !errors.Is(err, unix.ENOENT) || p == "/" || p == "." {
		if err != nil {
			return -1, &fs.PathError{Op: "open", Path: p, Err: err}
		}
		return fd, nil
	}
	up, err := mkdirParents(filepath.Dir(p))
	if err != nil {
		return -1, err
	}
	defer unix.Close(up)
	base := filepath.Base(p)
	if err := unix.Mkdirat(up, base, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, &fs.PathError{Op: "mkdir", Path: p, Err: err}
	}
	fd, err = openatRetry(up, base, openFlagsDir, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	return fd, nil
}

// createSubdirs makes the missing tmp/, new/ and cur/ of the Maildir open as
// root. mkdirat never follows a link in place of the name: an existing
// symlink gives EEXIST, and openSub then refuses it.
func createSubdirs(root int, dir string) error {
	for _, sub := range [...]string{"tmp", "new", "cur"} {
		if err := unix.Mkdirat(root, sub, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("maildir %s: create: %w", dir, &fs.PathError{Op: "mkdir", Path: filepath.Join(dir, sub), Err: err})
		}
	}
	return nil
}
