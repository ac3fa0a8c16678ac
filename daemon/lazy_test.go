package daemon_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pop3d/pop3d/daemon"
)

// lazyBackend hands out mailboxes that answer Len and Total at login and
// fail the test when a message is asked for before Load.
type lazyBackend struct {
	*memBackend
	t       *testing.T
	loadErr error
	loads   atomic.Int32
}

func (b *lazyBackend) Login(ctx context.Context, user, pass string, info daemon.ConnInfo) (daemon.Mailbox, error) {
	mb, err := b.memBackend.Login(ctx, user, pass, info)
	if err != nil {
		return nil, err
	}
	return &lazyMailbox{memMailbox: mb.(*memMailbox), b: b}, nil
}

type lazyMailbox struct {
	*memMailbox
	b      *lazyBackend
	loaded bool
}

func (m *lazyMailbox) Total() int64 {
	var t int64
	for _, x := range m.msgs {
		t += x.size
	}
	return t
}

func (m *lazyMailbox) Load() error {
	m.b.loads.Add(1)
	if m.b.loadErr != nil {
		return m.b.loadErr
	}
	m.loaded = true
	return nil
}

func (m *lazyMailbox) Size(i int) int64 {
	if !m.loaded {
		m.b.t.Errorf("Size(%d) before Load", i)
	}
	return m.memMailbox.Size(i)
}

func (m *lazyMailbox) UID(i int) string {
	if !m.loaded {
		m.b.t.Errorf("UID(%d) before Load", i)
	}
	return m.memMailbox.UID(i)
}

func newLazy(t *testing.T, loadErr error) (*lazyBackend, *testServer) {
	b := &lazyBackend{memBackend: newMemBackend(), t: t, loadErr: loadErr}
	b.addUser("ann", "pw", memMessage{data: []byte("a\n")}, memMessage{data: []byte("bb\n")})
	return b, startServerBackend(t, b, daemon.ModePlain, nil)
}

// TestLazySTATOnly: a session that asks only STAT never has the messages
// read, and its QUIT commits nothing.
func TestLazySTATOnly(t *testing.T) {
	b, ts := newLazy(t, nil)
	c := ts.login(t, "ann", "pw")
	c.cmd("STAT", "+OK 2 7")
	c.cmd("NOOP", "+OK")
	c.cmd("QUIT", "+OK bye (0 messages deleted)")
	if r := <-b.commits; len(r.deleted)+len(r.retrieved) != 0 {
		t.Fatalf("commit %+v", r)
	}
	if n := b.loads.Load(); n != 0 {
		t.Fatalf("Load called %d times", n)
	}
}

// TestLazyLoadOnce: each command that needs messages has them read first,
// once per session.
func TestLazyLoadOnce(t *testing.T) {
	for _, first := range []string{"LIST", "UIDL", "RETR 1", "TOP 1 0", "DELE 1"} {
		t.Run(first, func(t *testing.T) {
			b, ts := newLazy(t, nil)
			c := ts.login(t, "ann", "pw")
			c.send(first)
			if l := c.line(); !strings.HasPrefix(l, "+OK") {
				t.Fatalf("%s: %q", first, l)
			}
			if first != "DELE 1" {
				c.multi()
			}
			c.send("LIST 2")
			c.expect("+OK 2 4")
			c.send("UIDL 2")
			c.expect("+OK 2 uid-ann-2")
			if n := b.loads.Load(); n != 1 {
				t.Fatalf("Load called %d times", n)
			}
		})
	}
}

// TestLazyLoadFails: a mailbox that cannot be read as announced ends the
// session with SYS/TEMP and no UPDATE.
func TestLazyLoadFails(t *testing.T) {
	b, ts := newLazy(t, errors.New("record changed"))
	c := ts.login(t, "ann", "pw")
	c.cmd("STAT", "+OK 2 7")
	c.send("UIDL")
	if l := c.line(); !strings.HasPrefix(l, "-ERR [SYS/TEMP] ") {
		t.Fatalf("UIDL: %q", l)
	}
	c.expectClosed()
	if user := <-b.closes; user != "ann" {
		t.Fatalf("closed %q", user)
	}
	select {
	case r := <-b.commits:
		t.Fatalf("commit after a failed load: %+v", r)
	default:
	}
}
