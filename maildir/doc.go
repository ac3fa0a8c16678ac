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
//	pop3d-uidl    the UIDLs served that are not the file names (see
//	              uidlrecord.go); rebuilt from what is on disk when damaged
//
// A snapshot (snapshot.go) is built in steps, one file each: listing new/
// and cur/ (listing.go), ordering (sort.go), sizes from the cache
// (cachemerge.go) or the files (sizing.go), and unique-ids (uidl.go, with
// legacy.go for the UIDLs of Dovecot and Courier). A message renamed by
// another program during the session is found again by relocate.go.
package maildir
