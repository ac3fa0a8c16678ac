package maildir

import (
	"errors"
	"fmt"
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

// CommitError reports an UPDATE in which some messages marked for deletion
// could not be removed. Every other change was still made.
type CommitError struct {
	NotRemoved int   // messages marked deleted that are still there
	Err        error // the first cause
}

func (e *CommitError) Error() string {
	return fmt.Sprintf("%d message(s) not removed: %v", e.NotRemoved, e.Err)
}

func (e *CommitError) Unwrap() error { return e.Err }
