package daemon

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// FuzzProxyHeaderSplit sends bytes from a trusted proxy in two writes cut
// at an arbitrary point, and checks that a v1 header the library accepts
// when it arrives whole is accepted however it is split (the spec lets a
// sender split it), that the session ends in bounded time, and that a
// header naming no client never leaves the proxy's loopback address as the
// client's.
func FuzzProxyHeaderSplit(f *testing.F) {
	for _, s := range []string{
		"PROXY TCP4 203.0.113.7 127.0.0.1 5555 110\r\n",
		"PROXY TCP6 2001:db8::1 ::1 5555 110\r\n",
		"PROXY UNKNOWN\r\n",
		"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
		"PROXY TCP4 1.2.3.4\r\n",
		"PROXY TCP4 203.0.113.7 127.0.0.1 5555 110\n",
		"PROXYX TCP4\r\n",
		"CAPA\r\n",
	} {
		for _, cut := range []uint8{0, 1, 5, 6, 20, 200} {
			f.Add([]byte(s), cut)
		}
	}
	f.Fuzz(func(t *testing.T, first []byte, cut uint8) {
		whole, wholeErr := proxyproto.Read(bufio.NewReader(bytes.NewReader(first)))
		wantOK := wholeErr == nil && whole.Version == 1
		cfg := DefaultConfig()
		cfg.HandshakeTimeout = 500 * time.Millisecond
		cfg.IdleTimeout = 500 * time.Millisecond
		cfg.AuthFailureDelay = 0
		cfg.ProxyProtocolFrom = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		b := &infoBackend{}
		srv := New(b, cfg, slog.New(slog.DiscardHandler))
		l := &pipeListener{conns: make(chan net.Conn, 1), closed: make(chan struct{})}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(l, ModePlain) }()
		client, server := net.Pipe()
		l.conns <- fakeAddrConn{Conn: server, remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242}}
		go func() {
			k := min(int(cut), len(first))
			client.SetWriteDeadline(time.Now().Add(3 * time.Second))
			client.Write(first[:k])
			time.Sleep(time.Millisecond)
			client.Write(first[k:])
			client.Write([]byte("\r\nUSER u\r\nPASS p\r\nQUIT\r\n"))
		}()
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		out, err := io.ReadAll(client)
		client.Close()
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("session still running after 5s; output %q", out)
		}
		if wantOK && !bytes.HasPrefix(out, []byte("+OK POP3 server ready\r\n")) {
			t.Fatalf("header %q (accepted whole) split at %d: output %q", first, cut, out)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		<-served
		if wantOK && addrIP(whole.SourceAddr) == (netip.Addr{}) && b.sawLoopback {
			t.Fatalf("header %q names no client, but the login saw a loopback client", first)
		}
	})
}

// infoBackend refuses every login and records whether one came from a
// loopback address (only the session goroutine calls it; Shutdown orders
// the read after).
type infoBackend struct{ sawLoopback bool }

func (b *infoBackend) Login(_ context.Context, _, _ string, info ConnInfo) (Mailbox, error) {
	if addrIP(info.RemoteAddr).IsLoopback() {
		b.sawLoopback = true
	}
	return nil, ErrAuth
}
