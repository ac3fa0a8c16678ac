package daemon_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pop3d/pop3d/daemon"
)

// step is one command and the exact lines that answer it.
type step struct {
	send   string
	want   []string
	closed bool // the server closes the connection after the answer
}

func run(t *testing.T, c *client, steps []step) {
	t.Helper()
	for _, s := range steps {
		c.send(s.send)
		for _, w := range s.want {
			if got := c.line(); got != w {
				t.Fatalf("after %q: got %q, want %q", s.send, got, w)
			}
		}
		if s.closed {
			c.expectClosed()
		}
	}
}

func one(send string, want ...string) step { return step{send: send, want: want} }
func last(send string, want ...string) step {
	return step{send: send, want: want, closed: true}
}

var (
	msg1 = []byte("Subject: one\n\nbody one\n")
	msg2 = []byte("Subject: two\r\n\r\n.dot line\r\nend\r\n")
	msg3 = []byte("Subject: three\n\nno final newline")
)

func sizeOf(b []byte) int { return len(wire(b)) }

func aliceBackend() *memBackend {
	b := newMemBackend()
	b.addUser("alice", "secret", memMessage{data: msg1}, memMessage{data: msg2}, memMessage{data: msg3})
	b.addUser("bob", " two  words ")
	b.addUser("carol", "pw")
	b.inUse["carol"] = true
	b.addUser("dave", "pw")
	b.loginErr["dave"] = errors.New("disk on fire")
	b.addUser("erin", "pw")
	b.loginErr["erin"] = &daemon.Error{Code: daemon.CodeSysPerm, Text: "mailbox is corrupt", Err: errors.New("detail")}
	return b
}

var capaAuth = []string{"+OK capability list follows", "TOP", "USER", "UIDL", "PIPELINING", "RESP-CODES",
	"AUTH-RESP-CODE", "EXPIRE NEVER", "IMPLEMENTATION pop3d-test", "SASL PLAIN", "."}

var capaTrans = []string{"+OK capability list follows", "TOP", "UIDL", "PIPELINING", "RESP-CODES",
	"AUTH-RESP-CODE", "EXPIRE NEVER", "IMPLEMENTATION pop3d-test", "."}

func TestAuthorizationState(t *testing.T) {
	ts := startServer(t, aliceBackend(), daemon.ModePlain, nil)
	total := sizeOf(msg1) + sizeOf(msg2) + sizeOf(msg3)
	loggedIn := fmt.Sprintf("+OK maildrop has 3 messages (%d octets)", total)
	tests := []struct {
		name  string
		steps []step
	}{
		{"capa", []step{one("CAPA", capaAuth...)}},
		{"capa lower case", []step{one("capa", capaAuth...)}},
		{"capa with argument", []step{one("CAPA x", "-ERR no arguments expected")}},
		{"transaction commands", []step{
			one("STAT", "-ERR not logged in"),
			one("list", "-ERR not logged in"),
			last("RETR 1", "-ERR too many bad commands"),
		}},
		{"unknown", []step{one("FOO", "-ERR unknown command"), one("", "-ERR unknown command")}},
		{"apop without apop = yes", []step{one("APOP a b", "-ERR APOP is not available")}},
		{"unicode keyword not folded", []step{one("ſtat", "-ERR unknown command")}},
		{"noop before login", []step{one("NOOP", "-ERR not logged in")}},
		{"user without name", []step{one("USER", "-ERR USER takes one argument: the user name")}},
		{"user with two names", []step{one("USER a b", "-ERR USER takes one argument: the user name")}},
		{"pass first", []step{one("PASS secret", "-ERR send USER first")}},
		{"pass without argument", []step{one("USER alice", "+OK"), one("PASS", "-ERR PASS takes the password as its argument"), one("PASS secret", "-ERR send USER first")}},
		{"good login", []step{one("USER alice", "+OK"), one("PASS secret", loggedIn)}},
		{"case-insensitive commands", []step{one("user alice", "+OK"), one("pAsS secret", loggedIn)}},
		{"password with spaces", []step{one("USER bob", "+OK"), one("PASS  two  words ", "+OK maildrop has 0 messages (0 octets)")}},
		{"wrong password", []step{one("USER alice", "+OK"), one("PASS wrong", "-ERR [AUTH] authentication failed")}},
		{"unknown user, same answer", []step{one("USER nobody", "+OK"), one("PASS wrong", "-ERR [AUTH] authentication failed")}},
		{"user again after failure", []step{
			one("USER alice", "+OK"), one("PASS wrong", "-ERR [AUTH] authentication failed"),
			one("PASS secret", "-ERR send USER first"),
			one("USER alice", "+OK"), one("PASS secret", loggedIn),
		}},
		{"second USER replaces the first", []step{one("USER nobody", "+OK"), one("USER alice", "+OK"), one("PASS secret", loggedIn)}},
		{"in use", []step{one("USER carol", "+OK"), one("PASS pw", "-ERR [IN-USE] mailbox locked by another session")}},
		{"backend failure", []step{one("USER dave", "+OK"), one("PASS pw", "-ERR [SYS/TEMP] internal error")}},
		{"backend error with code", []step{one("USER erin", "+OK"), one("PASS pw", "-ERR [SYS/PERM] mailbox is corrupt")}},
		{"quit", []step{last("QUIT", "+OK bye")}},
		{"quit with argument", []step{one("QUIT now", "-ERR no arguments expected")}},
		{"stls without tls", []step{one("STLS", "-ERR STLS not available")}},
		{"three bad commands", []step{
			one("FOO", "-ERR unknown command"),
			one("BAR", "-ERR unknown command"),
			last("BAZ", "-ERR too many bad commands"),
		}},
		{"line too long", []step{one(strings.Repeat("x", 600), "-ERR line too long"), one("NOOP", "-ERR not logged in")}},
		{"line of 510 octets is fine", []step{one("USER "+strings.Repeat("x", 505), "+OK")}},
		{"NUL byte", []step{one("US\x00ER a", "-ERR NUL byte in command")}},
		{"auth lists mechanisms", []step{one("AUTH", "+OK", "PLAIN", ".")}},
		{"auth unknown mechanism", []step{one("AUTH CRAM-MD5", "-ERR unsupported SASL mechanism")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run(t, ts.dial(t), tt.steps)
		})
	}
}

func TestTransactionState(t *testing.T) {
	s1, s2, s3 := sizeOf(msg1), sizeOf(msg2), sizeOf(msg3)
	total := s1 + s2 + s3
	b := aliceBackend()
	ts := startServer(t, b, daemon.ModePlain, nil)
	tests := []struct {
		name  string
		steps []step
	}{
		{"stat", []step{one("STAT", fmt.Sprintf("+OK 3 %d", total))}},
		{"list", []step{one("LIST", fmt.Sprintf("+OK 3 messages (%d octets)", total),
			fmt.Sprintf("1 %d", s1), fmt.Sprintf("2 %d", s2), fmt.Sprintf("3 %d", s3), ".")}},
		{"list n", []step{one("LIST 2", fmt.Sprintf("+OK 2 %d", s2)), one("list 003", fmt.Sprintf("+OK 3 %d", s3))}},
		{"list bad numbers", []step{
			one("LIST 0", "-ERR no such message"),
			one("LIST 4", "-ERR no such message"),
			one("LIST -1", "-ERR invalid message number"),
			one("LIST +1", "-ERR invalid message number"),
			one("LIST 1x", "-ERR invalid message number"),
			one("LIST ١", "-ERR invalid message number"),
			one("LIST 99999999999999999999999999", "-ERR no such message"),
			one("LIST 1 2", "-ERR too many arguments"),
		}},
		{"uidl", []step{one("UIDL", "+OK unique-id listing follows", "1 uid-alice-1", "2 uid-alice-2", "3 uid-alice-3", "."),
			one("UIDL 3", "+OK 3 uid-alice-3"), one("UIDL 5", "-ERR no such message")}},
		{"dele", []step{
			one("DELE 1", "+OK message 1 deleted"),
			one("DELE 1", "-ERR message 1 already deleted"),
			one("LIST 1", "-ERR message 1 is deleted"),
			one("UIDL 1", "-ERR message 1 is deleted"),
			one("RETR 1", "-ERR message 1 is deleted"),
			one("TOP 1 0", "-ERR message 1 is deleted"),
			one("STAT", fmt.Sprintf("+OK 2 %d", s2+s3)),
			one("LIST", fmt.Sprintf("+OK 2 messages (%d octets)", s2+s3), fmt.Sprintf("2 %d", s2), fmt.Sprintf("3 %d", s3), "."),
			one("UIDL", "+OK unique-id listing follows", "2 uid-alice-2", "3 uid-alice-3", "."),
			one("RSET", fmt.Sprintf("+OK maildrop has 3 messages (%d octets)", total)),
			one("LIST 1", fmt.Sprintf("+OK 1 %d", s1)),
		}},
		{"dele syntax", []step{one("DELE", "-ERR DELE takes one argument: the message number"), one("DELE 1 2", "-ERR DELE takes one argument: the message number"), one("DELE 9", "-ERR no such message")}},
		{"noop", []step{one("NOOP", "+OK"), one("NOOP 1", "-ERR no arguments expected")}},
		{"rset with argument", []step{one("RSET 1", "-ERR no arguments expected")}},
		{"stat with argument", []step{one("STAT 1", "-ERR no arguments expected")}},
		{"retr syntax", []step{one("RETR", "-ERR RETR takes one argument: the message number"), one("RETR a", "-ERR invalid message number"), one("RETR 0", "-ERR no such message")}},
		{"top syntax", []step{
			one("TOP 1", "-ERR TOP takes two arguments: message number and line count"),
			one("TOP 1 x", "-ERR invalid line count"),
			one("TOP 1 -1", "-ERR invalid line count"),
			one("TOP 9 1", "-ERR no such message"),
			one("TOP 1 2 3", "-ERR TOP takes two arguments: message number and line count"),
		}},
		{"authorization commands", []step{
			one("USER alice", "-ERR already logged in"),
			one("PASS secret", "-ERR already logged in"),
			one("AUTH PLAIN", "-ERR already logged in"),
			one("STLS", "-ERR already logged in"),
		}},
		{"capa", []step{one("CAPA", capaTrans...)}},
		{"unknown", []step{one("XYZZY", "-ERR unknown command")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ts.login(t, "alice", "secret")
			run(t, c, tt.steps)
			c.cmd("QUIT", "+OK bye (0 messages deleted)")
			c.expectClosed()
			waitFor(t, b.commits, "commit")
		})
	}
}

func TestBadCommandsAfterLogin(t *testing.T) {
	ts := startServer(t, aliceBackend(), daemon.ModePlain, nil)
	c := ts.login(t, "alice", "secret")
	for range 19 {
		c.cmd("LIST 9", "-ERR no such message")
	}
	c.cmd("LIST 9", "-ERR too many bad commands")
	c.expectClosed()
	if got := waitFor(t, ts.backend.closes, "Close"); got != "alice" {
		t.Errorf("Close for %q", got)
	}
	select {
	case r := <-ts.backend.commits:
		t.Errorf("Commit %+v after a dropped connection", r)
	default:
	}
}

// TestBadCommandCounter: before login every bad command counts; after
// login only consecutive ones do.
func TestBadCommandCounter(t *testing.T) {
	ts := startServer(t, aliceBackend(), daemon.ModePlain, nil)
	c := ts.dial(t)
	c.cmd("FOO", "-ERR unknown command")
	c.send("CAPA")
	c.multi()
	c.cmd("BAR", "-ERR unknown command")
	c.cmd("USER alice", "+OK")
	c.cmd("BAZ", "-ERR too many bad commands")
	c.expectClosed()

	c = ts.dial(t)
	c.cmd("FOO", "-ERR unknown command")
	c.cmd("USER alice", "+OK")
	c.send("PASS secret")
	c.line()
	for range 30 {
		for range 19 {
			c.cmd("RETR 9", "-ERR no such message")
		}
		c.cmd("NOOP", "+OK")
	}
	c.cmd("QUIT", "+OK bye (0 messages deleted)")
}

func TestRetrShapes(t *testing.T) {
	shapes := []struct {
		name string
		data string
	}{
		{"empty", ""},
		{"lf", "Subject: a\n\nbody\n"},
		{"crlf", "Subject: a\r\n\r\nbody\r\n"},
		{"mixed", "A: b\r\nC: d\n\nline\r\nline\n"},
		{"no final newline", "Subject: a\n\nbody"},
		{"final bare cr", "Subject: a\n\nbody\r"},
		{"bare cr inside", "Subject: a\n\nx\ry\n"},
		{"cr cr lf", "Subject: a\n\nx\r\r\n"},
		{"dots", ".\n..\n.x\nx.\n.\r\n"},
		{"only dot", "."},
		{"terminator lookalike", "a\r\n.\r\nb\r\n"},
		{"empty lines", "\n\n\r\n\n"},
		{"single lf", "\n"},
		{"binary", "a\x00b\xff\n\x01\n"},
		{"long line", strings.Repeat("y", 200000) + "\n.z\n"},
		{"big", strings.Repeat(".Line of text\n", 20000)},
	}
	b := newMemBackend()
	var msgs []memMessage
	for _, s := range shapes {
		msgs = append(msgs, memMessage{data: []byte(s.data)})
	}
	b.addUser("u", "p", msgs...)
	ts := startServer(t, b, daemon.ModePlain, nil)
	c := ts.login(t, "u", "p")
	for i, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			c.t = t
			w := wire([]byte(s.data))
			c.cmd(fmt.Sprintf("RETR %d", i+1), fmt.Sprintf("+OK %d octets", len(w)))
			if got, want := c.body(), stuff(w); string(got) != string(want) {
				t.Errorf("RETR body\n got %q\nwant %q", trunc(got), trunc(want))
			}
			for _, k := range []int{0, 1, 2, 1000} {
				c.cmd(fmt.Sprintf("TOP %d %d", i+1, k), "+OK top of message follows")
				if got, want := c.body(), stuff(topRef([]byte(s.data), k)); string(got) != string(want) {
					t.Errorf("TOP %d\n got %q\nwant %q", k, trunc(got), trunc(want))
				}
			}
		})
	}
	c.t = t
	c.cmd("QUIT", "+OK bye (0 messages deleted)")
	rec := waitFor(t, b.commits, "commit")
	if len(rec.retrieved) != len(shapes) || len(rec.deleted) != 0 {
		t.Errorf("commit %+v", rec)
	}
}

func trunc(b []byte) string {
	if len(b) > 200 {
		return fmt.Sprintf("%q...(%d bytes)", b[:200], len(b))
	}
	return string(b)
}

func TestCommitBookkeeping(t *testing.T) {
	tests := []struct {
		name          string
		cmds          []string
		quit          bool
		deleted, retr []int
	}{
		{"nothing", nil, true, nil, nil},
		{"retr and dele", []string{"RETR 1", "RETR 2", "DELE 2", "DELE 3"}, true, []int{1, 2}, []int{0}},
		{"top is not retrieval", []string{"TOP 1 5", "TOP 3 0"}, true, nil, nil},
		{"rset undeletes but keeps retrieval", []string{"RETR 3", "DELE 1", "DELE 3", "RSET", "DELE 2"}, true, []int{1}, []int{2}},
		{"dropped connection", []string{"RETR 1", "DELE 2"}, false, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := aliceBackend()
			ts := startServer(t, b, daemon.ModePlain, nil)
			c := ts.login(t, "alice", "secret")
			for _, cmd := range tt.cmds {
				c.send(cmd)
				if l := c.line(); !strings.HasPrefix(l, "+OK") {
					t.Fatalf("%s: %q", cmd, l)
				}
				if strings.HasPrefix(cmd, "RETR") || strings.HasPrefix(cmd, "TOP") {
					c.body()
				}
			}
			if !tt.quit {
				c.NetConn().Close()
				if got := waitFor(t, b.closes, "Close"); got != "alice" {
					t.Errorf("Close for %q", got)
				}
				if len(b.commits) != 0 {
					t.Errorf("Commit after a dropped connection")
				}
				return
			}
			c.cmd("QUIT", fmt.Sprintf("+OK bye (%d messages deleted)", len(tt.deleted)))
			c.expectClosed()
			rec := waitFor(t, b.commits, "commit")
			if !reflect.DeepEqual(rec.deleted, tt.deleted) || !reflect.DeepEqual(rec.retrieved, tt.retr) {
				t.Errorf("Commit(deleted %v, retrieved %v), want (%v, %v)", rec.deleted, rec.retrieved, tt.deleted, tt.retr)
			}
			ts.waitLog(t, fmt.Sprintf("msg=update remote_ip=127.0.0.1 user=alice retrieved=%d deleted=%d", len(tt.retr), len(tt.deleted)))
			if len(b.closes) != 0 {
				t.Errorf("Close after Commit")
			}
		})
	}
}

func TestCommitError(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{errors.New("unlink: permission denied"), "-ERR [SYS/TEMP] update failed: some messages may not have been deleted"},
		{&daemon.Error{Code: daemon.CodeSysPerm, Text: "read-only maildir"}, "-ERR [SYS/PERM] read-only maildir"},
	}
	for _, tt := range tests {
		b := aliceBackend()
		b.commitErr = tt.err
		ts := startServer(t, b, daemon.ModePlain, nil)
		c := ts.login(t, "alice", "secret")
		c.cmd("DELE 1", "+OK message 1 deleted")
		c.cmd("QUIT", tt.want)
		c.expectClosed()
		waitFor(t, b.commits, "commit")
		ts.waitLog(t, "update failed")
	}
}

func TestQuitInAuthorizationNoUpdate(t *testing.T) {
	b := aliceBackend()
	ts := startServer(t, b, daemon.ModePlain, nil)
	c := ts.dial(t)
	c.cmd("QUIT", "+OK bye")
	c.expectClosed()
	ts.waitLog(t, "msg=disconnect")
	if len(b.commits)+len(b.closes) != 0 {
		t.Errorf("mailbox touched without a login")
	}
}

func TestIdleTimeout(t *testing.T) {
	b := aliceBackend()
	ts := startServer(t, b, daemon.ModePlain, func(c *daemon.Config) { c.IdleTimeout = 200 * time.Millisecond })
	c := ts.login(t, "alice", "secret")
	c.cmd("DELE 1", "+OK message 1 deleted")
	c.expect("-ERR disconnected for inactivity")
	c.expectClosed()
	waitFor(t, b.closes, "Close")
	if len(b.commits) != 0 {
		t.Errorf("Commit after a timeout")
	}
	// Before login as well.
	c = ts.dial(t)
	c.expect("-ERR disconnected for inactivity")
	c.expectClosed()
}
