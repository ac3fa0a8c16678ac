package e2e

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pop3d/pop3d/internal/pop3test"
	"github.com/pop3d/pop3d/internal/testpki"
)

// TestSTLS: CAPA before and after STLS, login over the upgraded connection,
// STLS refused once TLS is on, and commands pipelined after STLS in plain
// text thrown away (CVE-2011-0411 class).
func TestSTLS(t *testing.T) {
	s := newSite(t)
	msgs := s.deliverShapes(t, alice)
	srv := startTLSServer(t, s)

	p := pop3test.Dial(t, srv.addr)
	before := p.Capa()
	// 127.0.0.1 is loopback: USER and SASL are allowed before TLS too.
	for _, want := range []string{"STLS", "USER", "SASL PLAIN", "TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE"} {
		if !contains(before, want) {
			t.Errorf("CAPA before STLS = %q, want %q", before, want)
		}
	}
	st := p.STLS(s.tlsConfig())
	if st.Version < tls.VersionTLS12 {
		t.Errorf("negotiated TLS version %x", st.Version)
	}
	after := p.Capa()
	if contains(after, "STLS") {
		t.Errorf("CAPA after STLS = %q still offers STLS", after)
	}
	for _, want := range []string{"USER", "SASL PLAIN"} {
		if !contains(after, want) {
			t.Errorf("CAPA after STLS = %q, want %q", after, want)
		}
	}
	if r := p.Cmd("STLS"); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("second STLS: %q, want -ERR", r)
	}
	p.Login(alice, alicePass)
	if stat := p.OK("STAT"); !strings.HasPrefix(stat, fmt.Sprintf("%d ", len(msgs))) {
		t.Errorf("STAT over STLS = %q", stat)
	}
	p.Quit()
	if _, ok := srv.waitLog(func(l logLine) bool { return l["msg"] == "login" && l["tls"] == "true" && l["user"] == alice }, 5*time.Second); !ok {
		t.Error("no login line with tls=true after STLS")
	}

	// Injection: "USER alice" sent in plain text behind STLS must be
	// forgotten, so PASS after the handshake is out of sequence.
	p = pop3test.Dial(t, srv.addr)
	if _, err := p.NetConn().Write([]byte("STLS\r\nUSER " + alice + "\r\n")); err != nil {
		t.Fatal(err)
	}
	p.ExpectOK("STLS")
	if _, err := p.StartTLSErr(s.tlsConfig()); err != nil {
		// Also acceptable: the server closes the connection. What must not
		// happen is an answer to the injected command in plain text, which
		// the handshake would see as a non-TLS record.
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			t.Logf("server closed the connection with injected bytes after STLS: %v", err)
			return
		}
		t.Fatalf("TLS handshake after STLS with an injected command: %v", err)
	}
	if r := p.Cmd("PASS " + alicePass); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("PASS after STLS with USER injected before the handshake: %q, want -ERR (the injected USER was executed)", r)
	}
}

// TestInsecureAuthPolicy: a client that is not on loopback (its address
// comes from a PROXY v1 header from a trusted proxy) must not be offered or
// allowed USER/PASS or AUTH PLAIN before TLS; after STLS it logs in and the
// log carries the proxied address.
func TestInsecureAuthPolicy(t *testing.T) {
	s := newSite(t)
	s.deliverShapes(t, alice)
	srv := startTLSServer(t, s, "-proxy-protocol-from", "127.0.0.1/32")

	connect := func() *pop3test.Conn {
		c, err := net.DialTimeout("tcp", srv.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(srv.addr)
		fmt.Fprintf(c, "PROXY TCP4 203.0.113.9 127.0.0.1 40000 %s\r\n", port)
		p := pop3test.New(t, c)
		p.ExpectOK("greeting after PROXY header")
		return p
	}

	p := connect()
	caps := p.Capa()
	if contains(caps, "USER") || hasPrefixIn(caps, "SASL") {
		t.Errorf("CAPA on plain non-loopback = %q, must not offer USER or SASL", caps)
	}
	if !contains(caps, "STLS") {
		t.Errorf("CAPA on plain non-loopback = %q, want STLS", caps)
	}
	r := p.Cmd("USER " + alice)
	if strings.HasPrefix(r, "+OK") {
		r = p.Cmd("PASS " + alicePass)
	}
	if !strings.HasPrefix(r, "-ERR [AUTH]") || !strings.Contains(strings.ToUpper(r), "TLS") {
		t.Errorf("USER/PASS on plain non-loopback: %q, want -ERR [AUTH] saying TLS is required", r)
	}
	if r := p.Cmd("AUTH PLAIN AGFsaWNlAEFsMWNlLXNlY3JldA=="); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("AUTH PLAIN on plain non-loopback: %q, want -ERR", r)
	}
	p.STLS(s.tlsConfig())
	if caps := p.Capa(); !contains(caps, "USER") {
		t.Errorf("CAPA after STLS = %q, want USER", caps)
	}
	p.Login(alice, alicePass)
	p.Quit()
	if _, ok := srv.waitLog(func(l logLine) bool {
		return l["msg"] == "login" && l["remote_ip"] == "203.0.113.9" && l["tls"] == "true"
	}, 5*time.Second); !ok {
		t.Error("no login line with remote_ip=203.0.113.9 tls=true")
	}
}

func hasPrefixIn(list []string, prefix string) bool {
	for _, x := range list {
		if strings.HasPrefix(x, prefix) {
			return true
		}
	}
	return false
}

// TestCertificateReload: a new certificate + SIGHUP is served to new
// connections while a connection made before keeps working.
func TestCertificateReload(t *testing.T) {
	s := newSite(t)
	msgs := s.deliverShapes(t, alice)
	srv := startTLSServer(t, s)

	old := pop3test.DialTLS(t, srv.tlsAdr, s.tlsConfig())
	if got := peerSerial(t, old); got != s.serial.String() {
		t.Fatalf("first certificate serial %s, want %s", got, s.serial)
	}
	old.Login(alice, alicePass)

	serial2 := s.ca.Issue(t, 200, s.certFile, s.keyFile).SerialNumber
	from := len(srv.notify.messages())
	srv.signal(syscall.SIGHUP)
	from = srv.notify.waitFor(t, "RELOADING=1", from, 10*time.Second)
	srv.notify.waitFor(t, "READY=1", from, 10*time.Second)

	fresh := pop3test.DialTLS(t, srv.tlsAdr, s.tlsConfig())
	if got := peerSerial(t, fresh); got != serial2.String() {
		t.Errorf("after swap + SIGHUP a new connection got serial %s, want %s (old %s)", got, serial2, s.serial)
	}
	fresh.Quit()

	// The old session still works (and holds the mailbox).
	if st := old.OK("STAT"); !strings.HasPrefix(st, fmt.Sprintf("%d ", len(msgs))) {
		t.Errorf("old connection STAT after reload = %q", st)
	}
	if got := peerSerial(t, old); got != s.serial.String() {
		t.Errorf("old connection serial changed to %s", got)
	}
	old.Quit()

	// STLS uses the new certificate too.
	p := pop3test.Dial(t, srv.addr)
	st := p.STLS(s.tlsConfig())
	if got := st.PeerCertificates[0].SerialNumber.String(); got != serial2.String() {
		t.Errorf("STLS after reload: serial %s, want %s", got, serial2)
	}
}

func peerSerial(t *testing.T, p *pop3test.Conn) string {
	t.Helper()
	tc, ok := p.NetConn().(*tls.Conn)
	if !ok {
		t.Fatal("not a TLS connection")
	}
	return tc.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestTLSMinVersion: TLS 1.1 is refused by default.
func TestTLSMinVersion(t *testing.T) {
	s := newSite(t)
	srv := startTLSServer(t, s)
	cfg := s.tlsConfig()
	cfg.MinVersion = tls.VersionTLS10
	cfg.MaxVersion = tls.VersionTLS11
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", srv.tlsAdr, cfg)
	if err == nil {
		c.Close()
		t.Fatal("TLS 1.1 handshake succeeded; tls_min_version defaults to 1.2")
	}
	if !strings.Contains(err.Error(), "version") {
		t.Errorf("TLS 1.1 handshake failed, but not over the version: %v", err)
	}
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	c, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", srv.tlsAdr, cfg)
	if err != nil {
		t.Fatalf("TLS 1.2 handshake: %v", err)
	}
	c.Close()
}

// TestTLSWithoutCertificate: a pop3s listener without a certificate is a
// startup error with a clear message, not a plain-text listener.
func TestTLSWithoutCertificate(t *testing.T) {
	s := newSite(t)
	port := freePort(t)
	cmd := exec.Command(binPath, "-config", "/dev/null", "-passwd-file", s.passwd, "-maildir", s.maildirTemplate(),
		"-listen", "", "-listen-tls", fmt.Sprintf("127.0.0.1:%d", port))
	cmd.Env = cleanEnv()
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("pop3d with -listen-tls and no certificate kept running:\n%s", out)
	}
	if err == nil {
		t.Fatalf("pop3d with -listen-tls and no certificate exited 0:\n%s", out)
	}
	low := strings.ToLower(string(out))
	if !strings.Contains(low, "cert") {
		t.Errorf("startup error does not mention the certificate:\n%s", out)
	}
}

// TestCertificateAutoReload: a renewed pair (certbot replacing the files)
// is picked up without SIGHUP; a broken pair keeps the old certificate and
// is logged.
func TestCertificateAutoReload(t *testing.T) {
	s := newSite(t)
	srv := startTLSServer(t, s)
	c := pop3test.DialTLS(t, srv.tlsAdr, s.tlsConfig())
	if got := peerSerial(t, c); got != s.serial.String() {
		t.Fatalf("serial %s, want %s", got, s.serial)
	}
	c.Quit()

	// Renewal without a signal: files are checked at most once a second.
	serial2 := s.ca.Issue(t, 200, s.certFile, s.keyFile).SerialNumber
	var got string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(300 * time.Millisecond)
		c := pop3test.DialTLS(t, srv.tlsAdr, s.tlsConfig())
		got = peerSerial(t, c)
		c.Quit()
		if got == serial2.String() {
			break
		}
	}
	if got != serial2.String() {
		t.Errorf("renewed certificate not picked up without SIGHUP within 10s: serial %s, want %s", got, serial2)
	}

	// A broken pair: the old one stays, and the log says why.
	logBefore := len(srv.logLines())
	testpki.WriteFile(t, s.certFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n"), 0o644)
	from := len(srv.notify.messages())
	srv.signal(syscall.SIGHUP)
	from = srv.notify.waitFor(t, "RELOADING=1", from, 10*time.Second)
	srv.notify.waitFor(t, "READY=1", from, 10*time.Second)
	time.Sleep(1100 * time.Millisecond) // past the once-a-second file check too
	c = pop3test.DialTLS(t, srv.tlsAdr, s.tlsConfig())
	if got := peerSerial(t, c); got != serial2.String() {
		t.Errorf("after a broken renewal: serial %s, want the previous %s", got, serial2)
	}
	c.Quit()
	complained := false
	for _, l := range srv.logLines()[logBefore:] {
		if l["level"] == "WARN" || l["level"] == "ERROR" {
			complained = true
		}
	}
	if !complained {
		t.Errorf("no WARN/ERROR log line about the broken certificate:\n%s", srv.stderr.String())
	}
}

// TestSocketActivationTLSWithoutCertificate: an inherited pop3s socket and
// no certificate is a startup error too.
func TestSocketActivationTLSWithoutCertificate(t *testing.T) {
	requireTool(t, "systemd-socket-activate")
	s := newSite(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	srv := startServerArgs(t, []string{"-config", "/dev/null", "-passwd-file", s.passwd, "-maildir", s.maildirTemplate()},
		withNoWait(), withWrapper(func(notify string) []string {
			return []string{"systemd-socket-activate", "-l", addr, "--fdname=pop3s", "-E", "NOTIFY_SOCKET=" + notify}
		}))
	deadline := time.Now().Add(10 * time.Second)
	for !isListening(addr) {
		if time.Now().After(deadline) {
			t.Fatalf("systemd-socket-activate is not listening\n%s", srv.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	code, err := srv.wait(10 * time.Second)
	if err != nil || code == 0 {
		t.Fatalf("pop3d on an inherited pop3s socket without a certificate: exit %d, %v; want a startup error\n%s", code, err, srv.stderr.String())
	}
	if !strings.Contains(strings.ToLower(srv.stderr.String()), "cert") {
		t.Errorf("startup error does not mention the certificate:\n%s", srv.stderr.String())
	}
	if contains(srv.notify.messages(), "READY=1") {
		t.Error("READY=1 sent although startup failed")
	}
}
