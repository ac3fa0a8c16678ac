package daemon_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/pop3d/pop3d/daemon"
)

// loginTimeout is short so that the tests stay fast; the idle timeout stays
// long, so that only the login timeout can end the sessions.
const loginTimeout = 300 * time.Millisecond

func withLoginTimeout(c *daemon.Config) {
	c.LoginTimeout = loginTimeout
	c.IdleTimeout = 10 * time.Minute
	c.HandshakeTimeout = 10 * time.Minute
}

// TestLoginTimeout checks that a connection that has not logged in within
// LoginTimeout is told and closed, however it spends the time, and that a
// session that logged in is not.
func TestLoginTimeout(t *testing.T) {
	_, r, _, _ := tlsSetup(t)
	ts := startServer(t, aliceBackend(), daemon.ModePlain, func(c *daemon.Config) {
		withLoginTimeout(c)
		withTLS(r)(c)
	})
	const want = "-ERR [SYS/TEMP] login timeout: no login within 300ms"
	t.Run("silent", func(t *testing.T) {
		// The answer names the login timeout: that, not a time measured
		// here (the server's clock starts at accept, before dial returns),
		// shows why the connection closed.
		c := ts.dial(t)
		c.expect(want)
		c.expectClosed()
	})
	t.Run("busy without login", func(t *testing.T) {
		c := ts.dial(t)
		for deadline := time.Now().Add(ioTimeout); ; {
			if time.Now().After(deadline) {
				t.Fatal("still served after the login timeout")
			}
			c.send("CAPA")
			if l := c.line(); l == want {
				break
			} else if l != "+OK capability list follows" {
				t.Fatalf("CAPA before login: %q", l)
			}
			c.multi()
			time.Sleep(loginTimeout / 5)
		}
		c.expectClosed()
	})
	t.Run("USER without PASS", func(t *testing.T) {
		c := ts.dial(t)
		c.send("USER alice")
		c.expect("+OK")
		c.expect(want)
		c.expectClosed()
	})
	t.Run("AUTH waiting for the response", func(t *testing.T) {
		c := ts.dial(t)
		c.send("AUTH PLAIN")
		c.expect("+ ")
		c.expect(want)
		c.expectClosed()
	})
	t.Run("silent in the TLS handshake", func(t *testing.T) {
		c := ts.dial(t)
		c.cmd("STLS", "+OK begin TLS negotiation")
		c.expectClosed()
	})
	t.Run("logged in", func(t *testing.T) {
		c := ts.login(t, "alice", "secret")
		time.Sleep(2 * loginTimeout)
		c.cmd("NOOP", "+OK")
		c.cmd("QUIT", "+OK bye (0 messages deleted)")
	})
	ts.waitLog(t, `msg="login timeout" remote_ip=127.0.0.1 session=ID login_timeout=300ms`)
}

// TestLoginTimeoutProxyHeader checks that a trusted proxy's connection that
// never sends its header is closed at the login timeout, not at the longer
// handshake timeout.
func TestLoginTimeoutProxyHeader(t *testing.T) {
	ts := startServer(t, aliceBackend(), daemon.ModePlain, func(c *daemon.Config) {
		withLoginTimeout(c)
		trustLoopback(c)
	})
	c := ts.dialNoGreeting(t)
	start := time.Now()
	c.expectClosed()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("closed after %s", d)
	}
}

// TestPerIPv6Prefix checks that max_connections_per_ip counts an IPv6 /64
// as one client and IPv4-mapped IPv6 as the IPv4 address.
func TestPerIPv6Prefix(t *testing.T) {
	ts := startServer(t, aliceBackend(), daemon.ModePlain, func(c *daemon.Config) {
		trustLoopback(c)
		c.MaxConnectionsPerIP = 2
	})
	v6 := func(src string) string { return "PROXY TCP6 " + src + " ::1 5555 110\r\n" }
	for _, tc := range []struct {
		name           string
		held, over, ok []string
	}{
		{"same /64", []string{v6("2001:db8:1:2::1"), v6("2001:db8:1:2::2")},
			[]string{v6("2001:db8:1:2:ffff:ffff:ffff:ffff")}, []string{v6("2001:db8:1:3::1")}},
		{"IPv4-mapped", []string{proxyV1("198.51.100.9"), v6("::ffff:198.51.100.9")},
			[]string{proxyV1("198.51.100.9"), v6("::ffff:198.51.100.9")}, []string{proxyV1("198.51.100.10")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var held []*client
			for _, h := range tc.held {
				c := ts.dialProxied(t, h)
				c.expect("+OK POP3 server ready")
				held = append(held, c)
			}
			for _, h := range tc.over {
				c := ts.dialProxied(t, h)
				c.expect("-ERR [SYS/TEMP] too many connections")
				c.expectClosed()
			}
			for _, h := range tc.ok {
				c := ts.dialProxied(t, h)
				c.expect("+OK POP3 server ready")
				c.cmd("QUIT", "+OK bye")
			}
			for _, c := range held {
				c.cmd("QUIT", "+OK bye")
				c.expectClosed()
			}
		})
	}
}

// TestRefusalLogAggregated checks that a flood of refused connections from
// one client gives one line at once and one line with the count per
// interval, not one line each; another client gets its own line.
func TestRefusalLogAggregated(t *testing.T) {
	ts := startServer(t, aliceBackend(), daemon.ModePlain, func(c *daemon.Config) {
		c.MaxConnectionsPerIP = 1
		c.RefusalLogInterval = 500 * time.Millisecond
	})
	a := ts.dial(t)
	b := ts.dialFrom(t, "127.0.0.2")
	b.expect("+OK POP3 server ready")
	const n = 50
	for range n {
		c := ts.dialNoGreeting(t)
		c.expect("-ERR [SYS/TEMP] too many connections")
		c.expectClosed()
	}
	for range 3 {
		c := ts.dialFrom(t, "127.0.0.2")
		c.expect("-ERR [SYS/TEMP] too many connections")
		c.expectClosed()
	}
	ts.waitLog(t, fmt.Sprintf(`msg="connections refused" remote_ip=127.0.0.1 listener=pop3 limit=max_connections_per_ip count=%d interval=500ms`, n-1))
	ts.waitLog(t, `msg="connections refused" remote_ip=127.0.0.2 listener=pop3 limit=max_connections_per_ip count=2 interval=500ms`)
	logs := ts.logs.String()
	if got := strings.Count(logs, `msg="connection refused" remote=127.0.0.1:`); got != 1 {
		t.Errorf("%d single refusal lines for 127.0.0.1, want 1:\n%s", got, logs)
	}
	if got := strings.Count(logs, `msg="connection refused" remote=127.0.0.2:`); got != 1 {
		t.Errorf("%d single refusal lines for 127.0.0.2, want 1:\n%s", got, logs)
	}
	// A client refused again later is logged at once again.
	time.Sleep(1200 * time.Millisecond) // two intervals: the window is gone
	c := ts.dialNoGreeting(t)
	c.expect("-ERR [SYS/TEMP] too many connections")
	ts.waitLog(t, `msg="connection refused" remote=127.0.0.1:`)
	if got := strings.Count(ts.logs.String(), `msg="connection refused" remote=127.0.0.1:`); got != 2 {
		t.Errorf("%d single refusal lines for 127.0.0.1 after the window, want 2", got)
	}
	a.cmd("QUIT", "+OK bye")
	b.cmd("QUIT", "+OK bye")
}

// TestProxyV1Split checks that a v1 header arriving in two TCP segments is
// read whole (the spec lets senders split it).
func TestProxyV1Split(t *testing.T) {
	ts := startServer(t, aliceBackend(), daemon.ModePlain, trustLoopback)
	h := proxyV1("203.0.113.9")
	for _, cut := range []int{1, 5, 6, 17, len(h) - 1} {
		c := ts.dialNoGreeting(t)
		c.NetConn().(*net.TCPConn).SetNoDelay(true)
		if _, err := c.NetConn().Write([]byte(h[:cut])); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		if _, err := c.NetConn().Write([]byte(h[cut:])); err != nil {
			t.Fatal(err)
		}
		c.expect("+OK POP3 server ready")
		c.cmd("QUIT", "+OK bye")
	}
	ts.waitLog(t, "msg=connect remote_ip=203.0.113.9 session=ID remote=203.0.113.9:5555 listener=pop3")
}

// TestProxyUnknown checks that a header that names no client (v1 UNKNOWN,
// v2 LOCAL) leaves the address unknown: the connection from the loopback
// proxy is not a loopback client, so no cleartext login.
func TestProxyUnknown(t *testing.T) {
	ts := startServer(t, aliceBackend(), daemon.ModePlain, trustLoopback)
	local := proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
	v2local, err := local.Format()
	if err != nil {
		t.Fatal(err)
	}
	unspec := proxyproto.Header{Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.UNSPEC}
	v2unspec, err := unspec.Format()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{
		"PROXY UNKNOWN\r\n",
		"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
		string(v2local),
	} {
		c := ts.dialProxied(t, h)
		c.expect("+OK POP3 server ready")
		c.cmd("USER alice", "-ERR [AUTH] authentication is not allowed on an unencrypted connection")
		c.cmd("QUIT", "+OK bye")
	}
	ts.waitLog(t, "session=ID remote=unknown listener=pop3")
	// v2 PROXY with the UNSPEC family: go-proxyproto refuses it, which
	// the spec allows; above all it is not served as a loopback client.
	c := ts.dialProxied(t, string(v2unspec))
	c.expectClosed()
	// A direct loopback client is still one.
	ts2 := startServer(t, aliceBackend(), daemon.ModePlain, nil)
	ts2.login(t, "alice", "secret").cmd("QUIT", "+OK bye (0 messages deleted)")
}
