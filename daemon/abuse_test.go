package daemon_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pop3d/pop3d/daemon"
)

// responsive checks that a well-behaved client from src is greeted and
// answered within a second.
func responsive(t *testing.T, ts *testServer, src string) {
	t.Helper()
	c := ts.dialFrom(t, src)
	c.NetConn().SetDeadline(time.Now().Add(time.Second))
	if l, err := c.Reader().ReadString('\n'); err != nil || l != "+OK POP3 server ready\r\n" {
		t.Fatalf("greeting within a second: %q, %v", l, err)
	}
	c.NetConn().Write([]byte("CAPA\r\n"))
	for {
		l, err := c.Reader().ReadString('\n')
		if err != nil {
			t.Fatalf("CAPA within a second: %v", err)
		}
		if l == ".\r\n" {
			break
		}
	}
	c.NetConn().Close()
}

func TestLongLineWithoutNewline(t *testing.T) {
	ts := startServer(t, aliceBackend(), daemon.ModePlain, nil)
	c := ts.dial(t)
	if _, err := c.NetConn().Write(bytes.Repeat([]byte("x"), 100<<10)); err != nil {
		t.Fatal(err)
	}
	c.expect("-ERR line too long")
	responsive(t, ts, "127.0.0.2")
	// The rest of the line is skipped; the next line is a command again.
	c.send("yyyy\r\nCAPA")
	c.send("QUIT")
	if got := c.multi(); len(got) < 3 || got[0] != "+OK capability list follows" {
		t.Fatalf("after the long line: %q", got)
	}
	c.expect("+OK bye")
	c.expectClosed()
}

func TestLongLinesCloseBeforeLogin(t *testing.T) {
	ts := startServer(t, aliceBackend(), daemon.ModePlain, nil)
	c := ts.dial(t)
	long := strings.Repeat("z", 2000)
	c.send(long)
	c.expect("-ERR line too long")
	c.send(long)
	c.expect("-ERR line too long")
	c.send(long)
	c.expect("-ERR too many bad commands")
	c.expectClosed()
}

func TestNULBytes(t *testing.T) {
	ts := startServer(t, aliceBackend(), daemon.ModePlain, nil)
	c := ts.dial(t)
	c.send("\x00\x00\x00")
	c.expect("-ERR NUL byte in command")
	c.send("USER al\x00ice")
	c.expect("-ERR NUL byte in command")
	c.send("\x00")
	c.expect("-ERR too many bad commands")
	c.expectClosed()
}

func TestSlowloris(t *testing.T) {
	if testing.Short() {
		t.Skip("takes seconds")
	}
	ts := startServer(t, aliceBackend(), daemon.ModePlain, func(c *daemon.Config) {
		c.MaxConnectionsPerIP = 0
		c.IdleTimeout = time.Minute
	})
	const sockets = 100
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range sockets {
		c := ts.dialNoGreeting(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, b := range []byte("USER slowly-but-surely") {
				select {
				case <-stop:
					return
				case <-time.After(time.Second):
				}
				c.NetConn().Write([]byte{b})
			}
		}()
	}
	for range 4 {
		time.Sleep(500 * time.Millisecond)
		responsive(t, ts, "127.0.0.2")
	}
	close(stop)
	wg.Wait()
}

func TestClientNeverReadsRetr(t *testing.T) {
	b := newMemBackend()
	b.addUser("u", "p", memMessage{data: bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n"), 1<<18)})
	ts := startServer(t, b, daemon.ModePlain, func(c *daemon.Config) { c.WriteTimeout = 300 * time.Millisecond })
	c := ts.login(t, "u", "p")
	c.send("RETR 1")
	// Never read: the server must give up within its write timeout.
	if got := waitFor(t, b.closes, "Close of the stuck session"); got != "u" {
		t.Errorf("Close for %q", got)
	}
	responsive(t, ts, "127.0.0.2")
	ts.waitLog(t, `msg="sending message failed"`)
	if len(b.commits) != 0 {
		t.Error("Commit for a dropped session")
	}
}

func TestConnectionFlood(t *testing.T) {
	ts := startServer(t, aliceBackend(), daemon.ModePlain, func(c *daemon.Config) {
		c.MaxConnections = 100
		c.MaxConnectionsPerIP = 20
	})
	var refused, greeted int
	for range 200 {
		c := ts.dialNoGreeting(t)
		switch l := c.line(); l {
		case "-ERR [SYS/TEMP] too many connections":
			refused++
		case "+OK POP3 server ready":
			greeted++
		default:
			t.Fatalf("flood connection got %q", l)
		}
	}
	if greeted != 20 || refused != 180 {
		t.Errorf("greeted %d, refused %d; want 20 and 180", greeted, refused)
	}
	responsive(t, ts, "127.0.0.2")
}

func TestPanicsAreContained(t *testing.T) {
	b := aliceBackend()
	b.addUser("frank", "pw", memMessage{data: []byte("x\n"), panics: true}, memMessage{data: []byte("y\n")})
	ts := startServer(t, b, daemon.ModePlain, nil)
	c := ts.login(t, "frank", "pw")
	c.cmd("DELE 2", "+OK message 2 deleted")
	c.cmd("RETR 1", "-ERR [SYS/TEMP] internal error")
	c.expectClosed()
	if got := waitFor(t, b.closes, "Close"); got != "frank" {
		t.Errorf("Close for %q", got)
	}
	if len(b.commits) != 0 {
		t.Errorf("Commit after a panic")
	}
	ts.waitLog(t, `msg="panic in session"`)
	if !strings.Contains(ts.logs.String(), "open exploded") || !strings.Contains(ts.logs.String(), "goroutine") {
		t.Errorf("panic value or stack not logged")
	}

	b.mu.Lock()
	b.loginPanic = true
	b.mu.Unlock()
	c = ts.dial(t)
	c.cmd("USER alice", "+OK")
	c.cmd("PASS secret", "-ERR [SYS/TEMP] internal error")
	c.expectClosed()
	b.mu.Lock()
	b.loginPanic = false
	b.mu.Unlock()
	ts.login(t, "alice", "secret")
}

func TestPanicInMailboxClose(t *testing.T) {
	b := aliceBackend()
	b.closePanic = true
	ts := startServer(t, b, daemon.ModePlain, nil)
	c := ts.login(t, "alice", "secret")
	c.NetConn().Close()
	waitFor(t, b.closes, "Close")
	ts.waitLog(t, "panic in Mailbox.Close: close exploded")
	b.mu.Lock()
	b.closePanic = false
	b.mu.Unlock()
	c = ts.login(t, "alice", "secret") // the server is still there
	c.cmd("QUIT", "+OK bye (0 messages deleted)")
}

func TestMessageErrors(t *testing.T) {
	b := newMemBackend()
	b.addUser("u", "p",
		memMessage{data: []byte("gone\n"), gone: true},
		memMessage{data: []byte("perm\n"), openErr: &daemon.Error{Code: daemon.CodeSysPerm, Text: "message unreadable"}},
		memMessage{data: []byte("ok\n"), size: 99},
		memMessage{data: []byte("a\nb\n"), readErr: errBroken},
	)
	ts := startServer(t, b, daemon.ModePlain, nil)
	c := ts.login(t, "u", "p")
	run(t, c, []step{
		one("RETR 1", "-ERR [SYS/TEMP] cannot read message 1"),
		one("TOP 1 0", "-ERR [SYS/TEMP] cannot read message 1"),
		one("RETR 2", "-ERR [SYS/PERM] message unreadable"),
		// A wrong announced size: the body is still right, and the
		// mailbox learns the true size.
		one("RETR 3", "+OK 99 octets", "ok", "."),
	})
	if got := waitFor(t, b.corrections, "CorrectSize"); got != [2]int64{2, 4} {
		t.Errorf("CorrectSize%v, want (2, 4)", got)
	}
	// A read error in the middle of a body: the connection is dropped.
	c.cmd("RETR 4", "+OK 6 octets")
	c.expect("a")
	c.expect("b")
	c.expectClosed()
	waitFor(t, b.closes, "Close")
	if len(b.commits) != 0 {
		t.Errorf("Commit after a failed RETR")
	}
	ts.waitLog(t, "reading message failed")
}

type brokenError struct{}

func (brokenError) Error() string { return "disk read error" }

var errBroken = brokenError{}

// TestLastAnswerSurvivesUnreadInput: the server closes a connection whose
// client has sent more than the server will read, while the end of a big
// answer is still queued for sending. A plain close would make the kernel
// reset the connection and drop that queue; the lingering close must not.
func TestLastAnswerSurvivesUnreadInput(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n"), 1<<17)
	b := newMemBackend()
	b.addUser("u", "p", memMessage{data: body})
	ts := startServer(t, b, daemon.ModePlain, nil)
	c := ts.login(t, "u", "p")
	c.send("RETR 1\r\n" + strings.Repeat("FOO\r\n", 20) + strings.Repeat("x", 200000))
	time.Sleep(100 * time.Millisecond) // the server is blocked sending the body
	c.expect(fmt.Sprintf("+OK %d octets", len(wire(body))))
	if got := c.body(); !bytes.Equal(got, stuff(wire(body))) {
		t.Fatalf("body: %d bytes, want %d", len(got), len(stuff(wire(body))))
	}
	for range 19 {
		c.expect("-ERR unknown command")
	}
	c.expect("-ERR too many bad commands")
	c.expectClosed()
}
