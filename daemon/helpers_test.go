package daemon_test

import (
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
	"github.com/pop3d/pop3d/internal/pop3test"
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
	return startServerLevel(t, b, mode, edit, slog.LevelDebug)
}

// startServerLevel is startServer logging at level and above.
func startServerLevel(t testing.TB, b *memBackend, mode daemon.Mode, edit func(*daemon.Config), level slog.Level) *testServer {
	t.Helper()
	ts := startServerBackendLevel(t, b, mode, edit, level)
	ts.backend = b
	return ts
}

// startServerBackend is startServer for any Backend.
func startServerBackend(t testing.TB, b daemon.Backend, mode daemon.Mode, edit func(*daemon.Config)) *testServer {
	t.Helper()
	return startServerBackendLevel(t, b, mode, edit, slog.LevelDebug)
}

// startServerBackendLevel is startServerBackend logging at level and above.
func startServerBackendLevel(t testing.TB, b daemon.Backend, mode daemon.Mode, edit func(*daemon.Config), level slog.Level) *testServer {
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
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level}))
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

// client is the shared strict test client (internal/pop3test) with the
// shorthands these tests are written in.
type client struct {
	*pop3test.Conn
	t *testing.T
}

func newClient(t *testing.T, conn net.Conn) *client {
	return &client{Conn: pop3test.New(t, conn), t: t}
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
	c.Send(line)
}

// line reads one response line without its CRLF; a line not ended by CRLF
// fails the test.
func (c *client) line() string {
	c.t.Helper()
	return c.Line()
}

func (c *client) expect(want string) {
	c.t.Helper()
	c.Expect(want)
}

// cmd sends line and checks the one-line answer.
func (c *client) cmd(line, want string) {
	c.t.Helper()
	c.Send(line)
	c.Expect(want)
}

// multi reads the lines of a multi-line body up to and without ".", as
// sent (stuffing kept).
func (c *client) multi() []string {
	c.t.Helper()
	var lines []string
	for {
		l := c.Line()
		if l == "." {
			return lines
		}
		lines = append(lines, l)
	}
}

// body reads a multi-line body raw, terminator included.
func (c *client) body() []byte {
	c.t.Helper()
	return c.RawBody()
}

// expectClosed checks that the server closed the connection, with no more
// data, and closes the client's side.
func (c *client) expectClosed() {
	c.t.Helper()
	c.ExpectClosed()
}

// startTLS upgrades the client after a +OK to STLS.
func (c *client) startTLS(cfg *tls.Config) {
	c.t.Helper()
	c.StartTLS(cfg)
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
