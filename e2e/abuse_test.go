package e2e

import (
	"bytes"
	"fmt"
	"github.com/pop3d/pop3d/internal/pop3test"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// probeLimit is how long a well-behaved session (connect, login, STAT,
// QUIT) may take while the server is being abused. Issue 4 asks for an
// answer "within a second"; the limit is per step so that a loaded CI
// machine does not fail the test, while a server that stalls does.
const probeLimit = 2 * time.Second

// probe runs a complete short session and fails the test if any step
// takes longer than probeLimit.
func probe(t *testing.T, addr string, dialFn func() net.Conn) {
	t.Helper()
	start := time.Now()
	var c net.Conn
	var err error
	if dialFn != nil {
		c = dialFn()
	} else if c, err = net.DialTimeout("tcp", addr, probeLimit); err != nil {
		t.Fatalf("probe: %v", err)
	}
	p := pop3test.New(t, c)
	step := func(what string, f func()) {
		t.Helper()
		s := time.Now()
		f()
		if d := time.Since(s); d > probeLimit {
			t.Errorf("probe %s took %v while under abuse", what, d)
		}
	}
	step("greeting", func() { p.ExpectOK("greeting") })
	step("login", func() { p.Login(alice, alicePass) })
	step("STAT", func() { p.OK("STAT") })
	step("QUIT", func() { p.Quit() })
	t.Logf("probe session took %v", time.Since(start))
}

// TestAbuse: bounded hostile clients on loopback; during each the server
// keeps serving a well-behaved client.
func TestAbuse(t *testing.T) {
	s := newSite(t)
	s.deliverShapes(t, alice)
	srv := startServer(t, s)

	t.Run("long line", func(t *testing.T) {
		c := pop3test.Dial(t, srv.addr)
		big := bytes.Repeat([]byte("A"), 100<<10)
		c.NetConn().SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.NetConn().Write(big); err != nil {
			t.Fatalf("writing 100 KB: %v", err)
		}
		probe(t, srv.addr, nil)
		c.Send("")
		if r := c.Line(); !strings.HasPrefix(r, "-ERR") {
			t.Errorf("100 KB line: %q, want -ERR", r)
		}
		// The line was discarded; the session goes on.
		if caps := c.Capa(); !contains(caps, "UIDL") {
			t.Errorf("CAPA after a long line = %q", caps)
		}
	})

	t.Run("NUL bytes", func(t *testing.T) {
		c := pop3test.Dial(t, srv.addr)
		for _, l := range []string{"\x00\x00\x00", "USER a\x00b"} {
			if r := c.Cmd(l); !strings.HasPrefix(r, "-ERR") {
				t.Errorf("%q: %q, want -ERR", l, r)
			}
		}
		if caps := c.Capa(); !contains(caps, "UIDL") {
			t.Errorf("CAPA after NUL bytes = %q", caps)
		}
		probe(t, srv.addr, nil)
		// The third bad command before login closes the connection.
		if r := c.Cmd("CA\x00PA"); !strings.HasPrefix(r, "-ERR") {
			t.Errorf("third bad command: %q, want -ERR", r)
		}
		c.ExpectEOF()
	})

	t.Run("slowloris", func(t *testing.T) {
		const n = 30
		var conns []net.Conn
		for i := 0; i < n; i++ {
			c, err := net.DialTimeout("tcp", srv.addr, 5*time.Second)
			if err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			conns = append(conns, c)
			defer c.Close()
		}
		msg := "USER alice\r\n"
		for i := 0; i < 3; i++ {
			for _, c := range conns {
				c.SetWriteDeadline(time.Now().Add(time.Second))
				c.Write([]byte{msg[i]})
			}
			probe(t, srv.addr, nil)
			time.Sleep(time.Second)
		}
	})

	t.Run("never reads", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", srv.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Another user's mailbox, so that alice's lock stays free; a tiny
		// receive buffer so that the server's writes block early.
		s.deliver(t, bob, "big", shapes()[7].data, false)
		c.(*net.TCPConn).SetReadBuffer(4096)
		cmds := "USER " + bob + "\r\nPASS " + bobPass + "\r\n" + strings.Repeat("RETR 1\r\n", 20)
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, cmds)
		time.Sleep(500 * time.Millisecond)
		probe(t, srv.addr, nil)
	})
}

// TestConnectionLimits: over max_connections and max_connections_per_ip the
// client gets -ERR [SYS/TEMP] and is closed; clients from other addresses
// (PROXY headers from a trusted proxy) are still served.
func TestConnectionLimits(t *testing.T) {
	s := newSite(t)
	s.deliverShapes(t, alice)

	t.Run("global", func(t *testing.T) {
		srv := startServer(t, s, "-max-connections", "10", "-max-connections-per-ip", "0")
		var held []*pop3test.Conn
		for i := 0; i < 10; i++ {
			held = append(held, pop3test.Dial(t, srv.addr))
		}
		over := refused(t, srv.addr, "")
		if !strings.HasPrefix(over, "-ERR [SYS/TEMP]") {
			t.Errorf("connection 11 of max 10: %q, want -ERR [SYS/TEMP] ...", over)
		}
		held[0].Quit()
		waitFor(t, "a slot to free up", func() bool {
			c, err := net.DialTimeout("tcp", srv.addr, time.Second)
			if err != nil {
				return false
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			l, _ := pop3test.New(t, c).ReadLineErr()
			return strings.HasPrefix(l, "+OK")
		})
	})

	t.Run("per IP", func(t *testing.T) {
		srv := startServer(t, s, "-max-connections-per-ip", "5", "-proxy-protocol-from", "127.0.0.1/32", "-allow-insecure-auth")
		proxied := func(ip string) func() net.Conn {
			return func() net.Conn {
				c, err := net.DialTimeout("tcp", srv.addr, 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				_, port, _ := net.SplitHostPort(srv.addr)
				fmt.Fprintf(c, "PROXY TCP4 %s 127.0.0.1 40000 %s\r\n", ip, port)
				return c
			}
		}
		for i := 0; i < 5; i++ {
			p := pop3test.New(t, proxied("198.51.100.1")())
			p.ExpectOK(fmt.Sprintf("connection %d from 198.51.100.1", i+1))
		}
		for i := 0; i < 20; i++ {
			c := proxied("198.51.100.1")()
			p := pop3test.New(t, c)
			if l, _ := p.ReadLineErr(); !strings.HasPrefix(l, "-ERR [SYS/TEMP]") {
				t.Fatalf("connection %d from 198.51.100.1 (limit 5): %q, want -ERR [SYS/TEMP] ...", 6+i, l)
			}
			c.Close()
		}
		probe(t, srv.addr, proxied("198.51.100.2"))
	})
}

// refused connects and returns the first line, expecting the server to
// close the connection after it.
func refused(t *testing.T, addr, proxyHeader string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	p := pop3test.New(t, c)
	if proxyHeader != "" {
		io.WriteString(c, proxyHeader)
	}
	l, err := p.ReadLineErr()
	if err != nil {
		t.Fatalf("over the limit: %v", err)
	}
	p.ExpectEOF()
	return l
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
