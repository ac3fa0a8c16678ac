package e2e

import (
	"encoding/base64"
	"fmt"
	"github.com/pop3d/pop3d/internal/pop3test"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMaildirOptions: the %d/%n template, create_maildir and mark_read.
func TestMaildirOptions(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	root := filepath.Join(s.dir, "vhosts")
	tmpl := filepath.Join(root, "%d", "%n")
	// bob@example.org lives in vhosts/example.org/bob.
	s.mailRoot = filepath.Join(root, "example.org")
	bobMsg := s.deliver(t, "bob", "lf", shapes()[0].data, false)

	t.Run("template and mark_read=no", func(t *testing.T) {
		srv := startServer(t, s, "-maildir", tmpl, "-mark-read=no")
		p := pop3test.Dial(t, srv.addr)
		p.Login(bob, bobPass)
		if st := p.OK("STAT"); !strings.HasPrefix(st, "1 ") {
			t.Fatalf("bob's STAT with template %s = %q", tmpl, st)
		}
		p.Multi("RETR 1")
		p.Quit()
		if _, err := os.Stat(bobMsg.path); err != nil {
			t.Errorf("with mark_read = no, RETR+QUIT moved %s: %v", bobMsg.path, err)
		}
	})

	t.Run("create_maildir=yes", func(t *testing.T) {
		srv := startServer(t, s, "-maildir", tmpl)
		p := pop3test.Dial(t, srv.addr)
		p.Login(alice, alicePass) // no domain: %d is empty
		if st := p.OK("STAT"); st != "0 0" {
			t.Errorf("new Maildir STAT = %q, want \"0 0\"", st)
		}
		p.Quit()
		md := filepath.Join(root, "alice")
		for _, sub := range []string{"tmp", "new", "cur"} {
			fi, err := os.Stat(filepath.Join(md, sub))
			if err != nil {
				t.Errorf("create_maildir: %v", err)
				continue
			}
			if fi.Mode().Perm() != 0o700 {
				t.Errorf("%s/%s mode %v, want 0700", md, sub, fi.Mode().Perm())
			}
		}
	})

	t.Run("create_maildir=no", func(t *testing.T) {
		srv := startServer(t, s, "-maildir", filepath.Join(s.dir, "none", "%u"), "-create-maildir=no")
		p := pop3test.Dial(t, srv.addr)
		p.OK("USER " + alice)
		if r := p.Cmd("PASS " + alicePass); !strings.HasPrefix(r, "-ERR [SYS/PERM]") {
			t.Errorf("missing Maildir with create_maildir = no: %q, want -ERR [SYS/PERM] ...", r)
		}
		if _, err := os.Stat(filepath.Join(s.dir, "none")); !os.IsNotExist(err) {
			t.Errorf("create_maildir = no created something: %v", err)
		}
	})
}

// TestAuthPlain: SASL PLAIN (RFC 5034) through the real binary: bare AUTH
// lists mechanisms, the empty-challenge form, cancel, bad base64, and an
// authorization identity different from the user.
func TestAuthPlain(t *testing.T) {
	s := newSite(t)
	s.deliverShapes(t, alice)
	srv := startServer(t, s, "-auth-failure-delay", "10ms", "-max-auth-failures", "10")
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

	p := pop3test.Dial(t, srv.addr)
	_, mechs := p.Multi("AUTH")
	if !strings.Contains(string(mechs), "PLAIN\r\n") {
		t.Errorf("bare AUTH listed %q, want PLAIN", mechs)
	}
	if r := p.Cmd("AUTH PLAIN"); r != "+ " && r != "+" {
		t.Errorf("AUTH PLAIN without initial response: %q, want an empty challenge", r)
	}
	if r := p.Cmd("*"); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("cancelled AUTH: %q, want -ERR", r)
	}
	if r := p.Cmd("AUTH PLAIN !!notbase64"); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("bad base64: %q, want -ERR", r)
	}
	if r := p.Cmd("AUTH PLAIN " + enc("bob@example.org\x00"+alice+"\x00"+alicePass)); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("authzid bob for authcid alice: %q, want -ERR", r)
	}
	if r := p.Cmd("AUTH PLAIN"); r != "+ " && r != "+" {
		t.Fatalf("AUTH PLAIN: %q", r)
	}
	p.OK(enc("\x00" + bob + "\x00" + bobPass))
	if st := p.OK("STAT"); st != "0 0" {
		t.Errorf("bob's STAT = %q", st)
	}
	p.Quit()
}

// TestIdleTimeout: a client that says nothing is told and disconnected
// after idle_timeout (shortened here; pop3d warns it is below RFC 1939's 10m).
func TestIdleTimeout(t *testing.T) {
	s := newSite(t)
	s.deliverShapes(t, alice)
	srv := startServer(t, s, "-idle-timeout", "1s")
	for _, login := range []bool{false, true} {
		p := pop3test.Dial(t, srv.addr)
		if login {
			p.Login(alice, alicePass)
			p.OK("DELE 1")
		}
		start := time.Now()
		line, err := p.ReadLineErr()
		if err != nil || !strings.HasPrefix(line, "-ERR") {
			t.Errorf("idle client (logged in: %v) got %q, %v; want -ERR then close", login, line, err)
		}
		p.ExpectEOF()
		if el := time.Since(start); el < 900*time.Millisecond {
			t.Errorf("idle client dropped after %v, before idle_timeout 1s", el)
		}
	}
	// The DELE of the timed-out session was not applied.
	if n := len(listMaildir(t, s.maildir(alice))); n != len(shapes()) {
		t.Errorf("Maildir holds %d messages after an idle timeout, want %d", n, len(shapes()))
	}
}

// TestProxyProtocolUntrusted: a PROXY header from an address outside
// proxy_protocol_from is refused; the trusted proxy's client address is
// used (127.0.0.2 is loopback too, so both can be tested here).
func TestProxyProtocolUntrusted(t *testing.T) {
	s := newSite(t)
	srv := startServer(t, s, "-proxy-protocol-from", "127.0.0.1/32")
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", srv.addr)
	if err != nil {
		t.Skipf("cannot bind 127.0.0.2: %v", err)
	}
	_, port, _ := net.SplitHostPort(srv.addr)
	fmt.Fprintf(c, "PROXY TCP4 192.0.2.1 127.0.0.1 1234 %s\r\n", port)
	p := pop3test.New(t, c)
	var lines []string
	for {
		l, err := p.ReadLineErr()
		if err != nil {
			break
		}
		lines = append(lines, l)
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "-ERR") {
		t.Errorf("PROXY header from untrusted 127.0.0.2: got %q, want -ERR and close", lines)
	}
	if strings.Contains(srv.stderr.String(), "192.0.2.1") {
		t.Error("the address from an untrusted PROXY header reached the log")
	}
}
