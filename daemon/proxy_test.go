package daemon_test

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/pop3d/pop3d/daemon"
)

func trustLoopback(c *daemon.Config) {
	c.ProxyProtocolFrom = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
}

// dialProxied connects and sends header first.
func (ts *testServer) dialProxied(t *testing.T, header string) *client {
	t.Helper()
	c := ts.dialNoGreeting(t)
	if _, err := c.NetConn().Write([]byte(header)); err != nil {
		t.Fatal(err)
	}
	return c
}

func proxyV1(src string) string {
	return "PROXY TCP4 " + src + " 127.0.0.1 5555 110\r\n"
}

func proxyV2(t *testing.T, src string) string {
	h := proxyproto.HeaderProxyFromAddrs(2,
		&net.TCPAddr{IP: net.ParseIP(src), Port: 5555}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 110})
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var capaInsecure = []string{"+OK capability list follows", "TOP", "UIDL", "PIPELINING", "RESP-CODES",
	"AUTH-RESP-CODE", "EXPIRE NEVER", "IMPLEMENTATION pop3d-test", "STLS", "."}

func TestInsecureAuthPolicy(t *testing.T) {
	ca, r, _, _ := tlsSetup(t)
	b := aliceBackend()
	ts := startServer(t, b, daemon.ModePlain, func(c *daemon.Config) { withTLS(r)(c); trustLoopback(c) })
	for _, header := range []string{proxyV1("203.0.113.7"), proxyV2(t, "203.0.113.7")} {
		c := ts.dialProxied(t, header)
		c.expect("+OK POP3 server ready")
		run(t, c, []step{
			one("CAPA", capaInsecure...),
			one("USER alice", "-ERR [AUTH] TLS is required: use STLS or port 995"),
			one("PASS secret", "-ERR [AUTH] TLS is required: use STLS or port 995"),
			one("AUTH PLAIN "+b64("\x00alice\x00secret"), "-ERR [AUTH] TLS is required: use STLS or port 995"),
			one("AUTH", "+OK", "."),
			one("STLS", "+OK begin TLS negotiation"),
		})
		c.startTLS(clientConfig(ca))
		run(t, c, []step{one("CAPA", capaAuth...), one("USER alice", "+OK")})
		c.send("PASS secret")
		if l := c.line(); !strings.HasPrefix(l, "+OK maildrop") {
			t.Fatalf("PASS after STLS: %q", l)
		}
		info := waitFor(t, b.logins, "login")
		if got := info.RemoteAddr.String(); got != "203.0.113.7:5555" {
			t.Errorf("ConnInfo.RemoteAddr = %s", got)
		}
		if got := info.LocalAddr.String(); got != "127.0.0.1:110" {
			t.Errorf("ConnInfo.LocalAddr = %s", got)
		}
		c.cmd("QUIT", "+OK bye (0 messages deleted)")
	}
	ts.waitLog(t, "msg=connect remote=203.0.113.7:5555 listener=pop3")
	ts.waitLog(t, "msg=login remote_ip=203.0.113.7 user=alice mech=USER tls=true")
}

func TestInsecureAuthWithoutTLS(t *testing.T) {
	ts := startServer(t, aliceBackend(), daemon.ModePlain, trustLoopback)
	c := ts.dialProxied(t, proxyV1("198.51.100.1"))
	c.expect("+OK POP3 server ready")
	run(t, c, []step{
		one("CAPA", "+OK capability list follows", "TOP", "UIDL", "PIPELINING", "RESP-CODES",
			"AUTH-RESP-CODE", "EXPIRE NEVER", "IMPLEMENTATION pop3d-test", "."),
		one("STLS", "-ERR STLS not available"),
		one("USER alice", "-ERR [AUTH] authentication is not allowed on an unencrypted connection"),
	})
}

func TestAllowInsecureAuth(t *testing.T) {
	ts := startServer(t, aliceBackend(), daemon.ModePlain, func(c *daemon.Config) {
		trustLoopback(c)
		c.AllowInsecureAuth = true
	})
	c := ts.dialProxied(t, proxyV1("198.51.100.1"))
	c.expect("+OK POP3 server ready")
	run(t, c, []step{one("CAPA", capaAuth...), one("USER alice", "+OK")})
	c.send("PASS secret")
	if l := c.line(); !strings.HasPrefix(l, "+OK maildrop") {
		t.Fatalf("PASS: %q", l)
	}
}

func TestProxyHeaderRequired(t *testing.T) {
	ts := startServer(t, aliceBackend(), daemon.ModePlain, func(c *daemon.Config) {
		trustLoopback(c)
		c.HandshakeTimeout = 300 * time.Millisecond
	})
	tests := []struct{ name, first string }{
		{"command instead of header", "CAPA\r\n"},
		{"garbled v1", "PROXY TCP4 nonsense\r\n"},
		{"silence", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ts.dialProxied(t, tt.first)
			c.expectClosed()
		})
	}
	ts.waitLog(t, `msg="PROXY header missing or invalid"`)
}

func TestProxyHeaderFromUntrusted(t *testing.T) {
	ca, r, _, _ := tlsSetup(t)
	_ = ca
	for _, mode := range []daemon.Mode{daemon.ModePlain, daemon.ModeTLS} {
		ts := startServer(t, aliceBackend(), mode, withTLS(r))
		for _, header := range []string{proxyV1("203.0.113.7"), proxyV2(t, "203.0.113.7")} {
			c := ts.dialProxied(t, header)
			if mode == daemon.ModePlain {
				c.expect("+OK POP3 server ready")
			}
			c.expect("-ERR PROXY header not accepted from this address")
			c.expectClosed()
		}
		ts.waitLog(t, `msg="PROXY header from an untrusted address" remote_ip=127.0.0.1`)
	}
}

func TestProxiedPerIPLimit(t *testing.T) {
	ts := startServer(t, aliceBackend(), daemon.ModePlain, func(c *daemon.Config) {
		trustLoopback(c)
		c.MaxConnectionsPerIP = 1
	})
	a := ts.dialProxied(t, proxyV1("203.0.113.7"))
	a.expect("+OK POP3 server ready")
	b := ts.dialProxied(t, proxyV1("203.0.113.7"))
	b.expect("-ERR [SYS/TEMP] too many connections")
	b.expectClosed()
	c := ts.dialProxied(t, proxyV1("203.0.113.8"))
	c.expect("+OK POP3 server ready")
	a.cmd("QUIT", "+OK bye")
	a.expectClosed()
	// The slot is free once the server has noticed.
	deadline := time.Now().Add(ioTimeout)
	for {
		d := ts.dialProxied(t, proxyV1("203.0.113.7"))
		l := d.line()
		d.NetConn().Close()
		if l == "+OK POP3 server ready" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot never freed: %q", l)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Refused login attempts are not bad commands, but a client that keeps
// sending credentials where they are refused is cut off, not served until
// the idle timeout.
func TestRefusedLoginAttemptsBounded(t *testing.T) {
	ts := startServer(t, aliceBackend(), daemon.ModePlain, trustLoopback)
	c := ts.dialProxied(t, proxyV1("198.51.100.1"))
	c.expect("+OK POP3 server ready")
	for k := range 9 {
		if k%2 == 0 {
			c.cmd("USER alice", "-ERR [AUTH] authentication is not allowed on an unencrypted connection")
		} else {
			c.cmd("AUTH X-UNKNOWN", "-ERR unsupported SASL mechanism")
		}
	}
	c.cmd("AUTH PLAIN", "-ERR [AUTH] too many refused login attempts")
	c.expectClosed()
}
