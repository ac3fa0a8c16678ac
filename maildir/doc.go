// Package maildir is the POP3 maildrop on top of a Maildir: it locks the
// Maildir for one session, takes a snapshot of new/ and cur/ with exact wire
// sizes and stable unique ids, streams messages, and applies the UPDATE state
// (unlink deleted messages, mark retrieved ones seen) without ever touching a
// message it did not list or the user did not mark.
//
// It knows nothing of POP3 beyond the wire form of a message; *Mailbox has
// the methods of the daemon package's Mailbox and SizeCorrector interfaces
// without importing it.
//
// The Maildir is opened once per session and everything in it relative to
// that descriptor, never through a symlink (see root.go for the ownership
// rules and why).
//
// Files this package keeps at the top of a Maildir (Maildir readers only look
// in cur/, new/ and tmp/, and Dovecot and Courier ignore unknown top-level
// files; the names have no leading dot so that Maildir++ readers, which treat
// dot-entries as folders, never mistake them for one):
//
//	pop3d-lock    the session lock (see lock.go); never removed
//	pop3d-cache   the wire-size cache (see cache.go); safe to delete any time
package maildir
