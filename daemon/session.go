package daemon

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// Buffer sizes. An idle connection keeps only the small read buffer. The
// write buffer is pooled (writer.go) and held only while there is output
// pending, so it can be large: pipelined RETRs of small messages then
// share one system call per 64 KiB instead of costing two each.
const (
	readBufSize  = 1024
	writeBufSize = 64 << 10
)

// closeDeadline bounds the last writes to a client being dropped: the
// goodbye line and the TLS close_notify.
const closeDeadline = time.Second

// state is an RFC 1939 session state.
type state int

const (
	stateAuth state = iota
	stateTrans
	stateUpdate
)

var (
	errLineTooLong = errors.New("line too long")
	errNUL         = errors.New("NUL byte in command")
	errProxyHeader = errors.New("PROXY header from an untrusted address")
	errShutdown    = errors.New("server shutting down")
)

// session is one client connection. Only its own goroutine touches it,
// except interrupt and raw.Close, which the Server calls on shutdown.
type session struct {
	srv  *Server
	cfg  *Config // the config at accept time; never modified
	mode Mode
	ctx  context.Context
	stop context.CancelFunc

	raw       net.Conn   // as accepted: closing it ends everything
	conn      net.Conn   // what the session speaks through: raw, a prefixConn or a *tls.Conn
	proxied   bool       // the connection must start with a PROXY header
	countedIP netip.Addr // the per-IP count this session holds; guarded by srv.mu
	remote    net.Addr   // the client, from the PROXY header when there is one
	local     net.Addr   // the address the client connected to, likewise
	remoteIP  netip.Addr
	tls       bool
	// offloaded: a proxy terminated TLS for the client (tls_offload_from,
	// or a PROXY v2 SSL TLV from a trusted proxy). Credentials may come in
	// clear text from it; STLS is still offered to the proxy.
	offloaded bool
	// healthCheck: the connection started with a PROXY v2 LOCAL header,
	// which proxies send for their own health checks; its connect and
	// disconnect are logged at debug level, not every few seconds at info.
	healthCheck bool
	start       time.Time

	br         *bufio.Reader
	bw         *outWriter
	out        connWriter
	discarding bool // the rest of an over-long line is still to be skipped
	firstLine  bool // no command line read yet

	log         *slog.Logger // srv.logger with remote_ip and session: every line of the session
	h           Session      // what observers see
	obs         Observer     // cfg.Observer; nil: no events
	kicked      atomic.Bool  // Session.Kick: end as at shutdown
	isConnected bool         // Observer.Connect was called
	end         EndReason    // how the session ends, where known before finish
	status      int8         // the status line of the command being answered: 1 +OK, -1 -ERR
	reported    int64        // octets sent already reported to obs
	stats       logoutStats

	state        state
	updating     atomic.Bool // Commit is running or done: shutdown lets it finish and answer
	user         string      // from USER, waiting for PASS
	authUser     string      // logged in as
	loaded       bool        // a LazyMailbox's messages are read (needMessages)
	mbox         Mailbox
	deleted      bitset
	retrieved    bitset
	left         int   // messages not deleted
	leftOctets   int64 // their total size
	badCmds      int
	refused      int // login attempts refused without a bad-command count
	authFailures int
	challenge    string     // APOP timestamp of the greeting; "": no APOP
	policy       UserPolicy // the logged-in user's LOGIN-DELAY and EXPIRE
}

func newSession(srv *Server, c net.Conn, mode Mode, cfg *Config, proxied bool) *session {
	ctx, stop := context.WithCancel(srv.ctx)
	s := &session{
		start:     time.Now(), // the login timeout runs from here
		srv:       srv,
		cfg:       cfg,
		mode:      mode,
		ctx:       ctx,
		stop:      stop,
		raw:       c,
		conn:      c,
		proxied:   proxied,
		remote:    c.RemoteAddr(),
		local:     c.LocalAddr(),
		remoteIP:  addrIP(c.RemoteAddr()),
		offloaded: cfg.offloadsTLS(addrIP(c.RemoteAddr())),
		firstLine: true,
		log:       srv.logger,
		obs:       cfg.Observer,
	}
	s.h.s = s
	s.out.s = s
	return s
}

// connWriter is what the session's bufio.Writer writes to: it counts the
// octets sent and gives every write its deadline.
type connWriter struct {
	s     *session
	n     int64
	short bool // last words: closeDeadline applies if shorter
}

func (w *connWriter) Write(p []byte) (int, error) {
	t := w.s.cfg.WriteTimeout
	// During shutdown a session that is not in UPDATE gets only a short
	// while to write (a client that stopped reading a RETR must not hold
	// up the exit for a whole WriteTimeout).
	short := w.short || (w.s.stopping() && !w.s.updating.Load())
	if short && (t == 0 || t > closeDeadline) {
		t = closeDeadline
	}
	if t > 0 {
		w.s.conn.SetWriteDeadline(time.Now().Add(t))
	}
	n, err := w.s.conn.Write(p)
	w.n += int64(n)
	return n, err
}

// interrupt wakes the session if it is waiting for input, so that it sees
// the server shutting down. Called by Server.Shutdown.
func (s *session) interrupt() {
	s.raw.SetReadDeadline(time.Unix(1, 0))
	if !s.updating.Load() {
		// A write blocked on a client that stopped reading ends soon too.
		s.raw.SetWriteDeadline(time.Now().Add(closeDeadline))
	}
}

func (s *session) remoteIPString() string {
	if s.remoteIP.IsValid() {
		return s.remoteIP.String()
	}
	if s.remote != nil {
		return s.remote.String()
	}
	return ""
}

// connLogLevel is the level of the connect and disconnect lines.
func (s *session) connLogLevel() slog.Level {
	if s.healthCheck && s.authUser == "" {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// authAllowed reports whether credentials may be sent on this connection.
func (s *session) authAllowed() bool {
	return s.tls || s.offloaded || s.cfg.AllowInsecureAuth || s.remoteIP.IsLoopback()
}

func (s *session) serve() {
	s.h.ID = s.srv.newID()
	s.setLogger()
	defer s.finish()
	if s.proxied {
		if !s.readProxyHeader() {
			return
		}
	}
	s.log.Log(s.ctx, s.connLogLevel(), "connect", "remote", s.remote.String(), "listener", s.mode.String())
	s.connected()
	if s.mode == ModeTLS {
		if !s.proxied && s.rejectProxyBeforeTLS() {
			return
		}
		if err := s.handshake(); err != nil {
			s.log.Info("tls handshake failed", "err", err)
			s.refusedBy(RefuseTLSHandshake)
			return
		}
	}
	s.br = bufio.NewReaderSize(s.conn, readBufSize)
	s.bw = &outWriter{w: &s.out}
	if s.apopAvailable() {
		s.challenge = s.newChallenge()
		s.reply("+OK POP3 server ready " + s.challenge)
	} else {
		s.reply("+OK POP3 server ready")
	}
	s.loop()
}

// finish runs when the session ends for any reason, panics included: it
// releases the mailbox without changes and logs the disconnection.
func (s *session) finish() {
	defer func() {
		if s.bw != nil {
			s.bw.release()
		}
	}()
	if v := recover(); v != nil {
		s.end = EndError
		s.log.Error("panic in session", "user", s.authUser,
			"panic", v, "stack", string(debug.Stack()))
		if s.bw != nil {
			s.goodbye("-ERR [SYS/TEMP] internal error")
		}
	}
	if s.mbox != nil {
		if err := s.closeMailbox(); err != nil {
			s.log.Error("mailbox close failed", "user", s.authUser, "err", err)
		}
		s.mbox = nil
	}
	s.linger()
	s.conn.SetWriteDeadline(time.Now().Add(closeDeadline))
	s.conn.Close()
	s.raw.Close()
	s.stop()
	s.logout()
	s.srv.remove(s)
}

// Closing a TCP socket with unread input makes the kernel send a reset,
// which can destroy the last answer (the QUIT reply, "too many bad
// commands") before the client reads it. So, as net/http does, the session
// first closes its sending side and reads what the client still sends
// until the client closes too, for a bounded time and amount. A client that
// closes after the last answer, as they all do, ends this at once.
const (
	lingerTime         = 2 * time.Second
	lingerTimeShutdown = 250 * time.Millisecond
	lingerBytes        = 1 << 20
)

type closeWriter interface{ CloseWrite() error }

func (s *session) linger() {
	cw, ok := s.raw.(closeWriter)
	if !ok || s.ctx.Err() != nil {
		return
	}
	if tc, ok := s.conn.(*tls.Conn); ok {
		s.conn.SetWriteDeadline(time.Now().Add(closeDeadline))
		if tc.CloseWrite() != nil {
			return
		}
	}
	if cw.CloseWrite() != nil {
		return
	}
	d := lingerTime
	if s.stopping() {
		d = lingerTimeShutdown
	}
	s.raw.SetReadDeadline(time.Now().Add(d))
	io.CopyN(io.Discard, s.raw, lingerBytes)
}

// closeMailbox is Mailbox.Close with its own recover: finish runs after the
// session's recover, so a panic here would take the whole server down.
func (s *session) closeMailbox() (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic in Mailbox.Close: %v\n%s", v, debug.Stack())
		}
	}()
	return s.mbox.Close()
}

// loop reads and answers commands until the session ends.
func (s *session) loop() {
	for {
		if s.stopping() {
			s.stopNow()
			return
		}
		line, err := s.readCommand()
		switch {
		case err == nil:
		case errors.Is(err, errLineTooLong), errors.Is(err, errNUL):
			// The error text is the answer: "-ERR line too long".
			if s.bad(err.Error()) {
				continue
			}
			s.flush()
			return
		case errors.Is(err, errProxyHeader):
			s.log.Warn("PROXY header from an untrusted address")
			s.goodbye("-ERR PROXY header not accepted from this address")
			s.refusedBy(RefuseProxyHeader)
			return
		case s.stopping():
			s.stopNow()
			return
		case errors.Is(err, os.ErrDeadlineExceeded) && s.loginExpired():
			s.loginTimedOut()
			return
		case errors.Is(err, os.ErrDeadlineExceeded):
			s.log.Info("idle timeout", "user", s.authUser)
			s.goodbye("-ERR disconnected for inactivity")
			s.end = EndTimeout
			return
		default:
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.log.Debug("read failed", "err", err)
			}
			return
		}
		s.logCommand(line)
		bad := s.badCmds
		s.status = 0
		cont := s.handle(line)
		if s.obs != nil {
			s.observeCommand(line)
		}
		if !cont {
			s.flush()
			return
		}
		if s.badCmds == bad && s.state != stateAuth {
			// As in Dovecot, after login only consecutive bad commands
			// count: a long session that now and then asks for a message
			// that is gone is not cut off. Before login every one counts.
			s.badCmds = 0
		}
	}
}

// goodbye sends a last line, within closeDeadline, before the session
// ends.
func (s *session) goodbye(line string) {
	s.out.short = true
	s.reply(line)
	s.flush()
}

func (s *session) reply(line string) {
	switch {
	case line == "":
	case line[0] == '-':
		s.status = -1
	case len(line) >= 3 && line[:3] == "+OK":
		s.status = 1
	}
	s.logReply(line)
	s.bw.WriteString(line)
	s.bw.WriteString("\r\n")
}

func (s *session) flush() error {
	return s.bw.Flush()
}

// bad answers a bad command and counts it; false means the count reached
// the limit and the connection must be closed.
func (s *session) bad(text string) bool {
	s.badCmds++
	limit := maxBadBeforeLogin
	if s.state != stateAuth {
		limit = maxBadAfterLogin
	}
	if s.badCmds >= limit {
		s.reply("-ERR too many bad commands")
		s.end = EndClosed
		return false
	}
	s.reply("-ERR " + text)
	return true
}

// refuse answers a login attempt this connection may not make (no TLS, an
// unknown mechanism) with line; false means the client has been refused
// too often and the connection must be closed.
func (s *session) refuse(line string) bool {
	s.refused++
	if s.refused >= maxRefusedBeforeLogin {
		s.reply("-ERR [AUTH] too many refused login attempts")
		s.end = EndClosed
		return false
	}
	s.reply(line)
	return true
}

// prepareRead flushes the pending responses unless a complete command is
// already buffered (PIPELINING: answers go out in as few writes as
// possible, and always before the session waits), then arms the idle
// deadline.
func (s *session) prepareRead() error {
	if n := s.br.Buffered(); n == 0 {
		if err := s.flush(); err != nil {
			return err
		}
	} else if b, _ := s.br.Peek(n); bytes.IndexByte(b, '\n') < 0 {
		if err := s.flush(); err != nil {
			return err
		}
	}
	s.conn.SetReadDeadline(s.deadlineIn(s.cfg.IdleTimeout))
	// After arming the deadline: Shutdown and Kick set their flag before
	// they move the deadline into the past, so one of the two is seen.
	if s.stopping() {
		return errShutdown
	}
	if s.discarding {
		for {
			_, err := s.br.ReadSlice('\n')
			if err == nil {
				break
			}
			if err != bufio.ErrBufferFull {
				return err
			}
		}
		s.discarding = false
	}
	return nil
}

// readCommand returns the next command line without its line ending (CRLF,
// or a bare LF from sloppy clients). Lines longer than maxLineLen get
// errLineTooLong; the rest of such a line is skipped without buffering it.
func (s *session) readCommand() (string, error) {
	if err := s.prepareRead(); err != nil {
		return "", err
	}
	line, err := s.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		s.discarding = true
		return "", errLineTooLong
	}
	if err != nil {
		return "", err
	}
	if s.firstLine {
		s.firstLine = false
		if !s.proxied && s.looksLikeProxy(line) {
			return "", errProxyHeader
		}
	}
	if len(line) > maxLineLen {
		return "", errLineTooLong
	}
	line = trimEOL(line)
	if bytes.IndexByte(line, 0) >= 0 {
		return "", errNUL
	}
	return string(line), nil
}

// readAuthLine reads a SASL client response, which may be longer than a
// command line, up to maxAuthLineLen.
func (s *session) readAuthLine() (string, error) {
	if err := s.prepareRead(); err != nil {
		return "", err
	}
	var buf []byte
	for {
		chunk, err := s.br.ReadSlice('\n')
		if len(buf)+len(chunk) > maxAuthLineLen {
			if err != nil {
				s.discarding = true
			}
			return "", errLineTooLong
		}
		if err == nil && buf == nil {
			buf = chunk
			break
		}
		buf = append(buf, chunk...)
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			return "", err
		}
	}
	line := trimEOL(buf)
	if bytes.IndexByte(line, 0) >= 0 {
		return "", errNUL
	}
	return string(line), nil
}

func trimEOL(line []byte) []byte {
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line
}

// handshake runs the TLS server handshake on s.conn within
// HandshakeTimeout and switches the session to the TLS connection.
func (s *session) handshake() error {
	tc := tls.Server(s.conn, s.cfg.TLSConfig)
	s.conn.SetDeadline(s.deadlineIn(s.cfg.HandshakeTimeout))
	// As in prepareRead: the deadline just set may have replaced the one
	// Shutdown set to wake the session.
	if s.stopping() {
		return errShutdown
	}
	err := tc.HandshakeContext(s.ctx)
	s.conn.SetDeadline(time.Time{})
	if err != nil {
		return err
	}
	s.conn = tc
	s.tls = true
	return nil
}

// sleep waits d, or less if the server shuts down; false means it did.
func (s *session) sleep(d time.Duration) bool {
	if d <= 0 {
		return !s.srv.closing.Load()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.srv.done:
		return false
	case <-s.ctx.Done():
		return false
	}
}
