package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Mode says how a listener's connections start.
type Mode int

const (
	ModePlain Mode = iota // plain text; STLS offered when Config.TLSConfig != nil
	ModeTLS               // implicit TLS (POP3S, RFC 8314)
)

// String returns the listener name used in logs: pop3 or pop3s.
func (m Mode) String() string {
	if m == ModeTLS {
		return "pop3s"
	}
	return "pop3"
}

// Config is what a Server applies to each new connection. Fields are used
// verbatim: a zero timeout or limit means none. DefaultConfig gives the
// documented defaults.
type Config struct {
	TLSConfig           *tls.Config    // nil: no STLS, and Serve(l, ModeTLS) returns an error
	AllowInsecureAuth   bool           // accept credentials on unencrypted non-loopback connections
	IdleTimeout         time.Duration  // 10m: waiting for a command, any state
	WriteTimeout        time.Duration  // 1m: each write to the client must complete within it
	HandshakeTimeout    time.Duration  // 30s: TLS handshake (implicit and STLS), and the PROXY header
	MaxConnections      int            // 1000, global
	MaxConnectionsPerIP int            // 50, counting an IPv6 /64 as one address
	LoginTimeout        time.Duration  // 1m: from connect to a successful login, whatever the client sends
	RefusalLogInterval  time.Duration  // 1m: connections refused over a limit are logged once per address and interval, with a count
	AuthFailureDelay    time.Duration  // 2s
	MaxAuthFailures     int            // 3
	ProxyProtocolFrom   []netip.Prefix // nil: no PROXY headers accepted from anyone
	Implementation      string         // CAPA IMPLEMENTATION value, e.g. "pop3d-0.1.0"
	// TLSOffloadFrom names proxies that terminate TLS for their clients
	// (nginx's mail proxy): their connections count as encrypted when
	// deciding whether credentials may be sent. It is matched against the
	// address the connection really comes from, never one from a PROXY
	// header.
	TLSOffloadFrom []netip.Prefix

	// RFC 2449 LOGIN-DELAY and EXPIRE as CAPA announces them before login.
	// The Backend enforces LOGIN-DELAY; the engine applies Expire to a
	// Mailbox that is not a PolicyMailbox (whose Policy wins otherwise).
	LoginDelay time.Duration
	Expire     Expire // zero value: NEVER
	// PerUserPolicy reports whether users may have LOGIN-DELAY or EXPIRE
	// values of their own (CAPA then adds USER); nil: they may not.
	PerUserPolicy func() bool
	// APOP enables RFC 1939 APOP: the greeting carries a timestamp and the
	// APOP command is accepted, when the Backend is an APOPBackend.
	APOP     bool
	Hostname string // in the APOP timestamp; "": os.Hostname()
	// Now is the clock of EXPIRE and of the brute-force penalty's
	// expiry; nil: time.Now. Tests move it.
	Now func() time.Time
}

// DefaultConfig returns the documented defaults. TLSConfig is nil and
// Implementation is "pop3d": the caller sets both.
func DefaultConfig() Config {
	return Config{
		IdleTimeout:         10 * time.Minute,
		WriteTimeout:        time.Minute,
		HandshakeTimeout:    30 * time.Second,
		MaxConnections:      1000,
		MaxConnectionsPerIP: 50,
		LoginTimeout:        time.Minute,
		RefusalLogInterval:  time.Minute,
		AuthFailureDelay:    2 * time.Second,
		MaxAuthFailures:     3,
		Implementation:      "pop3d",
	}
}

// trustsProxy reports whether connections from ip must start with a PROXY
// protocol header.
func (c *Config) trustsProxy(ip netip.Addr) bool {
	return ip.IsValid() && containsAddr(c.ProxyProtocolFrom, ip)
}

// offloadsTLS reports whether ip is a proxy that terminates TLS for its
// clients.
func (c *Config) offloadsTLS(ip netip.Addr) bool {
	return ip.IsValid() && containsAddr(c.TLSOffloadFrom, ip)
}

func containsAddr(prefixes []netip.Prefix, ip netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("pop3: server closed")

// refuseDeadline bounds the write of the refusal line to a client over a
// connection limit: the accept loop does it itself and must not stall.
const refuseDeadline = 100 * time.Millisecond

// Server serves POP3 on any number of listeners. Safe for concurrent use.
type Server struct {
	backend  Backend
	logger   *slog.Logger
	cfg      atomic.Pointer[Config]
	commands map[string]command // read-only after New
	penalty  *penalties         // failed logins per client address

	// ctx is cancelled when Shutdown gives up waiting: it is the parent of
	// every session's context.
	ctx    context.Context
	cancel context.CancelFunc

	closing  atomic.Bool
	done     chan struct{} // closed by Shutdown: wakes failure delays
	mu       sync.Mutex
	listen   map[net.Listener]struct{}
	sessions map[*session]struct{}
	perIP    map[netip.Addr]int // keyed by clientKey
	refusals refusalLog
	idle     chan struct{} // closed when sessions drops to zero during Shutdown
}

// New returns a Server that authenticates through backend and applies cfg to
// new connections. A nil logger discards log lines.
func New(backend Backend, cfg Config, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		backend:  backend,
		logger:   logger,
		commands: commandTable(),
		penalty:  newPenalties(),
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan struct{}),
		listen:   make(map[net.Listener]struct{}),
		sessions: make(map[*session]struct{}),
		perIP:    make(map[netip.Addr]int),
	}
	s.SetConfig(cfg)
	return s
}

// SetConfig replaces the config for connections accepted from now on (SIGHUP
// reload); sessions already running keep theirs.
func (s *Server) SetConfig(cfg Config) {
	cfg.ProxyProtocolFrom = append([]netip.Prefix(nil), cfg.ProxyProtocolFrom...)
	cfg.TLSOffloadFrom = append([]netip.Prefix(nil), cfg.TLSOffloadFrom...)
	s.cfg.Store(&cfg)
}

func (s *Server) config() *Config { return s.cfg.Load() }

// Serve accepts connections on l until Shutdown; it returns ErrServerClosed
// after Shutdown. It closes l when it returns.
func (s *Server) Serve(l net.Listener, mode Mode) error {
	defer l.Close()
	if mode != ModePlain && mode != ModeTLS {
		return fmt.Errorf("pop3: serve %s: unknown mode %d", l.Addr(), int(mode))
	}
	if mode == ModeTLS && s.config().TLSConfig == nil {
		return fmt.Errorf("pop3: serve %s: implicit TLS needs a TLS config (certificate and key)", l.Addr())
	}
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listen[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listen, l)
		s.mu.Unlock()
	}()

	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// Out of file descriptors and the like: back off as
				// net/http does rather than spin.
				if delay == 0 {
					delay = 5 * time.Millisecond
				} else {
					delay = min(2*delay, time.Second)
				}
				s.logger.Warn("accept failed", "listener", mode.String(), "err", err, "retry_in", delay)
				select {
				case <-time.After(delay):
				case <-s.done:
				}
				continue
			}
			return fmt.Errorf("pop3: accept on %s: %w", l.Addr(), err)
		}
		delay = 0
		s.accept(c, mode)
	}
}

// accept applies the connection limits to c and starts its session. It runs
// in the accept loop: a refused connection costs no goroutine.
func (s *Server) accept(c net.Conn, mode Mode) {
	cfg := s.config()
	if mode == ModeTLS && cfg.TLSConfig == nil {
		s.logger.Error("implicit TLS connection refused: no TLS config", "remote", c.RemoteAddr().String())
		c.Close()
		return
	}
	ip := addrIP(c.RemoteAddr())
	proxied := cfg.trustsProxy(ip)

	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		c.Close()
		return
	}
	if cfg.MaxConnections > 0 && len(s.sessions) >= cfg.MaxConnections {
		s.mu.Unlock()
		s.refuse(c, mode, "max_connections")
		return
	}
	// A proxied connection's per-IP count is taken once its header names
	// the client; the proxy's own address is not the client's.
	if !proxied && !s.takeIPLocked(ip, cfg.MaxConnectionsPerIP) {
		s.mu.Unlock()
		s.refuse(c, mode, "max_connections_per_ip")
		return
	}
	sess := newSession(s, c, mode, cfg, proxied)
	if !proxied {
		sess.countedIP = ip
	}
	s.sessions[sess] = struct{}{}
	s.mu.Unlock()
	go sess.serve()
}

// takeIPLocked counts one more connection from ip (its clientKey) unless
// that would exceed max. s.mu must be held.
func (s *Server) takeIPLocked(ip netip.Addr, max int) bool {
	if !ip.IsValid() {
		return true
	}
	ip = clientKey(ip)
	if max > 0 && s.perIP[ip] >= max {
		return false
	}
	s.perIP[ip]++
	return true
}

// refuse answers a connection over a limit and closes it. On an implicit TLS
// listener there is no plain text to speak, so the connection is only closed.
func (s *Server) refuse(c net.Conn, mode Mode, limit string) {
	s.logRefusal(c.RemoteAddr(), addrIP(c.RemoteAddr()), mode, limit)
	if mode == ModePlain {
		writeTooMany(c)
	}
	c.Close()
}

// writeTooMany tells a plain-text client over a connection limit, within
// refuseDeadline.
func writeTooMany(c net.Conn) {
	c.SetWriteDeadline(time.Now().Add(refuseDeadline))
	c.Write([]byte("-ERR [SYS/TEMP] too many connections\r\n"))
}

// remove forgets a finished session.
func (s *Server) remove(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, sess)
	if ip := sess.countedIP; ip.IsValid() {
		ip = clientKey(ip)
		if s.perIP[ip] <= 1 {
			delete(s.perIP, ip)
		} else {
			s.perIP[ip]--
		}
	}
	if len(s.sessions) == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
}

// Shutdown stops accepting, lets sessions already in UPDATE finish, tells
// the others
//
//	-ERR [SYS/TEMP] server shutting down
//
// and closes them WITHOUT Commit (Mailbox.Close), and returns when all
// sessions are gone or ctx is done (then it closes them forcibly and returns
// ctx's error).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing.Swap(true) {
		close(s.done)
		s.refusals.stop(s.logger)
	}
	for l := range s.listen {
		l.Close()
	}
	var idle chan struct{}
	if len(s.sessions) > 0 {
		if s.idle == nil {
			s.idle = make(chan struct{})
		}
		idle = s.idle
	}
	for sess := range s.sessions {
		sess.interrupt()
	}
	s.mu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
	}
	s.cancel()
	s.mu.Lock()
	for sess := range s.sessions {
		sess.raw.Close()
	}
	s.mu.Unlock()
	return ctx.Err()
}

// addrIP returns the IP address of a TCP or UDP address, unmapped, or the
// zero Addr for anything else.
func addrIP(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// isTemporary reports accept errors that go away by themselves: a full file
// descriptor table or a connection reset before it was accepted.
func isTemporary(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ECONNRESET)
}

// takeIPFor counts sess's connection against ip, for a session that
// learned its client address from a PROXY header.
func (s *Server) takeIPFor(sess *session, ip netip.Addr, max int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.takeIPLocked(ip, max) {
		return false
	}
	sess.countedIP = ip
	return true
}
