package maildir

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// ErrLocked means another session (in this or another process, on this or
// another host) holds the mailbox lock.
var ErrLocked = errors.New("mailbox locked by another session")

// ErrNotFound means the Maildir does not exist and Options.Create is false.
var ErrNotFound = errors.New("maildir does not exist")

// ErrNotMaildir means the path exists but is not a usable Maildir (not a
// directory, or cur/ or new/ missing or not directories).
var ErrNotMaildir = errors.New("not a maildir")

// ErrMessageGone means a message's file vanished during the session (deleted
// by another program); it is not an error of the mailbox as a whole.
var ErrMessageGone = errors.New("message no longer exists")

// ErrBadUser means a user name cannot be put into a Maildir template without
// the risk of leaving the template's directory.
var ErrBadUser = errors.New("user name not usable in a maildir path")

// ErrGone means the Maildir opened at login was removed, or moved away
// and perhaps replaced by another, before the UPDATE state: Commit then
// changes nothing.
var ErrGone = errors.New("maildir moved or removed during the session")

// CommitError reports an UPDATE in which some messages marked for deletion
// could not be removed. Every other change was still made, unless Err is
// ErrGone (then nothing was).
type CommitError struct {
	NotRemoved int   // messages marked deleted that are still there
	Err        error // the first cause
	// Permanent is set when every failure was of a kind retrying does not
	// cure (permission denied, read-only filesystem): the client should not
	// be told to try again later.
	Permanent bool
}

func (e *CommitError) Error() string {
	return fmt.Sprintf("%d message(s) not removed: %v", e.NotRemoved, e.Err)
}

func (e *CommitError) Unwrap() error { return e.Err }

// isPermanent reports whether err is a failure that a later attempt would
// meet again: a permission or a read-only filesystem, a name or type that
// does not fit. Anything else (I/O errors, a full disk, a Maildir moved
// meanwhile) may pass.
func isPermanent(err error) bool {
	for _, e := range [...]error{unix.EACCES, unix.EPERM, unix.EROFS, unix.ENAMETOOLONG,
		unix.ENOTDIR, unix.EISDIR, unix.ELOOP} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
