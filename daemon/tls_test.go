package daemon_test

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pop3d/pop3d/daemon"
	"github.com/pop3d/pop3d/internal/testpki"
)

// clientConfig trusts only ca, for server name 127.0.0.1.
func clientConfig(ca *testpki.CA) *tls.Config {
	return &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}
}

// tlsSetup makes a CA, a certificate and a CertReloader over its files.
func tlsSetup(t testing.TB) (*testpki.CA, *daemon.CertReloader, string, string) {
	t.Helper()
	ca := testpki.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.Issue(t, 100, certFile, keyFile)
	r, err := daemon.NewCertReloader(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ca, r, certFile, keyFile
}

func withTLS(r *daemon.CertReloader) func(*daemon.Config) {
	return func(c *daemon.Config) {
		c.TLSConfig = &tls.Config{GetCertificate: r.GetCertificate, MinVersion: tls.VersionTLS12}
	}
}

var capaAuthSTLS = []string{"+OK capability list follows", "TOP", "USER", "UIDL", "PIPELINING", "RESP-CODES",
	"AUTH-RESP-CODE", "EXPIRE NEVER", "IMPLEMENTATION pop3d-test", "STLS", "SASL PLAIN", "."}

func TestSTLS(t *testing.T) {
	ca, r, _, _ := tlsSetup(t)
	b := aliceBackend()
	ts := startServer(t, b, daemon.ModePlain, withTLS(r))
	c := ts.dial(t)
	run(t, c, []step{one("CAPA", capaAuthSTLS...), one("USER alice", "+OK")})
	// Commands pipelined after STLS in plain text must be thrown away.
	c.send("STLS\r\nUSER evil\r\nPASS injected")
	c.expect("+OK begin TLS negotiation")
	c.startTLS(clientConfig(ca))
	run(t, c, []step{
		one("CAPA", capaAuth...),
		one("PASS secret", "-ERR send USER first"), // USER from before TLS is forgotten
		one("STLS", "-ERR TLS already active"),
		one("USER alice", "+OK"),
	})
	c.send("PASS secret")
	if l := c.line(); !strings.HasPrefix(l, "+OK maildrop has 3 messages") {
		t.Fatalf("PASS: %q", l)
	}
	if info := waitFor(t, b.logins, "login"); !info.TLS {
		t.Errorf("ConnInfo.TLS false after STLS")
	}
	run(t, c, []step{one("CAPA", capaTrans...), one("STLS", "-ERR already logged in")})
	c.cmd("QUIT", "+OK bye (0 messages deleted)")
	ts.waitLog(t, "mech=USER tls=true")
	if strings.Contains(ts.logs.String(), "user=evil") {
		t.Errorf("injected command was executed")
	}
}

func TestImplicitTLS(t *testing.T) {
	ca, r, _, _ := tlsSetup(t)
	b := aliceBackend()
	ts := startServer(t, b, daemon.ModeTLS, withTLS(r))
	conn, err := tls.Dial("tcp", ts.addr, clientConfig(ca))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := newClient(t, conn)
	c.expect("+OK POP3 server ready")
	run(t, c, []step{one("CAPA", capaAuth...), one("STLS", "-ERR TLS already active"), one("USER alice", "+OK")})
	c.send("PASS secret")
	if l := c.line(); !strings.HasPrefix(l, "+OK maildrop") {
		t.Fatalf("PASS: %q", l)
	}
	c.cmd("RETR 2", fmt.Sprintf("+OK %d octets", sizeOf(msg2)))
	if got, want := c.body(), stuff(wire(msg2)); !bytes.Equal(got, want) {
		t.Errorf("RETR over TLS: %q, want %q", got, want)
	}
	c.cmd("QUIT", "+OK bye (0 messages deleted)")
	ts.waitLog(t, "listener=pop3s")
}

func TestImplicitTLSNeedsConfig(t *testing.T) {
	s := daemon.New(newMemBackend(), testConfig(), nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := s.Serve(l, daemon.ModeTLS); err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("Serve(ModeTLS) without TLS config: %v", err)
	}
}

func TestTLSHandshakeTimeout(t *testing.T) {
	_, r, _, _ := tlsSetup(t)
	ts := startServer(t, newMemBackend(), daemon.ModeTLS, func(c *daemon.Config) {
		withTLS(r)(c)
		c.HandshakeTimeout = 200 * time.Millisecond
	})
	c := ts.dialNoGreeting(t)
	c.expectClosed() // a client that never sends a ClientHello
	ts.waitLog(t, "tls handshake failed")
}

func TestCertificateSwap(t *testing.T) {
	ca, r, certFile, keyFile := tlsSetup(t)
	b := aliceBackend()
	ts := startServer(t, b, daemon.ModeTLS, withTLS(r))
	serial := func(conn *tls.Conn) int64 {
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	old, err := tls.Dial("tcp", ts.addr, clientConfig(ca))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	oc := newClient(t, old)
	oc.expect("+OK POP3 server ready")
	if s := serial(old); s != 100 {
		t.Fatalf("first certificate serial %d", s)
	}

	// A broken pair (key of another certificate) is refused, the old one stays.
	dir := t.TempDir()
	ca.Issue(t, 300, filepath.Join(dir, "c"), filepath.Join(dir, "k"))
	other, _ := os.ReadFile(filepath.Join(dir, "k"))
	ca.Issue(t, 200, certFile, keyFile+".new")
	testpki.WriteFile(t, keyFile, other, 0o600)
	if err := r.Reload(); err == nil {
		t.Fatal("Reload accepted a mismatched pair")
	}
	c2, err := tls.Dial("tcp", ts.addr, clientConfig(ca))
	if err != nil {
		t.Fatal(err)
	}
	if s := serial(c2); s != 100 {
		t.Errorf("after a bad pair: serial %d, want 100", s)
	}
	c2.Close()

	// The good pair is picked up by the next handshake without Reload once
	// a second has passed since the last look.
	newKey, _ := os.ReadFile(keyFile + ".new")
	testpki.WriteFile(t, keyFile, newKey, 0o600)
	time.Sleep(1100 * time.Millisecond)
	c3, err := tls.Dial("tcp", ts.addr, clientConfig(ca))
	if err != nil {
		t.Fatal(err)
	}
	if s := serial(c3); s != 200 {
		t.Errorf("after renewal: serial %d, want 200", s)
	}
	c3.Close()

	// The old connection keeps working.
	oc.cmd("USER alice", "+OK")
	oc.send("PASS secret")
	if l := oc.line(); !strings.HasPrefix(l, "+OK maildrop") {
		t.Fatalf("old connection: %q", l)
	}
	oc.cmd("QUIT", "+OK bye (0 messages deleted)")
}

func TestCertReloaderErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := daemon.NewCertReloader(filepath.Join(dir, "none.pem"), filepath.Join(dir, "none.key"), nil); err == nil {
		t.Error("NewCertReloader accepted missing files")
	}
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	if _, err := daemon.NewCertReloader(bad, bad, nil); err == nil {
		t.Error("NewCertReloader accepted garbage")
	}
}

// TestCertReloaderFIFO checks that a FIFO in place of the key is refused at
// once, at load and on Reload (the old pair stays), instead of blocking
// the reload and every handshake behind it.
func TestCertReloaderFIFO(t *testing.T) {
	_, r, certFile, keyFile := tlsSetup(t)
	os.Remove(keyFile)
	if err := syscall.Mkfifo(keyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := daemon.NewCertReloader(certFile, keyFile, nil); err == nil || !strings.Contains(err.Error(), keyFile+": not a regular file") {
			t.Errorf("NewCertReloader with a FIFO key = %v", err)
		}
		if err := r.Reload(); err == nil || !strings.Contains(err.Error(), keyFile+": not a regular file") {
			t.Errorf("Reload with a FIFO key = %v", err)
		}
		if c, err := r.GetCertificate(nil); c == nil || err != nil {
			t.Errorf("GetCertificate after a failed reload = %v, %v", c, err)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("blocked on a FIFO key for 5s")
	}
}
