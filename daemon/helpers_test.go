package daemon_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"github.com/pop3d/pop3d/internal/testlog"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pop3d/pop3d/daemon"
)

// ioTimeout bounds every client read and write in tests, so that a broken
// server fails a test instead of hanging it.
const ioTimeout = 10 * time.Second

// syncBuffer collects output from many goroutines while the test reads it.
type syncBuffer = testlog.Buffer

// countingListener counts the writes made to each accepted connection.
type countingListener struct {
	net.Listener
	writes atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, l: l}, nil
}

type countingConn struct {
	net.Conn
	l *countingListener
}

// CloseWrite passes through, so that the server's lingering close works.
func (c *countingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.l.writes.Add(1)
	return c.Conn.Write(p)
}

type testServer struct {
	srv     *daemon.Server
	addr    string
	backend *memBackend
	logs    *syncBuffer
	lis     *countingListener
	served  chan error
}

// testConfig is DefaultConfig with delays short enough for tests.
func testConfig() daemon.Config {
	cfg := daemon.DefaultConfig()
	cfg.AuthFailureDelay = 20 * time.Millisecond
	cfg.Implementation = "pop3d-test"
	return cfg
}

// startServer serves b on 127.0.0.1:0 in mode with the config testConfig
// gives after edit. The server shuts down when the test ends.
func startServer(t testing.TB, b *memBackend, mode daemon.Mode, edit func(*daemon.Config)) *testServer {
	t.Helper()
	ts := startServerBackend(t, b, mode, edit)
	ts.backend = b
	return ts
}

// startServerBackend is startServer for any Backend.
func startServerBackend(t testing.TB, b daemon.Backend, mode daemon.Mode, edit func(*daemon.Config)) *testServer {
	t.Helper()
	cfg := testConfig()
	if edit != nil {
		edit(&cfg)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ts := &testServer{
		srv:    daemon.New(b, cfg, logger),
		addr:   l.Addr().String(),
		logs:   logs,
		lis:    &countingListener{Listener: l},
		served: make(chan error, 1),
	}
	go func() { ts.served <- ts.srv.Serve(ts.lis, mode) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ts.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-ts.served; !errors.Is(err, daemon.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return ts
}

// client speaks raw POP3 lines.
type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func newClient(t *testing.T, conn net.Conn) *client {
	conn.SetDeadline(time.Now().Add(ioTimeout))
	return &client{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// dial connects and checks the greeting.
func (ts *testServer) dial(t *testing.T) *client {
	t.Helper()
	c := ts.dialNoGreeting(t)
	c.expect("+OK POP3 server ready")
	return c
}

func (ts *testServer) dialNoGreeting(t *testing.T) *client {
	t.Helper()
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return newClient(t, conn)
}

// login dials and logs in with USER/PASS.
func (ts *testServer) login(t *testing.T, user, pass string) *client {
	t.Helper()
	c := ts.dial(t)
	c.send("USER " + user)
	c.expect("+OK")
	c.send("PASS " + pass)
	if l := c.line(); !strings.HasPrefix(l, "+OK maildrop has ") {
		t.Fatalf("PASS: got %q", l)
	}
	return c
}

func (c *client) send(line string) {
	c.t.Helper()
	c.conn.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := c.conn.Write([]byte(line + "\r\n")); err != nil {
		c.t.Fatalf("write %q: %v", line, err)
	}
}

// line reads one response line without its CRLF; a line not ended by CRLF
// fails the test.
func (c *client) line() string {
	c.t.Helper()
	c.conn.SetDeadline(time.Now().Add(ioTimeout))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (partial %q)", err, l)
	}
	if !strings.HasSuffix(l, "\r\n") {
		c.t.Fatalf("line %q does not end in CRLF", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

func (c *client) expect(want string) {
	c.t.Helper()
	if got := c.line(); got != want {
		c.t.Fatalf("got %q, want %q", got, want)
	}
}

// cmd sends line and checks the one-line answer.
func (c *client) cmd(line, want string) {
	c.t.Helper()
	c.send(line)
	c.expect(want)
}

// multi reads the lines of a multi-line body up to and without ".".
func (c *client) multi() []string {
	c.t.Helper()
	var lines []string
	for {
		l := c.line()
		if l == "." {
			return lines
		}
		lines = append(lines, l)
	}
}

// body reads a multi-line body raw, terminator included.
func (c *client) body() []byte {
	c.t.Helper()
	var b []byte
	for {
		c.conn.SetDeadline(time.Now().Add(ioTimeout))
		l, err := c.r.ReadBytes('\n')
		if err != nil {
			c.t.Fatalf("read body: %v", err)
		}
		b = append(b, l...)
		if string(l) == ".\r\n" && (len(b) == 3 || bytes.HasSuffix(b[:len(b)-3], []byte("\n"))) {
			return b
		}
	}
}

// expectClosed checks that the server closed the connection, with no more
// data, and closes the client's side.
func (c *client) expectClosed() {
	c.t.Helper()
	c.conn.SetDeadline(time.Now().Add(ioTimeout))
	l, err := c.r.ReadString('\n')
	if err == nil || l != "" {
		c.t.Fatalf("expected close, got %q, %v", l, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatalf("connection still open")
	}
	// Close our side too, as real clients do; the server lingers until then.
	c.conn.Close()
}

// startTLS upgrades the client after a +OK to STLS.
func (c *client) startTLS(cfg *tls.Config) {
	c.t.Helper()
	tc := tls.Client(c.conn, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("client handshake: %v", err)
	}
	c.conn = tc
	c.r = bufio.NewReader(tc)
}

// waitLog waits until the server log contains s.
func (ts *testServer) waitLog(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for !strings.Contains(ts.logs.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("log never contained %q:\n%s", s, ts.logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
