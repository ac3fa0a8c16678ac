package htpasswd

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

// inTime fails the test if f does not return within 5 s: the defects these
// tests guard against are hangs, and a regression must fail, not wedge.
func inTime(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s blocked for 5s", what)
	}
}

// TestFIFO checks that a FIFO as password file is refused at Open and in
// Check, and that one put in place of a loaded file neither blocks logins
// nor Reload: the last good copy serves, and the real file is picked up
// again once it is back.
func TestFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	inTime(t, "Open(fifo)", func() {
		_, err := Open(fifo, nil)
		if err == nil || !strings.Contains(err.Error(), fifo) || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Open(fifo) = %v, want an error naming the file", err)
		}
	})
	inTime(t, "Check(fifo)", func() {
		_, err := Check(fifo)
		if err == nil || !strings.Contains(err.Error(), fifo) || !strings.Contains(err.Error(), "FIFO") {
			t.Errorf("Check(fifo) = %v, want an error naming the file", err)
		}
	})

	logger, logs := newLogger()
	p := writeFile(t, dir, "alice:"+hSHA+"\n")
	f, err := Open(p, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	inTime(t, "logins with a FIFO in place", func() {
		for range 3 {
			if _, err := f.Authenticate(ctx, "alice", pw); err != nil {
				t.Errorf("alice with a FIFO in place: %v", err)
			}
		}
	})
	inTime(t, "Reload with a FIFO in place", func() {
		if err := f.Reload(); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Reload with a FIFO = %v", err)
		}
	})
	if !strings.Contains(logs.String(), "keeping the last good copy") || !strings.Contains(logs.String(), "FIFO") {
		t.Errorf("no error logged for the FIFO:\n%s", logs)
	}
	os.Remove(p)
	writeFile(t, dir, "bob:"+hSHA+"\n")
	inTime(t, "login after the file is back", func() {
		if _, err := f.Authenticate(ctx, "bob", pw); err != nil {
			t.Errorf("bob after the file is back: %v", err)
		}
	})
}

// TestLoginDoesNotWaitForLoad checks that a login arriving while a load
// holds the loading lock (a slow read of a changed file) is answered from
// the current copy instead of waiting.
func TestLoginDoesNotWaitForLoad(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "alice:"+hSHA+"\n")
	f, err := Open(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	replaceFile(t, p, "alice:"+hSHA+"\nbob:"+hSHA+"\n")
	f.loading.Lock() // a load in progress
	inTime(t, "login during a load", func() {
		if _, err := f.Authenticate(context.Background(), "alice", pw); err != nil {
			t.Errorf("alice during a load: %v", err)
		}
	})
	f.loading.Unlock()
	if _, err := f.Authenticate(context.Background(), "bob", pw); err != nil {
		t.Errorf("bob after the load: %v", err)
	}
}

// TestCheckWarnings checks the warnings for an empty file and for a user
// name no client can log in with: reported with file and line, as
// warnings (not problems), at load and by Check.
func TestCheckWarnings(t *testing.T) {
	long := strings.Repeat("u", MaxUserLen+1)
	for _, tc := range []struct {
		name, content, want string
	}{
		{"empty", "", "passwd: no users: nobody can log in"},
		{"comments only", "# nobody yet\n\n", "passwd: no users: nobody can log in"},
		{"long name", "alice:" + hSHA + "\n" + long + ":" + hSHA + "\n",
			fmt.Sprintf("passwd:2: user name of %d bytes is longer than pop3d accepts at login (%d)", MaxUserLen+1, MaxUserLen)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), tc.content)
			problems, err := Check(p)
			if err != nil {
				t.Fatal(err)
			}
			if len(problems) != 1 || !problems[0].Warning || !strings.Contains(problems[0].String(), tc.want) {
				t.Errorf("Check = %v, want one warning %q", problems, tc.want)
			}
			logger, logs := newLogger()
			if _, err := Open(p, logger); err != nil {
				t.Fatal(err)
			}
			if msg := strings.TrimPrefix(tc.want, "passwd:2: "); !strings.Contains(logs.String(), "level=WARN") ||
				!strings.Contains(logs.String(), strings.TrimPrefix(msg, "passwd: ")) {
				t.Errorf("load did not warn %q:\n%s", tc.want, logs)
			}
		})
	}
	// A name of exactly MaxUserLen bytes is fine.
	p := writeFile(t, t.TempDir(), strings.Repeat("u", MaxUserLen)+":"+hSHA+"\n")
	if problems, err := Check(p); err != nil || len(problems) != 0 {
		t.Errorf("Check(255-byte name) = %v, %v", problems, err)
	}
}
