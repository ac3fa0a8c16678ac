package daemon_test

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/pires/go-proxyproto"
	"github.com/pires/go-proxyproto/tlvparse"

	"github.com/pop3d/pop3d/daemon"
)

// proxyV2SSL is a PROXY v2 header from src with an SSL TLV whose client
// field is client (1: the client used TLS) and, when version is not
// empty, the TLS version sub-TLV that must come with that bit.
func proxyV2SSL(t *testing.T, src string, client uint8, version string) string {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(2,
		&net.TCPAddr{IP: net.ParseIP(src), Port: 5555}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 110})
	ssl := tlvparse.PP2SSL{Client: client, Verify: 1}
	if version != "" {
		ssl.TLV = []proxyproto.TLV{{Type: proxyproto.PP2_SUBTYPE_SSL_VERSION, Value: []byte(version)}}
	}
	tlv, err := ssl.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.SetTLVs([]proxyproto.TLV{tlv}); err != nil {
		t.Fatal(err)
	}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Credentials in clear text are accepted from a proxy that terminates TLS
// (tls_offload_from, matched against the real peer, never the address a
// PROXY header names) and from a PROXY v2 header whose SSL TLV says the
// client used TLS; a proxy only trusted for PROXY headers does not make a
// connection count as encrypted (HAProxy in TCP mode passes TLS through,
// and its plain-text clients must stay refused).
func TestTLSOffload(t *testing.T) {
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	tests := []struct {
		name    string
		proxy   []netip.Prefix // ProxyProtocolFrom
		offload []netip.Prefix // TLSOffloadFrom
		header  func(t *testing.T) string
		allowed bool
	}{
		{"PROXY trust alone", loopback, nil, func(*testing.T) string { return proxyV1("203.0.113.7") }, false},
		{"PROXY v2 trust alone", loopback, nil, func(t *testing.T) string { return proxyV2(t, "203.0.113.7") }, false},
		{"offloading proxy with PROXY v1", loopback, loopback, func(*testing.T) string { return proxyV1("203.0.113.7") }, true},
		{"offloading proxy with PROXY v2", loopback, loopback, func(t *testing.T) string { return proxyV2(t, "203.0.113.7") }, true},
		{"offload range names the client, not the proxy", loopback, []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")},
			func(*testing.T) string { return proxyV1("203.0.113.7") }, false},
		{"SSL TLV: client used TLS", loopback, nil, func(t *testing.T) string {
			return proxyV2SSL(t, "203.0.113.7", tlvparse.PP2_BITFIELD_CLIENT_SSL, "TLSv1.3")
		}, true},
		{"SSL TLV: client did not use TLS", loopback, nil, func(t *testing.T) string { return proxyV2SSL(t, "203.0.113.7", 0, "") }, false},
		{"SSL TLV: TLS bit without version (malformed)", loopback, nil, func(t *testing.T) string {
			return proxyV2SSL(t, "203.0.113.7", tlvparse.PP2_BITFIELD_CLIENT_SSL, "")
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, aliceBackend(), daemon.ModePlain, func(c *daemon.Config) {
				c.ProxyProtocolFrom = tt.proxy
				c.TLSOffloadFrom = tt.offload
			})
			c := ts.dialProxied(t, tt.header(t))
			c.expect("+OK POP3 server ready")
			if !tt.allowed {
				c.cmd("USER alice", "-ERR [AUTH] authentication is not allowed on an unencrypted connection")
				return
			}
			c.cmd("USER alice", "+OK")
			c.send("PASS secret")
			if l := c.line(); !strings.HasPrefix(l, "+OK maildrop") {
				t.Fatalf("PASS: %q", l)
			}
			c.cmd("QUIT", "+OK bye (0 messages deleted)")
		})
	}
}

// A proxy's health check (a PROXY v2 LOCAL header, then the greeting) is
// logged at debug level: a check every few seconds must not fill the log.
func TestHealthCheckLoggedAtDebug(t *testing.T) {
	ts := startServer(t, aliceBackend(), daemon.ModePlain, trustLoopback)
	hdr := &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
	b, err := hdr.Format()
	if err != nil {
		t.Fatal(err)
	}
	c := ts.dialProxied(t, string(b))
	c.expect("+OK POP3 server ready")
	c.cmd("QUIT", "+OK bye")
	ts.waitLog(t, "level=DEBUG msg=connect remote=")
	ts.waitLog(t, "level=DEBUG msg=disconnect remote_ip=")
	// A real client through the proxy is logged as before.
	d := ts.dialProxied(t, proxyV1("203.0.113.9"))
	d.expect("+OK POP3 server ready")
	d.cmd("QUIT", "+OK bye")
	ts.waitLog(t, "level=INFO msg=connect remote=203.0.113.9:5555")
}
