package e2e

import (
	"fmt"
	"github.com/pop3d/pop3d/internal/pop3test"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestShutdownDuringTransaction: SIGTERM while a session has DELEs pending
// tells the client -ERR [SYS/TEMP], applies no deletion, and exits 0 in
// time.
func TestShutdownDuringTransaction(t *testing.T) {
	s := newSite(t)
	msgs := s.deliverShapes(t, alice)
	before := listMaildir(t, s.maildir(alice))
	srv := startServer(t, s)

	p := pop3test.Dial(t, srv.addr)
	p.Login(alice, alicePass)
	p.OK("DELE 1")
	p.OK("DELE 2")
	p.Multi("RETR 3")
	idle := pop3test.Dial(t, srv.addr) // a session still in AUTHORIZATION

	start := time.Now()
	srv.signal(syscall.SIGTERM)
	for _, c := range []*pop3test.Conn{p, idle} {
		line, err := c.ReadLineErr()
		if err != nil || !strings.HasPrefix(line, "-ERR [SYS/TEMP]") {
			t.Errorf("after SIGTERM the client got %q (%v), want -ERR [SYS/TEMP] ...", line, err)
		}
		c.ExpectEOF()
	}
	code, err := srv.wait(5 * time.Second)
	if err != nil || code != 0 {
		t.Fatalf("exit code %d, %v after SIGTERM; want 0 within 5s", code, err)
	}
	t.Logf("shutdown took %v", time.Since(start))
	after := listMaildir(t, s.maildir(alice))
	if strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("SIGTERM in TRANSACTION changed the Maildir:\nbefore %v\nafter  %v", before, after)
	}
	for _, m := range msgs[:2] {
		if _, err := os.Stat(m.path); err != nil {
			t.Errorf("message marked DELE before SIGTERM is gone: %v", err)
		}
	}
}

// TestInUse: a second concurrent login to the same mailbox gets
// -ERR [IN-USE]; once the first session ends, logging in works again.
func TestInUse(t *testing.T) {
	s := newSite(t)
	s.deliverShapes(t, alice)
	srv := startServer(t, s)

	first := pop3test.Dial(t, srv.addr)
	first.Login(alice, alicePass)
	second := pop3test.Dial(t, srv.addr)
	second.OK("USER " + alice)
	if r := second.Cmd("PASS " + alicePass); !strings.HasPrefix(r, "-ERR [IN-USE]") {
		t.Errorf("second login to a locked mailbox: %q, want -ERR [IN-USE] ...", r)
	}
	// A second pop3d process on the same Maildirs honours the lock too.
	other := startServer(t, s)
	cross := pop3test.Dial(t, other.addr)
	cross.OK("USER " + alice)
	if r := cross.Cmd("PASS " + alicePass); !strings.HasPrefix(r, "-ERR [IN-USE]") {
		t.Errorf("login through another pop3d process while the mailbox is locked: %q, want -ERR [IN-USE] ...", r)
	}
	first.OK("NOOP")
	first.OK("DELE 1")
	first.Quit()
	third := pop3test.Dial(t, srv.addr)
	third.Login(alice, alicePass)
	if st := third.OK("STAT"); !strings.HasPrefix(st, fmt.Sprintf("%d ", len(shapes())-1)) {
		t.Errorf("STAT after DELE 1 + QUIT = %q", st)
	}
	third.Quit()
}

// TestReload: SIGHUP re-reads the config file and the password file; a
// broken config keeps the old settings and logs why.
func TestReload(t *testing.T) {
	requireTool(t, "htpasswd")
	s := newSite(t)
	s.deliverShapes(t, alice)
	conf := filepath.Join(s.dir, "pop3d.conf")
	good := fmt.Sprintf("# e2e\npasswd_file = %s\nmaildir = %s\nauth_failure_delay = 100ms\nmax_auth_failures = 3\n", s.passwd, s.maildirTemplate())
	writeFile(t, conf, []byte(good), 0o644)
	srv := startServerArgs(t, []string{"-config", conf}, withPlain())

	p := pop3test.Dial(t, srv.addr)
	p.Login(alice, alicePass)
	p.Quit()

	// A new user added to the password file works after SIGHUP.
	runCmd(t, 30*time.Second, nil, "htpasswd", "-B", "-C", "5", "-b", s.passwd, "carol", "c4rol")
	from := len(srv.notify.messages())
	srv.signal(syscall.SIGHUP)
	from = srv.notify.waitFor(t, "RELOADING=1", from, 10*time.Second)
	srv.notify.waitFor(t, "READY=1", from, 10*time.Second)
	p = pop3test.Dial(t, srv.addr)
	p.Login("carol", "c4rol")
	p.Quit()

	// A broken config: the error is logged, the old settings stay.
	logBefore := len(srv.logLines())
	writeFile(t, conf, []byte("passwd_file = /nonexistent/passwd\nthis is not a setting\nmax_connections = lots\n"), 0o644)
	srv.signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	var complaint logLine
	for complaint == nil && time.Now().Before(deadline) {
		for _, l := range srv.logLines()[logBefore:] {
			if l["level"] == "ERROR" || l["level"] == "WARN" {
				complaint = l
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if complaint == nil {
		t.Fatalf("no WARN/ERROR log line after SIGHUP with a broken config:\n%s", srv.stderr.String())
	}
	t.Logf("reload complaint: %v", complaint)
	if !strings.Contains(fmt.Sprint(complaint), "pop3d.conf") && !strings.Contains(strings.ToLower(complaint["msg"]), "reload") {
		t.Errorf("the complaint names neither the config file nor the reload: %v", complaint)
	}
	select {
	case <-srv.done:
		t.Fatalf("pop3d exited after SIGHUP with a broken config: %v", srv.err)
	default:
	}
	p = pop3test.Dial(t, srv.addr)
	p.Login(alice, alicePass)
	p.Quit()
}

// TestShutdownWithStuckClient: a client that stopped reading in the middle
// of a large RETR does not hold up SIGTERM.
func TestShutdownWithStuckClient(t *testing.T) {
	s := newSite(t)
	msgs := s.deliverShapes(t, alice)
	srv := startServer(t, s)
	c, err := net.DialTimeout("tcp", srv.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(4096)
	io.WriteString(c, "USER "+alice+"\r\nPASS "+alicePass+"\r\nDELE 1\r\n"+strings.Repeat(fmt.Sprintf("RETR %d\r\n", len(msgs)), 10))
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	srv.signal(syscall.SIGTERM)
	code, err := srv.wait(10 * time.Second)
	if err != nil || code != 0 {
		t.Errorf("SIGTERM with a client stuck in RETR: exit %d, %v; want 0 within 10s", code, err)
	}
	t.Logf("exited %v after SIGTERM", time.Since(start))
	if _, err := os.Stat(msgs[0].path); err != nil {
		t.Errorf("DELE of the stuck session was applied: %v", err)
	}
}
