package daemon

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"net"
	"time"
)

// Observer is told what the server's sessions do, as net/http's
// Server.ConnState is told of connection states: metrics and a registry of
// live sessions hang on it, outside the engine. Config.Observer nil costs
// nothing.
//
// Every method of one session is called from that session's goroutine, in
// order: Connect first, Disconnect last, and nothing after Disconnect.
// Different sessions call concurrently, so an Observer must be safe for
// concurrent use. Methods must return quickly: the session waits for them.
// Every string they receive that could become a metric label (command
// names, mechanisms, reasons, results) comes from a fixed list, never from
// the client.
type Observer interface {
	// Connect: a session starts (after its PROXY header, if any, before
	// the greeting and any TLS handshake).
	Connect(s *Session)
	// Refuse: a connection is turned away. s is nil when it was refused
	// before a session started (no Connect was or will be called for it);
	// otherwise the session ends after it (Disconnect follows).
	Refuse(s *Session, r Refusal)
	// Login: the outcome of one login attempt.
	Login(s *Session, l Login)
	// Command: one command has been answered.
	Command(s *Session, c Command)
	// Update: QUIT in the TRANSACTION state ran the UPDATE state.
	Update(s *Session, u Update)
	// Disconnect: the session is over and its connection closed.
	Disconnect(s *Session, d Disconnect)
}

// Session identifies one client session to an Observer. Its fields are set
// before Connect and never change; Kick may be called from any goroutine,
// also after the session ended.
type Session struct {
	ID         string    // unique within the process; logged as session=ID
	Listener   Mode      // which kind of listener accepted it
	RemoteAddr net.Addr  // the client, from the PROXY header when there is one
	LocalAddr  net.Addr  // the address the client connected to, likewise
	TLS        bool      // implicit TLS (a later STLS shows in Command.TLS)
	Start      time.Time // when the connection was accepted

	s *session
}

// Kick ends the session as a shutdown does: a session in UPDATE finishes
// it, any other is told "-ERR [SYS/TEMP] ..." and closed without UPDATE.
// On a Session that no Server made it does nothing.
func (h *Session) Kick() {
	if h.s != nil {
		h.s.kick()
	}
}

// Refusal says why a connection was turned away.
type Refusal struct {
	Listener   Mode
	Reason     RefuseReason
	RemoteAddr net.Addr // the client as far as known (the proxy before its header was read)
}

// RefuseReason is why a connection was refused.
type RefuseReason string

// The reasons a connection is refused.
const (
	RefuseMaxConnections RefuseReason = "max_connections" // the global connection limit
	RefuseMaxPerIP       RefuseReason = "max_per_ip"      // the per-client-address limit
	RefuseProxyHeader    RefuseReason = "proxy_header"    // PROXY header missing, invalid or untrusted
	RefuseTLSHandshake   RefuseReason = "tls_handshake"   // implicit TLS or STLS handshake failed
)

// LoginResult is the outcome of a login attempt.
type LoginResult string

// The outcomes of a login attempt.
const (
	LoginSuccess LoginResult = "success" // logged in; the mailbox is open
	LoginFailure LoginResult = "failure" // bad credentials (what fail2ban counts)
	LoginRefused LoginResult = "refused" // not allowed here: credentials without TLS
	LoginInUse   LoginResult = "in_use"  // the mailbox is locked by another session
	LoginError   LoginResult = "error"   // the backend failed (SYS/TEMP, SYS/PERM)
)

// Login is the outcome of one login attempt.
type Login struct {
	Mech     string        // "USER" (USER/PASS), "PLAIN" (AUTH PLAIN), "APOP"
	Result   LoginResult   //
	User     string        // as the client gave it: never use it as a metric label
	Messages int           // in the maildrop, on success
	Octets   int64         // their total size, on success
	Duration time.Duration // spent in Backend.Login; 0 when it was not called
}

// Command is one answered command.
type Command struct {
	Name string // upper-case keyword from a fixed list, "UNKNOWN" for anything else
	OK   bool   // answered +OK (a multi-line answer also sent completely)
	TLS  bool   // the connection is encrypted after the command (STLS)
	// Octets is what was written to the client since the previous event
	// of this session. Answers to pipelined commands may go out together
	// in one later write, so this belongs to the session, not exactly to
	// this command; the sum over a session is exact.
	Octets int64
}

// Update is the outcome of the UPDATE state.
type Update struct {
	Deleted   int           // messages marked deleted, to be removed
	Retrieved int           // retrieved and kept, to be marked seen
	Duration  time.Duration // spent in Mailbox.Commit
	Err       error         // from Commit; nil when every message was removed
}

// EndReason is how a session ended.
type EndReason string

// How sessions end.
const (
	EndQuit     EndReason = "quit"     // the client sent QUIT
	EndTimeout  EndReason = "timeout"  // idle timeout
	EndDropped  EndReason = "dropped"  // the client went away, or a read or write failed
	EndShutdown EndReason = "shutdown" // the server is shutting down
	EndKicked   EndReason = "kicked"   // Session.Kick
	EndRefused  EndReason = "refused"  // a refusal (Observer.Refuse) ended it
	EndClosed   EndReason = "closed"   // too many bad commands, refused logins or failed logins
	EndError    EndReason = "error"    // an internal error (a panic) or an unreadable message
)

// Disconnect is the end of a session.
type Disconnect struct {
	How       EndReason
	Octets    int64         // written since the previous event (see Command.Octets)
	Sent      int64         // written in the whole session
	Retrieved int           // RETR commands answered completely
	Duration  time.Duration // since the connection was accepted
}

// CommandNames returns every value Command.Name can take, for observers
// that create their label sets in advance.
func CommandNames() []string {
	return []string{"CAPA", "QUIT", "USER", "PASS", "AUTH", "APOP", "STLS", "STAT", "LIST",
		"UIDL", "RETR", "TOP", "DELE", "NOOP", "RSET", "UTF8", "LANG", "UNKNOWN"}
}

// commandName maps a command line to its label: the keyword when it is one
// of CommandNames, else "UNKNOWN".
func commandName(line string) string {
	name, _, _ := parseCommand(line)
	switch name {
	case "CAPA", "QUIT", "USER", "PASS", "AUTH", "APOP", "STLS", "STAT", "LIST",
		"UIDL", "RETR", "TOP", "DELE", "NOOP", "RSET", "UTF8", "LANG":
		return name
	}
	return "UNKNOWN"
}

// newID returns a session id: a random prefix chosen at New, so that ids
// differ across restarts, and a counter, so that they never repeat within
// the process.
func (s *Server) newID() string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], s.idPrefix<<32|s.nextID.Add(1)&0xffffffff)
	return hex.EncodeToString(b[:])
}

// setLogger gives the session its logger: every line carries the client
// address (first, where fail2ban's filter looks for it) and the session id.
func (s *session) setLogger() {
	s.log = s.srv.logger.With("remote_ip", s.remoteIPString(), "session", s.h.ID)
}

// connected fills the observer's view of the session and reports it.
func (s *session) connected() {
	s.h.Listener = s.mode
	s.h.RemoteAddr = s.remote
	s.h.LocalAddr = s.local
	s.h.TLS = s.mode == ModeTLS
	s.h.Start = s.start
	s.isConnected = true
	if s.obs != nil {
		s.obs.Connect(&s.h)
	}
}

// refusedBy reports a refusal that ends the session.
func (s *session) refusedBy(reason RefuseReason) {
	s.end = EndRefused
	if s.obs == nil {
		return
	}
	var h *Session
	if s.isConnected {
		h = &s.h
	}
	s.obs.Refuse(h, Refusal{Listener: s.mode, Reason: reason, RemoteAddr: s.remote})
}

// loggedIn reports a login attempt's outcome.
func (s *session) loggedIn(mech string, result LoginResult, user string, d time.Duration) {
	if s.obs == nil {
		return
	}
	l := Login{Mech: mech, Result: result, User: user, Duration: d}
	if result == LoginSuccess {
		l.Messages, l.Octets = s.stats.messages, s.stats.size
	}
	s.obs.Login(&s.h, l)
}

// unreported returns the octets sent since the last event and marks them
// reported.
func (s *session) unreported() int64 {
	n := s.out.n - s.reported
	s.reported = s.out.n
	return n
}

// observeCommand reports the command on line, just answered.
func (s *session) observeCommand(line string) {
	s.obs.Command(&s.h, Command{Name: commandName(line), OK: s.status > 0, TLS: s.tls, Octets: s.unreported()})
}

// kick is Session.Kick: like Shutdown's interrupt, for one session.
func (s *session) kick() {
	s.kicked.Store(true)
	s.interrupt()
}

// stopping reports whether the session must end at the next chance: the
// server is shutting down or the session was kicked.
func (s *session) stopping() bool {
	return s.srv.closing.Load() || s.kicked.Load()
}

// stopNow says goodbye to a session that is stopping.
func (s *session) stopNow() {
	if s.srv.closing.Load() {
		s.end = EndShutdown
		s.goodbye("-ERR [SYS/TEMP] server shutting down")
		return
	}
	s.end = EndKicked
	s.goodbye("-ERR [SYS/TEMP] session ended by the administrator")
}

// endReason is how the session ended: as recorded where that was known,
// else from the server's state.
func (s *session) endReason() EndReason {
	switch {
	case s.end != "":
		return s.end
	case s.kicked.Load():
		return EndKicked
	case s.srv.closing.Load():
		return EndShutdown
	}
	return EndDropped
}

// logoutStats are the figures of the logout line, as Dovecot's
// pop3_logout_format top=%t/%p, retr=%r/%b, del=%d/%m, size=%s.
type logoutStats struct {
	opened     bool // a mailbox was opened: the figures mean something
	top, retr  int
	topOctets  int64
	retrOctets int64
	deleted    int   // removed in UPDATE
	messages   int   // in the maildrop at login
	size       int64 // its octets at login
}

// logout logs the end of the session and reports it.
func (s *session) logout() {
	how := s.endReason()
	d := time.Since(s.start)
	attrs := []any{"user", s.authUser, "bytes_sent", s.out.n, "duration", d.Round(time.Millisecond), "how", string(how)}
	if st := &s.stats; st.opened {
		attrs = append(attrs,
			"top", itoa(int64(st.top))+"/"+itoa(st.topOctets),
			"retr", itoa(int64(st.retr))+"/"+itoa(st.retrOctets),
			"del", itoa(int64(st.deleted))+"/"+itoa(int64(st.messages)),
			"size", st.size)
	}
	s.log.Log(context.Background(), s.connLogLevel(), "disconnect", attrs...)
	if s.obs != nil && s.isConnected {
		s.obs.Disconnect(&s.h, Disconnect{How: how, Octets: s.unreported(), Sent: s.out.n,
			Retrieved: s.stats.retr, Duration: d})
	}
}

// updated records the outcome of UPDATE and reports it.
func (s *session) updated(u Update) {
	if u.Err == nil {
		s.stats.deleted = u.Deleted
	}
	if s.obs != nil {
		s.obs.Update(&s.h, u)
	}
}
