package e2e

import (
	"fmt"
	"github.com/pop3d/pop3d/internal/pop3test"
	"github.com/pop3d/pop3d/internal/wireform"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStandalone: pop3d listening by itself says READY=1 on NOTIFY_SOCKET,
// greets, serves a login, and exits 0 on SIGTERM with STOPPING=1.
func TestStandalone(t *testing.T) {
	s := newSite(t)
	msgs := s.deliverShapes(t, alice)
	srv := startServer(t, s) // waits for READY=1
	p := pop3test.Dial(t, srv.addr)
	p.Login(alice, alicePass)
	if st := p.OK("STAT"); !strings.HasPrefix(st, fmt.Sprintf("%d ", len(msgs))) {
		t.Errorf("STAT = %q", st)
	}
	p.Quit()
	// bob's entry was written by `pop3d passwd`, with %u holding an @.
	s.deliver(t, bob, "lf", shapes()[0].data, false)
	p = pop3test.Dial(t, srv.addr)
	p.Login(bob, bobPass)
	if st := p.OK("STAT"); !strings.HasPrefix(st, "1 ") {
		t.Errorf("bob's STAT = %q", st)
	}
	p.Quit()

	srv.signal(syscall.SIGTERM)
	code, err := srv.wait(5 * time.Second)
	if err != nil || code != 0 {
		t.Errorf("after SIGTERM: exit code %d, %v; want 0", code, err)
	}
	if !contains(srv.notify.messages(), "STOPPING=1") {
		t.Errorf("no STOPPING=1 on NOTIFY_SOCKET (got %q)", srv.notify.messages())
	}
}

// TestSocketActivation: systemd-socket-activate passes two named sockets
// (pop3: plain+STLS, pop3s: implicit TLS); pop3d starts on the first
// connection, serves both, uses none of its -listen addresses, and says
// READY=1.
func TestSocketActivation(t *testing.T) {
	requireTool(t, "systemd-socket-activate")
	s := newSite(t)
	msgs := s.deliverShapes(t, alice)
	plain := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	unused := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	srv := startServerArgs(t, []string{
		"-config", "/dev/null",
		"-passwd-file", s.passwd,
		"-maildir", s.maildirTemplate(),
		"-auth-failure-delay", "100ms",
		"-tls-cert", s.certFile, "-tls-key", s.keyFile,
		"-listen", unused,
	}, withNoWait(), withWrapper(func(notify string) []string {
		return []string{"systemd-socket-activate", "-l", plain, "-l", tlsAddr, "--fdname=pop3:pop3s", "-E", "NOTIFY_SOCKET=" + notify}
	}))
	srv.addr, srv.tlsAdr = plain, tlsAddr
	deadline := time.Now().Add(10 * time.Second)
	for !isListening(plain) || !isListening(tlsAddr) {
		if time.Now().After(deadline) {
			t.Fatalf("systemd-socket-activate is not listening\n%s", srv.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The first connection starts pop3d.
	p := pop3test.Dial(t, plain)
	srv.notify.waitFor(t, "READY=1", 0, 10*time.Second)
	caps := p.Capa()
	if !contains(caps, "STLS") {
		t.Errorf("CAPA on the pop3 socket = %q, want STLS", caps)
	}
	p.Login(alice, alicePass)
	if st := p.OK("STAT"); !strings.HasPrefix(st, fmt.Sprintf("%d ", len(msgs))) {
		t.Errorf("STAT = %q", st)
	}
	p.Quit()

	q := pop3test.DialTLS(t, tlsAddr, s.tlsConfig())
	if caps := q.Capa(); contains(caps, "STLS") {
		t.Errorf("CAPA on the pop3s socket = %q offers STLS", caps)
	}
	q.Login(alice, alicePass)
	_, body := q.Multi("RETR 1")
	if w := wireform.Reference(msgs[0].data); string(body) != string(w) {
		t.Errorf("RETR 1 over pop3s = %q, want %q", pop3test.Trunc(body), pop3test.Trunc(w))
	}
	q.Quit()

	if isListening(unused) {
		t.Errorf("socket-activated pop3d also listens on its -listen address %s", unused)
	}
	if l, ok := srv.waitLog(func(l logLine) bool { return l["msg"] == "connect" && l["listener"] == "pop3s" }, 5*time.Second); !ok {
		t.Errorf("no connect line with listener=pop3s")
	} else if !strings.HasPrefix(l["remote"], "127.0.0.1:") {
		t.Errorf("connect line remote=%q", l["remote"])
	}

	srv.signal(syscall.SIGTERM)
	if code, err := srv.wait(5 * time.Second); err != nil || code != 0 {
		t.Errorf("after SIGTERM: exit code %d, %v; want 0", code, err)
	}
}

// TestSocketActivationUnnamed: a socket whose name is not pop3/pop3s (systemd
// defaults it to the unit name) is served as plain+STLS.
func TestSocketActivationUnnamed(t *testing.T) {
	requireTool(t, "systemd-socket-activate")
	s := newSite(t)
	s.deliverShapes(t, alice)
	plain := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	srv := startServerArgs(t, []string{
		"-config", "/dev/null",
		"-passwd-file", s.passwd,
		"-maildir", s.maildirTemplate(),
	}, withNoWait(), withWrapper(func(notify string) []string {
		return []string{"systemd-socket-activate", "-l", plain, "-E", "NOTIFY_SOCKET=" + notify}
	}))
	srv.addr = plain
	deadline := time.Now().Add(10 * time.Second)
	for !isListening(plain) {
		if time.Now().After(deadline) {
			t.Fatalf("systemd-socket-activate is not listening\n%s", srv.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	p := pop3test.Dial(t, plain)
	srv.notify.waitFor(t, "READY=1", 0, 10*time.Second)
	p.Login(alice, alicePass)
	p.Quit()
}
