package daemon_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pop3d/pop3d/daemon"
)

func TestShutdownIdleSessions(t *testing.T) {
	b := aliceBackend()
	ts := startServer(t, b, daemon.ModePlain, nil)
	auth := ts.dial(t)
	trans := ts.login(t, "alice", "secret")
	trans.cmd("DELE 1", "+OK message 1 deleted")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, c := range []*client{auth, trans} {
		c.expect("-ERR [SYS/TEMP] server shutting down")
		c.expectClosed()
	}
	if got := waitFor(t, b.closes, "Close"); got != "alice" {
		t.Errorf("Close for %q", got)
	}
	if len(b.commits) != 0 {
		t.Errorf("Commit on shutdown")
	}
	if _, err := net.Dial("tcp", ts.addr); err == nil {
		t.Errorf("still accepting after Shutdown")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.srv.Serve(l, daemon.ModePlain); !errors.Is(err, daemon.ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v", err)
	}
}

func TestShutdownLetsUpdateFinish(t *testing.T) {
	b := aliceBackend()
	b.commitWait = make(chan struct{})
	b.inCommit = make(chan struct{})
	ts := startServer(t, b, daemon.ModePlain, nil)
	c := ts.login(t, "alice", "secret")
	c.cmd("DELE 2", "+OK message 2 deleted")
	c.send("QUIT")
	waitFor(t, b.inCommit, "Commit to start")
	done := make(chan error, 1)
	go func() { done <- ts.srv.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while a Commit was running", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(b.commitWait)
	c.expect("+OK bye (1 messages deleted)")
	c.expectClosed()
	if err := waitFor(t, done, "Shutdown"); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if rec := waitFor(t, b.commits, "commit"); len(rec.deleted) != 1 || rec.deleted[0] != 1 {
		t.Errorf("commit %+v", rec)
	}
}

func TestShutdownForced(t *testing.T) {
	b := aliceBackend()
	b.commitWait = make(chan struct{})
	b.inCommit = make(chan struct{})
	ts := startServer(t, b, daemon.ModePlain, nil)
	c := ts.login(t, "alice", "secret")
	c.send("QUIT")
	waitFor(t, b.inCommit, "Commit to start")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with a stuck Commit: %v", err)
	}
	c.expectClosed()
	close(b.commitWait)
	waitFor(t, b.commits, "commit")
}

func TestShutdownDuringFailureDelay(t *testing.T) {
	ts := startServer(t, aliceBackend(), daemon.ModePlain, func(c *daemon.Config) { c.AuthFailureDelay = time.Hour })
	c := ts.dial(t)
	c.cmd("USER alice", "+OK")
	c.send("PASS wrong")
	ts.waitLog(t, `msg="login failed"`)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	c.expect("-ERR [SYS/TEMP] server shutting down")
	c.expectClosed()
}

func TestSetConfigAppliesToNewConnections(t *testing.T) {
	ts := startServer(t, aliceBackend(), daemon.ModePlain, nil)
	old := ts.dial(t)
	cfg := testConfig()
	cfg.Implementation = "pop3d-reloaded"
	ts.srv.SetConfig(cfg)
	c := ts.dial(t)
	c.send("CAPA")
	if lines := c.multi(); !contains(lines, "IMPLEMENTATION pop3d-reloaded") {
		t.Errorf("new connection: %q", lines)
	}
	old.send("CAPA")
	if lines := old.multi(); !contains(lines, "IMPLEMENTATION pop3d-test") {
		t.Errorf("old connection: %q", lines)
	}
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

// dialFrom connects from a given loopback source address.
func (ts *testServer) dialFrom(t *testing.T, src string) *client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	conn, err := d.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return newClient(t, conn)
}

func TestConnectionLimits(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*daemon.Config)
		other string // a source address that must still get in, or ""
	}{
		{"global", func(c *daemon.Config) { c.MaxConnections = 2; c.MaxConnectionsPerIP = 0 }, ""},
		{"per IP", func(c *daemon.Config) { c.MaxConnections = 0; c.MaxConnectionsPerIP = 2 }, "127.0.0.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, aliceBackend(), daemon.ModePlain, tt.edit)
			a, b := ts.dial(t), ts.dial(t)
			_ = b
			c := ts.dialNoGreeting(t)
			c.expect("-ERR [SYS/TEMP] too many connections")
			c.expectClosed()
			if tt.other != "" {
				o := ts.dialFrom(t, tt.other)
				o.expect("+OK POP3 server ready")
			}
			a.cmd("QUIT", "+OK bye")
			a.expectClosed()
			// The slot is free once the server has noticed.
			deadline := time.Now().Add(ioTimeout)
			for {
				c := ts.dialNoGreeting(t)
				if l := c.line(); l == "+OK POP3 server ready" {
					break
				} else if time.Now().After(deadline) {
					t.Fatalf("slot never freed: %q", l)
				}
				time.Sleep(10 * time.Millisecond)
			}
			ts.waitLog(t, `msg="connection refused"`)
		})
	}
}

func TestConnectionLimitTLS(t *testing.T) {
	_, r, _, _ := tlsSetup(t)
	ts := startServer(t, aliceBackend(), daemon.ModeTLS, func(c *daemon.Config) {
		withTLS(r)(c)
		c.MaxConnections = 1
	})
	a := ts.dialNoGreeting(t) // holds the slot while the handshake waits
	_ = a
	ts.waitLog(t, "listener=pop3s")
	c := ts.dialNoGreeting(t)
	c.expectClosed() // no plain text on a TLS port
	if !strings.Contains(ts.logs.String(), "max_connections") {
		t.Errorf("refusal not logged")
	}
}

// A client that stopped reading in the middle of a RETR must not hold the
// shutdown up for its whole WriteTimeout: Shutdown returns without having
// to force anything, and the mailbox is released without Commit.
func TestShutdownWithStuckRetr(t *testing.T) {
	b := newMemBackend()
	b.addUser("u", "p", memMessage{data: []byte(strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n", 1<<18))})
	ts := startServer(t, b, daemon.ModePlain, func(c *daemon.Config) { c.WriteTimeout = time.Hour })
	c := ts.login(t, "u", "p")
	c.cmd("DELE 1", "+OK message 1 deleted")
	c.cmd("RSET", "+OK maildrop has 1 messages (17039360 octets)")
	c.send("RETR 1")
	time.Sleep(200 * time.Millisecond) // let the socket buffers fill
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a session stuck writing: %v", err)
	}
	if got := waitFor(t, b.closes, "Close of the stuck session"); got != "u" {
		t.Errorf("Close for %q", got)
	}
	if len(b.commits) != 0 {
		t.Error("Commit for a session cut off by shutdown")
	}
}
