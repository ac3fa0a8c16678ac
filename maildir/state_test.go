package maildir

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// clock is a settable clock for the state file's records.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestParseState(t *testing.T) {
	const now = 2000
	tests := []struct {
		name    string
		in      string
		login   int64
		retr    map[string]int64
		damaged bool
	}{
		{"empty file", "", 0, nil, true},
		{"header only", stateMagic + "\n", 0, nil, false},
		{"records", stateMagic + "\nlogin 1000\nretr 900 a.b\nretr 950 c\n", 1000, map[string]int64{"a.b": 900, "c": 950}, false},
		{"wrong version", "pop3d-state 2\nlogin 1000\n", 0, nil, true},
		{"future login ignored", stateMagic + "\nlogin 99999\n", 0, nil, true},
		{"garbage line skipped", stateMagic + "\nlogin x\nretr 5 u\n\x00\x01\n", 0, map[string]int64{"u": 5}, true},
		{"earliest retrieval wins", stateMagic + "\nretr 7 u\nretr 5 u\n", 0, map[string]int64{"u": 5}, false},
		{"latest login wins", stateMagic + "\nlogin 7\nlogin 9\n", 9, nil, false},
		{"negative time", stateMagic + "\nlogin -5\n", 0, nil, true},
		{"unknown record", stateMagic + "\nfoo 5\n", 0, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, damage := parseState([]byte(tt.in), now)
			if st.login != tt.login {
				t.Errorf("login = %d, want %d", st.login, tt.login)
			}
			if len(st.retr) != len(tt.retr) {
				t.Errorf("retr = %v, want %v", st.retr, tt.retr)
			}
			for k, v := range tt.retr {
				if st.retr[k] != v {
					t.Errorf("retr[%s] = %d, want %d", k, st.retr[k], v)
				}
			}
			if (damage != "") != tt.damaged {
				t.Errorf("damage = %q, want damaged=%v", damage, tt.damaged)
			}
		})
	}
}

func FuzzParseState(f *testing.F) {
	f.Add([]byte(stateMagic + "\nlogin 1000\nretr 900 a.b\n"))
	f.Add([]byte("pop3d-state 1\nretr 1 \n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, _ := parseState(b, 1<<40)
		// What is formatted parses back to the same records.
		again, damage := parseState(st.format(), 1<<40)
		if damage != "" || again.login != st.login || !sameTimes(again.retr, st.retr) {
			t.Fatalf("round trip: %q -> %+v -> %q (%s) -> %+v", b, st, st.format(), damage, again)
		}
	})
}

func TestStateLoginSurvivesSessions(t *testing.T) {
	dir := newMaildir(t)
	c := &clock{t: time.Unix(1_000_000, 0)}
	mb := openMB(t, dir, Options{Now: c.now})
	if _, ok := mb.LastLogin(); ok {
		t.Fatal("fresh Maildir has a last login")
	}
	if err := mb.RecordLogin(c.t); err != nil {
		t.Fatal(err)
	}
	mb.Close()
	c.t = c.t.Add(time.Hour)
	mb = openMB(t, dir, Options{Now: c.now})
	defer mb.Close()
	got, ok := mb.LastLogin()
	if !ok || !got.Equal(time.Unix(1_000_000, 0)) {
		t.Fatalf("LastLogin = %v, %v", got, ok)
	}
	if _, err := os.Stat(filepath.Join(dir, stateTmpName)); !os.IsNotExist(err) {
		t.Fatalf("temporary file left: %v", err)
	}
}

func TestStateRetrievalTimes(t *testing.T) {
	dir := newMaildir(t)
	put(t, dir, "new", "1000.A.host", "Subject: a\n\nA\n")
	put(t, dir, "new", "1001.B.host", "Subject: b\n\nB\n")
	put(t, dir, "new", "1002.C.host", "Subject: c\n\nC\n")
	c := &clock{t: time.Unix(1_000_000, 0)}
	opts := Options{MarkRead: true, TrackRetrieval: true, Now: c.now}

	mb := openMB(t, dir, opts)
	if err := mb.Commit(context.Background(), nil, []int{0, 1}); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(24 * time.Hour)
	mb = openMB(t, dir, opts)
	for i, want := range []bool{true, true, false} {
		at, ok := mb.FirstRetrieved(i)
		if ok != want || (ok && !at.Equal(time.Unix(1_000_000, 0))) {
			t.Errorf("FirstRetrieved(%d) = %v, %v; want recorded=%v at the first session", i, at, ok, want)
		}
	}
	// Retrieved again: the first time stays. Deleted: the record goes.
	if err := mb.Commit(context.Background(), []int{0}, []int{1, 2}); err != nil {
		t.Fatal(err)
	}
	mb = openMB(t, dir, opts)
	defer mb.Close()
	if mb.Len() != 2 {
		t.Fatalf("Len = %d", mb.Len())
	}
	if at, ok := mb.FirstRetrieved(0); !ok || !at.Equal(time.Unix(1_000_000, 0)) {
		t.Errorf("B: %v %v", at, ok)
	}
	if at, ok := mb.FirstRetrieved(1); !ok || !at.Equal(time.Unix(1_000_000+86400, 0)) {
		t.Errorf("C: %v %v", at, ok)
	}
	data, err := os.ReadFile(filepath.Join(dir, stateName))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "1000.A") {
		t.Errorf("record of the deleted message kept:\n%s", data)
	}
}

func TestStateNotTrackedWithoutOption(t *testing.T) {
	dir := newMaildir(t)
	put(t, dir, "new", "1000.A.host", "a\n")
	mb := openMB(t, dir, Options{})
	if err := mb.Commit(context.Background(), nil, []int{0}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, stateName)); !os.IsNotExist(err) {
		t.Fatalf("state file written without TrackRetrieval: %v", err)
	}
}

// A damaged or hostile state file never locks out nor hangs: garbage, a
// FIFO, a symlink, a directory all read as "no record".
func TestStateDamageNeverLocksOut(t *testing.T) {
	tests := []struct {
		name  string
		plant func(t *testing.T, p string)
	}{
		{"garbage", func(t *testing.T, p string) { os.WriteFile(p, []byte("\xff\xfe junk\nlogin 1\n"), 0o600) }},
		{"future time", func(t *testing.T, p string) {
			os.WriteFile(p, []byte(stateMagic+"\nlogin 99999999999\n"), 0o600)
		}},
		{"fifo", func(t *testing.T, p string) {
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"symlink", func(t *testing.T, p string) {
			target := filepath.Join(t.TempDir(), "elsewhere")
			os.WriteFile(target, []byte(stateMagic+"\nlogin 5\n"), 0o600)
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
		}},
		{"directory", func(t *testing.T, p string) { os.Mkdir(p, 0o700) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := newMaildir(t)
			tt.plant(t, filepath.Join(dir, stateName))
			c := &clock{t: time.Unix(1_000_000, 0)}
			mb := openMB(t, dir, Options{Now: c.now})
			defer mb.Close()
			if at, ok := mb.LastLogin(); ok {
				t.Fatalf("LastLogin = %v from a damaged file", at)
			}
			err := mb.RecordLogin(c.t)
			if tt.name == "directory" {
				if err == nil {
					t.Fatal("replacing a directory succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.name == "symlink" {
				// The link itself was replaced, its target left alone.
				if fi, err := os.Lstat(filepath.Join(dir, stateName)); err != nil || !fi.Mode().IsRegular() {
					t.Fatalf("state file after write: %v %v", fi, err)
				}
			}
		})
	}
}

// A planted temporary name (symlink) is not followed: the write replaces it.
func TestStateTmpSymlinkNotFollowed(t *testing.T) {
	dir := newMaildir(t)
	target := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(target, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, stateTmpName)); err != nil {
		t.Fatal(err)
	}
	mb := openMB(t, dir, Options{})
	defer mb.Close()
	if err := mb.RecordLogin(time.Unix(5, 0)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Fatalf("symlink target written: %q", b)
	}
}

// BenchmarkStateRoundTrip: parsing and writing back the state of a
// 100k-message mailbox whose messages were all retrieved (the largest
// file EXPIRE keeps), the cost a login and a QUIT pay for it.
func BenchmarkStateRoundTrip(b *testing.B) {
	st := mailState{retr: make(map[string]int64, 100_000)}
	for i := range 100_000 {
		st.retr[fmt.Sprintf("%d.M%dP%d.host.example.org", 1_700_000_000+i, i, i)] = 1_700_000_000 + int64(i)
	}
	st.login = 1_700_000_000
	data := st.format()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		got, _ := parseState(data, 1<<40)
		_ = got.format()
	}
}
