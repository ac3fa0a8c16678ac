package daemon_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/pop3d/pop3d/daemon"
	"github.com/pop3d/pop3d/internal/wireform"
)

// memMessage is one message of the in-memory store, with knobs to make it
// misbehave.
type memMessage struct {
	data    []byte
	uid     string
	size    int64 // announced size; 0 means the true wire size
	openErr error // Open fails with it
	readErr error // reading fails with it after the data
	gone    bool  // Open reports the file vanished
	panics  bool  // Open panics
}

// commitRecord is one call of Mailbox.Commit.
type commitRecord struct {
	user               string
	deleted, retrieved []int
}

// memBackend is a Backend that keeps mail in memory. Tests set its knobs
// before the first connection, or under mu.
type memBackend struct {
	mu         sync.Mutex
	pass       map[string]string       // user -> password
	boxes      map[string][]memMessage // user -> messages
	loginErr   map[string]error        // user -> error Login returns
	loginPanic bool
	closePanic bool // Mailbox.Close panics
	inUse      map[string]bool
	commitErr  error
	commitWait chan struct{} // when set, Commit blocks until it is closed
	inCommit   chan struct{} // when set, Commit signals it started

	commits     chan commitRecord // every Commit, in order
	closes      chan string       // every Close: the user name
	corrections chan [2]int64     // SizeCorrector calls: index, octets
	logins      chan daemon.ConnInfo
}

func newMemBackend() *memBackend {
	return &memBackend{
		pass:        map[string]string{},
		boxes:       map[string][]memMessage{},
		loginErr:    map[string]error{},
		inUse:       map[string]bool{},
		commits:     make(chan commitRecord, 100),
		closes:      make(chan string, 2000),
		corrections: make(chan [2]int64, 100),
		logins:      make(chan daemon.ConnInfo, 2000),
	}
}

func (b *memBackend) addUser(user, pass string, msgs ...memMessage) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pass[user] = pass
	for i := range msgs {
		if msgs[i].uid == "" {
			msgs[i].uid = fmt.Sprintf("uid-%s-%d", user, i+1)
		}
		if msgs[i].size == 0 {
			msgs[i].size = int64(len(wire(msgs[i].data)))
		}
	}
	b.boxes[user] = msgs
}

func (b *memBackend) Login(ctx context.Context, user, pass string, info daemon.ConnInfo) (daemon.Mailbox, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case b.logins <- info:
	default:
	}
	if b.loginPanic {
		panic("login exploded")
	}
	if err := b.loginErr[user]; err != nil {
		return nil, err
	}
	p, ok := b.pass[user]
	if !ok || p != pass {
		return nil, daemon.ErrAuth
	}
	if b.inUse[user] {
		return nil, &daemon.Error{Code: daemon.CodeInUse, Text: "mailbox locked by another session"}
	}
	return &memMailbox{b: b, user: user, msgs: b.boxes[user]}, nil
}

type memMailbox struct {
	b    *memBackend
	user string
	msgs []memMessage
}

func (m *memMailbox) Len() int         { return len(m.msgs) }
func (m *memMailbox) Size(i int) int64 { return m.msgs[i].size }
func (m *memMailbox) UID(i int) string { return m.msgs[i].uid }
func (m *memMailbox) CorrectSize(i int, n int64) {
	m.b.corrections <- [2]int64{int64(i), n}
}

func (m *memMailbox) Open(i int) (io.ReadCloser, error) {
	msg := m.msgs[i]
	switch {
	case msg.panics:
		panic("open exploded")
	case msg.gone:
		return nil, fmt.Errorf("open message %d: %w", i, errors.New("no such file or directory"))
	case msg.openErr != nil:
		return nil, msg.openErr
	}
	var r io.Reader = bytes.NewReader(msg.data)
	if msg.readErr != nil {
		r = io.MultiReader(r, errReader{msg.readErr})
	}
	return io.NopCloser(r), nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func (m *memMailbox) Commit(ctx context.Context, deleted, retrieved []int) error {
	m.b.mu.Lock()
	wait, started, err := m.b.commitWait, m.b.inCommit, m.b.commitErr
	m.b.mu.Unlock()
	if started != nil {
		close(started)
	}
	if wait != nil {
		<-wait
	}
	m.b.commits <- commitRecord{user: m.user, deleted: deleted, retrieved: retrieved}
	return err
}

func (m *memMailbox) Close() error {
	m.b.closes <- m.user
	m.b.mu.Lock()
	p := m.b.closePanic
	m.b.mu.Unlock()
	if p {
		panic("close exploded")
	}
	return nil
}

// wire, stuff and topRef are the reference wire form, dot-stuffing and
// TOP output (internal/wireform), under the short names these tests use.
func wire(file []byte) []byte          { return wireform.Reference(file) }
func stuff(w []byte) []byte            { return wireform.Stuff(w) }
func topRef(file []byte, k int) []byte { return wireform.TopReference(file, k) }

// waitFor receives from ch or fails after a generous bound.
func waitFor[T any](t testingT, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// testingT is the part of testing.TB the helpers use.
type testingT interface {
	Helper()
	Fatalf(format string, args ...any)
}
