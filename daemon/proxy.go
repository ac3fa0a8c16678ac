package daemon

import (
	"bufio"
	"bytes"
	"net"
	"net/netip"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/pires/go-proxyproto/tlvparse"
)

// proxyBufSize is the reader used for the PROXY header only; the header is
// parsed as a stream, so a v2 header with large TLVs fits as well.
const proxyBufSize = 256

// maxV1HeaderLen is the longest PROXY v1 header, CRLF included.
const maxV1HeaderLen = 107

// unknownAddr is the client address of a proxied connection whose header
// does not name one.
type unknownAddr struct{}

func (unknownAddr) Network() string { return "tcp" }
func (unknownAddr) String() string  { return "unknown" }

// bufferV1 reads a PROXY v1 header into br whole, up to its LF, before
// go-proxyproto parses it: the library refuses a header that did not
// arrive in one read, but the spec lets a sender split it across TCP
// segments and asks receivers to be tolerant. The read deadline set by
// the caller bounds the wait. Errors are left for proxyproto.Read to
// report; anything not starting like a v1 header is left alone.
func bufferV1(br *bufio.Reader) {
	for n := 1; n <= maxV1HeaderLen; n++ {
		b, err := br.Peek(n)
		if err != nil {
			return
		}
		if n <= len(proxyproto.SIGV1) && b[n-1] != proxyproto.SIGV1[n-1] {
			return
		}
		if b[n-1] == '\n' {
			return
		}
	}
}

// prefixConn is a connection with bytes already read from it in front.
type prefixConn struct {
	net.Conn
	pending []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		if len(c.pending) == 0 {
			c.pending = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

// readProxyHeader reads the PROXY v1 or v2 header that a connection from a
// trusted proxy must start with, takes the client address from it, and
// applies the per-IP limit to that address. False means the connection is
// to be closed.
func (s *session) readProxyHeader() bool {
	s.raw.SetReadDeadline(s.deadlineIn(s.cfg.HandshakeTimeout))
	if s.srv.closing.Load() {
		return false
	}
	br := bufio.NewReaderSize(s.raw, proxyBufSize)
	bufferV1(br)
	h, err := proxyproto.Read(br)
	s.raw.SetReadDeadline(time.Time{})
	if err != nil {
		s.srv.logger.Warn("PROXY header missing or invalid", "remote", s.raw.RemoteAddr().String(),
			"listener", s.mode.String(), "err", err)
		return false
	}
	// The client is whoever the header names. A header that names nobody
	// (v1 UNKNOWN, v2 LOCAL: health checks, local proxies; go-proxyproto
	// refuses a v2 PROXY of the UNSPEC family, as the spec allows)
	// leaves the client unknown: never the proxy's own address, which
	// would make it a loopback client allowed cleartext logins, and would
	// have fail2ban ban the proxy.
	s.remote, s.remoteIP = unknownAddr{}, netip.Addr{}
	s.healthCheck = h.Command.IsLocal()
	if h.Command.IsProxy() {
		// A proxy that terminated TLS itself says so in the SSL TLV
		// (HAProxy's send-proxy-v2-ssl); one passing TLS through sends
		// none, so its plain-text clients stay refused.
		if tlvs, err := h.TLVs(); err == nil {
			if ssl, ok := tlvparse.FindSSL(tlvs); ok && ssl.ClientSSL() {
				s.offloaded = true
			}
		}
		if ip := addrIP(h.SourceAddr); ip.IsValid() {
			s.remote = h.SourceAddr
			s.remoteIP = ip
		}
		if addrIP(h.DestinationAddr).IsValid() {
			s.local = h.DestinationAddr
		}
	}
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		s.conn = &prefixConn{Conn: s.raw, pending: bytes.Clone(b)}
	}
	if !s.srv.takeIPFor(s, s.remoteIP, s.cfg.MaxConnectionsPerIP) {
		s.srv.logRefusal(s.remote, s.remoteIP, s.mode, "max_connections_per_ip")
		if s.mode == ModePlain {
			writeTooMany(s.conn)
		}
		return false
	}
	return true
}

// looksLikeProxy reports whether the first line of an untrusted plain
// connection is a PROXY header: v1 text, or the start of the v2 signature
// (which begins with an empty line).
func (s *session) looksLikeProxy(line []byte) bool {
	if bytes.HasPrefix(line, []byte("PROXY ")) {
		return true
	}
	if string(line) != "\r\n" {
		return false
	}
	n := min(s.br.Buffered(), len(proxyproto.SIGV2)-2)
	b, _ := s.br.Peek(n)
	return len(b) >= 2 && bytes.HasPrefix(proxyproto.SIGV2[2:], b)
}

// rejectProxyBeforeTLS reads the first bytes of an untrusted implicit-TLS
// connection and, if they are a PROXY header rather than a TLS record,
// answers -ERR in plain text; true means the connection is to be closed.
// The bytes read stay in front of the connection for the handshake.
func (s *session) rejectProxyBeforeTLS() bool {
	s.raw.SetReadDeadline(s.deadlineIn(s.cfg.HandshakeTimeout))
	var buf [16]byte
	n, err := s.raw.Read(buf[:])
	s.raw.SetReadDeadline(time.Time{})
	if n == 0 {
		// Nothing came within the handshake timeout, or the client left.
		s.srv.logger.Info("tls handshake failed", "remote_ip", s.remoteIPString(), "err", err)
		return true
	}
	b := buf[:n]
	s.conn = &prefixConn{Conn: s.conn, pending: bytes.Clone(b)}
	v1 := len(b) >= len(proxyproto.SIGV1) && bytes.HasPrefix(b, proxyproto.SIGV1)
	v2 := len(b) >= 4 && bytes.HasPrefix(proxyproto.SIGV2, b[:min(len(b), len(proxyproto.SIGV2))])
	if !v1 && !v2 {
		return false
	}
	s.srv.logger.Warn("PROXY header from an untrusted address", "remote_ip", s.remoteIPString())
	s.raw.SetWriteDeadline(time.Now().Add(refuseDeadline))
	s.raw.Write([]byte("-ERR PROXY header not accepted from this address\r\n"))
	return true
}
