package daemon_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pop3d/pop3d/daemon"
)

// recorder is an Observer writing each event as one line, per session.
type recorder struct {
	mu       sync.Mutex
	events   []string
	sessions map[*daemon.Session]bool  // connected and not yet disconnected
	octets   map[*daemon.Session]int64 // Command and Disconnect octets added up
	ended    chan *daemon.Session
	bad      []string // contract violations
}

func newRecorder() *recorder {
	return &recorder{sessions: make(map[*daemon.Session]bool), octets: make(map[*daemon.Session]int64), ended: make(chan *daemon.Session, 16)}
}

func (r *recorder) add(s *daemon.Session, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s != nil && !r.sessions[s] {
		r.bad = append(r.bad, fmt.Sprintf("event for a session not connected: "+format, args...))
	}
	r.events = append(r.events, fmt.Sprintf(format, args...))
}

func (r *recorder) Connect(s *daemon.Session) {
	r.mu.Lock()
	if s.ID == "" || s.RemoteAddr == nil || s.Start.IsZero() {
		r.bad = append(r.bad, fmt.Sprintf("Connect with %+v", *s))
	}
	r.sessions[s] = true
	r.mu.Unlock()
	r.add(s, "connect %s tls=%v", s.Listener, s.TLS)
}

func (r *recorder) Refuse(s *daemon.Session, f daemon.Refusal) {
	r.add(s, "refuse %s %s nil=%v", f.Listener, f.Reason, s == nil)
}

func (r *recorder) Login(s *daemon.Session, l daemon.Login) {
	r.add(s, "login %s %s %s messages=%d", l.Mech, l.Result, l.User, l.Messages)
}

func (r *recorder) Command(s *daemon.Session, c daemon.Command) {
	r.mu.Lock()
	r.octets[s] += c.Octets
	r.mu.Unlock()
	r.add(s, "command %s ok=%v", c.Name, c.OK)
}

func (r *recorder) Update(s *daemon.Session, u daemon.Update) {
	r.add(s, "update deleted=%d retrieved=%d err=%v", u.Deleted, u.Retrieved, u.Err)
}

func (r *recorder) Disconnect(s *daemon.Session, d daemon.Disconnect) {
	r.mu.Lock()
	if n := r.octets[s] + d.Octets; n != d.Sent {
		r.bad = append(r.bad, fmt.Sprintf("octets reported %d, session sent %d", n, d.Sent))
	}
	delete(r.octets, s)
	r.mu.Unlock()
	r.add(s, "disconnect %s retrieved=%d", d.How, d.Retrieved)
	r.mu.Lock()
	delete(r.sessions, s)
	r.mu.Unlock()
	r.ended <- s
}

// take returns the events so far and forgets them.
func (r *recorder) take(t *testing.T) []string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.bad {
		t.Error(b)
	}
	r.bad = nil
	ev := r.events
	r.events = nil
	return ev
}

func waitEnded(t *testing.T, r *recorder) *daemon.Session {
	t.Helper()
	select {
	case s := <-r.ended:
		return s
	case <-time.After(ioTimeout):
		t.Fatal("no Disconnect")
		return nil
	}
}

func checkEvents(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestObserverSessions: the events of scripted sessions, one at a time
// (each session's events are in order; Disconnect is last).
func TestObserverSessions(t *testing.T) {
	rec := newRecorder()
	ts := startServer(t, aliceBackend(), daemon.ModePlain, func(c *daemon.Config) { c.Observer = rec })
	ts.backend.addUser("carol", "pw")
	ts.backend.inUse["carol"] = true

	tests := []struct {
		name   string
		script func(t *testing.T)
		want   []string
	}{
		{"retr dele quit", func(t *testing.T) {
			c := ts.login(t, "alice", "secret")
			c.send("RETR 1")
			c.line()
			c.body()
			c.cmd("DELE 2", "+OK message 2 deleted")
			c.cmd("RETR 9", "-ERR no such message")
			c.cmd("XYZZY", "-ERR unknown command")
			c.cmd("QUIT", "+OK bye (1 messages deleted)")
			c.expectClosed()
		}, []string{
			"connect pop3 tls=false",
			"command USER ok=true",
			"login USER success alice messages=3",
			"command PASS ok=true",
			"command RETR ok=true",
			"command DELE ok=true",
			"command RETR ok=false",
			"command UNKNOWN ok=false",
			"update deleted=1 retrieved=1 err=<nil>",
			"command QUIT ok=true",
			"disconnect quit retrieved=1",
		}},
		{"bad password, in use, drop", func(t *testing.T) {
			c := ts.dial(t)
			c.cmd("USER alice", "+OK")
			c.cmd("PASS wrong", "-ERR [AUTH] authentication failed")
			c.cmd("AUTH PLAIN "+b64("\x00carol\x00pw"), "-ERR [IN-USE] mailbox locked by another session")
			c.Conn.Close()
		}, []string{
			"connect pop3 tls=false",
			"command USER ok=true",
			"login USER failure alice messages=0",
			"command PASS ok=false",
			"login PLAIN in_use carol messages=0",
			"command AUTH ok=false",
			"disconnect dropped retrieved=0",
		}},
		{"untrusted PROXY header", func(t *testing.T) {
			c := ts.dial(t)
			c.send("PROXY TCP4 192.0.2.1 192.0.2.2 1 2")
			c.expect("-ERR PROXY header not accepted from this address")
			c.expectClosed()
		}, []string{
			"connect pop3 tls=false",
			"refuse pop3 proxy_header nil=false",
			"disconnect refused retrieved=0",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.script(t)
			waitEnded(t, rec)
			checkEvents(t, rec.take(t), tt.want)
		})
	}
}

// TestObserverRefusedBeforeSession: a connection over the limit is reported
// with a nil session and gets no other event.
func TestObserverRefusedBeforeSession(t *testing.T) {
	rec := newRecorder()
	ts := startServer(t, aliceBackend(), daemon.ModePlain, func(c *daemon.Config) {
		c.Observer = rec
		c.MaxConnectionsPerIP = 1
	})
	c := ts.dial(t)
	c2 := ts.dialNoGreeting(t)
	c2.expect("-ERR [SYS/TEMP] too many connections")
	c.cmd("QUIT", "+OK bye")
	c.expectClosed()
	waitEnded(t, rec)
	checkEvents(t, rec.take(t), []string{
		"connect pop3 tls=false",
		"refuse pop3 max_per_ip nil=true",
		"command QUIT ok=true",
		"disconnect quit retrieved=0",
	})
}

// kickRecorder remembers sessions so the test can kick them.
type kickRecorder struct {
	*recorder
	connected chan *daemon.Session
}

func (k kickRecorder) Connect(s *daemon.Session) {
	k.recorder.Connect(s)
	k.connected <- s
}

// TestObserverKick: Kick ends a logged-in session as a shutdown does, with
// no UPDATE, and leaves the others alone.
func TestObserverKick(t *testing.T) {
	rec := kickRecorder{newRecorder(), make(chan *daemon.Session, 4)}
	ts := startServer(t, aliceBackend(), daemon.ModePlain, func(c *daemon.Config) { c.Observer = rec })
	ts.backend.addUser("bob", "pw", memMessage{data: msg1})
	c := ts.login(t, "alice", "secret")
	h := <-rec.connected
	other := ts.login(t, "bob", "pw")
	<-rec.connected
	c.cmd("DELE 1", "+OK message 1 deleted")
	h.Kick()
	c.expect("-ERR [SYS/TEMP] session ended by the administrator")
	c.expectClosed()
	if s := waitEnded(t, rec.recorder); s != h {
		t.Fatalf("Disconnect of %s, want %s", s.ID, h.ID)
	}
	if n := len(ts.backend.commits); n != 0 {
		t.Errorf("%d commits after a kick", n)
	}
	other.cmd("NOOP", "+OK")
	h.Kick() // after the end: nothing happens
	if ev := rec.take(t); !strings.Contains(strings.Join(ev, "\n"), "disconnect kicked retrieved=0") {
		t.Errorf("no kicked Disconnect in\n%s", strings.Join(ev, "\n"))
	}
	ts.waitLog(t, "msg=disconnect remote_ip=127.0.0.1 session=ID user=alice")
	ts.waitLog(t, " how=kicked top=0/0 retr=0/0 del=0/3 size=")
}

// TestSessionIDs: ids are unique and every log line of a session carries
// its own.
func TestSessionIDs(t *testing.T) {
	rec := kickRecorder{newRecorder(), make(chan *daemon.Session, 4)}
	ts := startServer(t, aliceBackend(), daemon.ModePlain, func(c *daemon.Config) { c.Observer = rec })
	var ids []string
	for range 3 {
		c := ts.dial(t)
		ids = append(ids, (<-rec.connected).ID)
		c.cmd("QUIT", "+OK bye")
		c.expectClosed()
		waitEnded(t, rec.recorder)
	}
	if ids[0] == ids[1] || ids[1] == ids[2] || ids[0] == ids[2] {
		t.Fatalf("ids repeat: %v", ids)
	}
	// The log is complete once Disconnect ran: each session's connect and
	// disconnect line carry its own id, and only its lines do.
	for _, line := range strings.Split(strings.TrimSpace(ts.logs.String()), "\n") {
		n := 0
		for _, id := range ids {
			if strings.Contains(line, " session="+id+" ") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("line with %d session ids: %s", n, line)
		}
	}
	for _, id := range ids {
		for _, msg := range []string{"msg=connect", "msg=disconnect"} {
			if !strings.Contains(ts.logs.String(), msg+" remote_ip=127.0.0.1 session="+id+" ") {
				t.Errorf("no %s line for session %s:\n%s", msg, id, ts.logs.String())
			}
		}
	}
}
