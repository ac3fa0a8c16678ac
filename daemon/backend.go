package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
)

// ConnInfo describes the client connection a login arrives on. The remote
// address is the one from a PROXY protocol header when one was accepted.
type ConnInfo struct {
	RemoteAddr net.Addr
	LocalAddr  net.Addr
	TLS        bool // the connection is encrypted (implicit TLS or after STLS)
}

// Backend authenticates users and opens their mailboxes. The engine calls it
// once per login attempt; it never touches files itself.
type Backend interface {
	// Login checks the credentials and, when they are good, opens and locks
	// the user's mailbox for the session. Bad credentials (unknown user or
	// wrong password, indistinguishably) must be reported as an *Error with
	// Code CodeAuth; a mailbox held by another session as CodeInUse.
	Login(ctx context.Context, user, pass string, info ConnInfo) (Mailbox, error)
}

// Mailbox is one user's maildrop as fixed at login: message i (0-based; POP3
// message number i+1) keeps its number, size and unique id for the whole
// session.
type Mailbox interface {
	// Len is the number of messages in the snapshot.
	Len() int
	// Size is the exact number of octets RETR sends for message i: CRLF line
	// endings, a final CRLF added when missing, before dot-stuffing.
	Size(i int) int64
	// UID is the RFC 1939 unique-id of message i: 1 to 70 octets in
	// 0x21..0x7E, stable across sessions.
	UID(i int) string
	// Open returns the raw bytes of message i as stored; the engine converts
	// line endings and dot-stuffs. It streams: no whole-message buffering.
	Open(i int) (io.ReadCloser, error)
	// Commit is the UPDATE state: remove the messages in deleted and mark
	// the ones in retrieved (and not deleted) as seen, then release the
	// mailbox. Both slices hold 0-based indexes in ascending order.
	Commit(ctx context.Context, deleted, retrieved []int) error
	// Close releases the mailbox without changing any message.
	Close() error
}

// LazyMailbox may be implemented by a Mailbox that knows its message count
// and total size at login but reads its messages only when a command needs
// them, so that a session that only asks STAT never pays for them. The
// engine calls Load before the first LIST, UIDL, RETR, TOP or DELE, and
// before an UPDATE that expires messages; an error ends the session with
// "-ERR [SYS/TEMP]" and no UPDATE. Total is the sum of Size(i) over all
// messages as STAT counts it (a negative size adds nothing; the sum stops
// at the largest int64).
type LazyMailbox interface {
	Mailbox
	Total() int64
	Load() error
}

// SizeCorrector may be implemented by a Mailbox that wants to learn the
// octet count actually sent for message i when it differed from Size(i), so
// that it can fix whatever cached the wrong figure.
type SizeCorrector interface {
	CorrectSize(i int, octets int64)
}

// LoginAttrer may be implemented by a Mailbox that has something to add to
// the "login" log line, such as how many stale files it removed when it was
// opened. The attributes come after the engine's own, so the line keeps
// its shape for whoever parses it.
type LoginAttrer interface {
	LoginAttrs() []slog.Attr
}

// loginAttrs is what mb adds to the login line, as slog arguments.
func loginAttrs(mb Mailbox) []any {
	la, ok := mb.(LoginAttrer)
	if !ok {
		return nil
	}
	var out []any
	for _, a := range la.LoginAttrs() {
		out = append(out, a)
	}
	return out
}

// Response codes from RFC 2449 and RFC 3206 that a backend may attach to an
// error.
const (
	CodeInUse      = "IN-USE"
	CodeLoginDelay = "LOGIN-DELAY"
	CodeAuth       = "AUTH"
	CodeSysTemp    = "SYS/TEMP"
	CodeSysPerm    = "SYS/PERM"
)

// Error is an error with the POP3 response code and the text the client is
// shown; Err, when set, is the cause that goes to the log only.
//
// From Backend.Login, Code CodeAuth is a failed login: answered after the
// (growing) failure delay and logged as "login failed", the line fail2ban
// counts. Verified marks a login whose credentials were right but which a
// policy refuses (a disabled account, LOGIN-DELAY): it is logged as "login
// refused" and raises no brute-force penalty.
type Error struct {
	Code     string // one of the Code constants, or "" for none
	Text     string // shown to the client after "-ERR [Code] "
	Err      error  // logged, never shown
	Reason   string // the login log line's reason; "": derived from Code and Text
	Verified bool   // the credentials were right; a policy refused the login
}

func (e *Error) Error() string {
	s := e.Text
	if e.Code != "" {
		s = "[" + e.Code + "] " + s
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// APOPBackend is a Backend that can check RFC 1939 APOP logins.
type APOPBackend interface {
	// LoginAPOP is Login for APOP: digest is what the client sent, the
	// hex MD5 of challenge (the greeting's timestamp) and the user's
	// secret. Errors as for Login.
	LoginAPOP(ctx context.Context, user, challenge, digest string, info ConnInfo) (Mailbox, error)
}

// ErrAuth is the error a Backend returns for bad credentials.
var ErrAuth = &Error{Code: CodeAuth, Text: "authentication failed"}

// CodeOf returns the response code carried by err, or "" if it has none.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
