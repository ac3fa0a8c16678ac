package e2e

import (
	"fmt"
	"github.com/pop3d/pop3d/internal/pop3test"
	"github.com/pop3d/pop3d/internal/wireform"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// countConn counts the octets read from the server.
type countConn struct {
	net.Conn
	n atomic.Int64
}

func (c *countConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestLogLines checks the connect, login, login failed, update and
// disconnect lines against what happened on the wire.
func TestLogLines(t *testing.T) {
	s := newSite(t)
	msgs := s.deliverShapes(t, alice)
	var total int64
	for _, m := range msgs {
		total += int64(len(wireform.Reference(m.data)))
	}
	srv := startServer(t, s)

	raw, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	cc := &countConn{Conn: raw}
	p := pop3test.New(t, cc)
	p.ExpectOK("greeting")
	p.Login(alice, alicePass)
	p.Multi("RETR 1")
	p.Multi("RETR 2")
	p.OK("DELE 3")
	p.OK("DELE 4")
	p.Quit()
	local := raw.LocalAddr().String()

	find := func(what string, match func(logLine) bool) logLine {
		t.Helper()
		l, ok := srv.waitLog(match, 5*time.Second)
		if !ok {
			t.Fatalf("no %s log line:\n%s", what, srv.stderr.String())
		}
		return l
	}
	l := find("connect", func(l logLine) bool { return l["msg"] == "connect" && l["remote"] == local })
	want(t, l, "level", "INFO")
	want(t, l, "listener", "pop3")
	if _, err := time.Parse(time.RFC3339Nano, l["time"]); err != nil {
		t.Errorf("connect line time=%q is not RFC 3339 (JOURNAL_STREAM unset): %v", l["time"], err)
	}

	l = find("login", msgIs("login"))
	want(t, l, "level", "INFO")
	want(t, l, "remote_ip", "127.0.0.1")
	want(t, l, "user", alice)
	want(t, l, "mech", "USER")
	want(t, l, "tls", "false")
	want(t, l, "messages", strconv.Itoa(len(msgs)))
	want(t, l, "octets", strconv.FormatInt(total, 10))

	l = find("update", msgIs("update"))
	want(t, l, "level", "INFO")
	want(t, l, "remote_ip", "127.0.0.1")
	want(t, l, "user", alice)
	want(t, l, "retrieved", "2")
	want(t, l, "deleted", "2")

	l = find("disconnect", func(l logLine) bool { return l["msg"] == "disconnect" && l["user"] == alice })
	want(t, l, "level", "INFO")
	want(t, l, "remote_ip", "127.0.0.1")
	want(t, l, "bytes_sent", strconv.FormatInt(cc.n.Load(), 10))
	if d, err := time.ParseDuration(l["duration"]); err != nil || d <= 0 {
		t.Errorf("disconnect duration=%q: %v", l["duration"], err)
	}

	// AUTH PLAIN logs mech=PLAIN.
	p = pop3test.Dial(t, srv.addr)
	p.AuthPlain(alice, alicePass)
	p.Quit()
	find("login with AUTH PLAIN", func(l logLine) bool { return l["msg"] == "login" && l["mech"] == "PLAIN" && l["user"] == alice })

	if strings.Contains(srv.stderr.String(), alicePass) {
		t.Error("the log contains a password")
	}
}

func want(t *testing.T, l logLine, key, val string) {
	t.Helper()
	if l[key] != val {
		t.Errorf("log line %q: %s=%q, want %q", l["msg"], key, l[key], val)
	}
}

// TestLoginFailures: wrong password and unknown user get the same answer
// after the delay, each is logged as "login failed" (without the password),
// and the connection is closed after max_auth_failures.
func TestLoginFailures(t *testing.T) {
	s := newSite(t)
	s.deliverShapes(t, alice)
	srv := startServer(t, s, "-auth-failure-delay", "300ms", "-max-auth-failures", "3")

	p := pop3test.Dial(t, srv.addr)
	var answers []string
	attempts := []struct{ user, pass string }{
		{alice, "wrong-password"},
		{"nosuchuser", "wrong-password"},
		{alice, alicePass + "x"},
	}
	for i, a := range attempts {
		p.OK("USER " + a.user)
		start := time.Now()
		r := p.Cmd("PASS " + a.pass)
		if el := time.Since(start); el < 300*time.Millisecond {
			t.Errorf("attempt %d answered after %v, before auth_failure_delay (300ms)", i+1, el)
		}
		if !strings.HasPrefix(r, "-ERR [AUTH]") {
			t.Errorf("failed login %d: %q, want -ERR [AUTH] ...", i+1, r)
		}
		answers = append(answers, r)
	}
	if answers[0] != answers[1] {
		t.Errorf("wrong password answered %q, unknown user %q: must be the same", answers[0], answers[1])
	}
	p.ExpectEOF() // closed after the third failure

	var failed []logLine
	deadline := time.Now().Add(5 * time.Second)
	for len(failed) < 3 && time.Now().Before(deadline) {
		failed = failed[:0]
		for _, l := range srv.logLines() {
			if l["msg"] == "login failed" {
				failed = append(failed, l)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(failed) != 3 {
		t.Fatalf("%d \"login failed\" lines, want 3:\n%s", len(failed), srv.stderr.String())
	}
	for i, l := range failed {
		want(t, l, "level", "WARN")
		want(t, l, "remote_ip", "127.0.0.1")
		want(t, l, "user", attempts[i].user)
		want(t, l, "mech", "USER")
		if l["reason"] == "" {
			t.Errorf("login failed line %d has no reason", i+1)
		}
	}
	if strings.Contains(srv.stderr.String(), "wrong-password") {
		t.Error("the log contains a tried password")
	}

	// A failed login does not block other sessions during its delay.
	slow := pop3test.Dial(t, srv.addr)
	slow.OK("USER " + alice)
	slow.Send("PASS nope")
	start := time.Now()
	q := pop3test.Dial(t, srv.addr)
	q.Login(alice, alicePass)
	q.Quit()
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("a good login took %v while another waited out its failure delay", el)
	}
	if r := slow.Line(); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("PASS nope: %q", r)
	}
}

// TestJournalLogFormat: with stderr connected to the journal (JOURNAL_STREAM
// names stderr's device:inode) the time= attribute is left out.
func TestJournalLogFormat(t *testing.T) {
	s := newSite(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(w.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	journal := fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino)
	srv := startServerArgs(t, []string{"-config", "/dev/null", "-passwd-file", s.passwd, "-maildir", s.maildirTemplate()},
		withPlain(), withEnv(journal), withStderrFile(r, w))
	p := pop3test.Dial(t, srv.addr)
	p.Login(alice, alicePass)
	p.Quit()
	l, ok := srv.waitLog(msgIs("login"), 5*time.Second)
	if !ok {
		t.Fatalf("no login line:\n%s", srv.stderr.String())
	}
	if _, has := l["time"]; has {
		t.Errorf("with %s the login line still has time=%q", journal, l["time"])
	}
}
