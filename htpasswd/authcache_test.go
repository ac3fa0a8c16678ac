package htpasswd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// fakeClock is a settable clock for the cache's ttl.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func mustBcrypt(t *testing.T, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// TestAuthCache runs steps of logins against one file and checks, after
// each, the outcome and whether the real hash was computed.
func TestAuthCache(t *testing.T) {
	other := mustBcrypt(t, "s3cond")
	resalted := mustBcrypt(t, pw)
	type step struct {
		do      string // "auth USER PASS", "file CONTENT", "advance DUR", "ttl DUR"
		ok      bool   // auth: expected success
		hashed  bool   // auth: the real hash was computed
		entries string // entries after the step; "": not checked
	}
	tests := []struct {
		name  string
		ttl   time.Duration
		max   int
		file  string
		steps []step
	}{
		{name: "hit skips the hash", ttl: time.Minute, file: "alice:" + hBcrypt5 + "\n", steps: []step{
			{do: "auth alice " + pw, ok: true, hashed: true, entries: "1"},
			{do: "auth alice " + pw, ok: true, hashed: false, entries: "1"},
			{do: "auth alice " + pw, ok: true, hashed: false, entries: "1"},
		}},
		{name: "wrong password after a hit is checked and fails", ttl: time.Minute, file: "alice:" + hBcrypt5 + "\n", steps: []step{
			{do: "auth alice " + pw, ok: true, hashed: true, entries: "1"},
			{do: "auth alice wrong", ok: false, hashed: true, entries: "1"},
			{do: "auth alice " + pw + "x", ok: false, hashed: true, entries: "1"},
			{do: "auth alice " + pw, ok: true, hashed: false, entries: "1"},
		}},
		{name: "a failed login never writes", ttl: time.Minute, file: "alice:" + hBcrypt5 + "\n", steps: []step{
			{do: "auth alice wrong", ok: false, hashed: true, entries: "0"},
			{do: "auth alice wrong", ok: false, hashed: true, entries: "0"},
			{do: "auth bob " + pw, ok: false, hashed: true, entries: "0"},
		}},
		{name: "ttl expires", ttl: time.Minute, file: "alice:" + hBcrypt5 + "\n", steps: []step{
			{do: "auth alice " + pw, ok: true, hashed: true, entries: "1"},
			{do: "advance 59s"},
			{do: "auth alice " + pw, ok: true, hashed: false},
			{do: "advance 1s"},
			{do: "auth alice " + pw, ok: true, hashed: true, entries: "1"},
		}},
		{name: "zero ttl is off", ttl: 0, file: "alice:" + hBcrypt5 + "\n", steps: []step{
			{do: "auth alice " + pw, ok: true, hashed: true, entries: "0"},
			{do: "auth alice " + pw, ok: true, hashed: true, entries: "0"},
		}},
		{name: "a changed password line invalidates at once", ttl: time.Hour, file: "alice:" + hBcrypt5 + "\n", steps: []step{
			{do: "auth alice " + pw, ok: true, hashed: true},
			{do: "file alice:" + other + "\n"},
			{do: "auth alice " + pw, ok: false, hashed: true},
			{do: "auth alice s3cond", ok: true, hashed: true},
			{do: "auth alice s3cond", ok: true, hashed: false},
		}},
		{name: "same password rehashed is verified again", ttl: time.Hour, file: "alice:" + hBcrypt5 + "\n", steps: []step{
			{do: "auth alice " + pw, ok: true, hashed: true},
			{do: "file alice:" + resalted + "\n"},
			{do: "auth alice " + pw, ok: true, hashed: true},
			{do: "auth alice " + pw, ok: true, hashed: false},
		}},
		{name: "a removed user is out at once", ttl: time.Hour, file: "alice:" + hBcrypt5 + "\nbob:" + other + "\n", steps: []step{
			{do: "auth alice " + pw, ok: true, hashed: true},
			{do: "file bob:" + other + "\n"},
			{do: "auth alice " + pw, ok: false, hashed: true},
		}},
		{name: "cheap hashes are not cached", ttl: time.Hour, file: "alice:" + hSSHA256 + "\n", steps: []step{
			{do: "auth alice " + pw, ok: true, hashed: false, entries: "0"},
		}},
		{name: "lru bound", ttl: time.Hour, max: 2, file: "a:" + hBcrypt5 + "\nb:" + hBcrypt5 + "\nc:" + hBcrypt5 + "\n", steps: []step{
			{do: "auth a " + pw, ok: true, hashed: true, entries: "1"},
			{do: "auth b " + pw, ok: true, hashed: true, entries: "2"},
			{do: "auth a " + pw, ok: true, hashed: false, entries: "2"}, // a is now the most recent
			{do: "auth c " + pw, ok: true, hashed: true, entries: "2"},  // evicts b
			{do: "auth a " + pw, ok: true, hashed: false, entries: "2"},
			{do: "auth b " + pw, ok: true, hashed: true, entries: "2"},
		}},
		{name: "a shorter ttl applies to entries there", ttl: time.Hour, file: "alice:" + hBcrypt5 + "\n", steps: []step{
			{do: "auth alice " + pw, ok: true, hashed: true},
			{do: "ttl 1m"},
			{do: "advance 2m"},
			{do: "auth alice " + pw, ok: true, hashed: true},
			{do: "ttl 0", entries: "0"},
			{do: "auth alice " + pw, ok: true, hashed: true, entries: "0"},
		}},
		{name: "user name and password are not confused", ttl: time.Hour, file: "ab:" + hBcrypt5 + "\n", steps: []step{
			{do: "auth ab " + pw, ok: true, hashed: true},
			{do: "auth ab " + pw[1:], ok: false, hashed: true},
			{do: "auth ab " + pw + pw, ok: false, hashed: true},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			path := writeFile(t, t.TempDir(), tc.file)
			log, _ := newLogger()
			f, err := OpenWith(path, Options{Logger: log, AuthCacheTTL: tc.ttl, AuthCacheMax: tc.max, Now: clock.now})
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tc.steps {
				verb, arg, _ := strings.Cut(s.do, " ")
				switch verb {
				case "auth":
					user, pass, _ := strings.Cut(arg, " ")
					before := f.hashed.Load()
					_, err := f.Authenticate(context.Background(), user, pass)
					if ok := err == nil; ok != s.ok {
						t.Fatalf("step %d %q: ok %v, want %v (%v)", i, s.do, ok, s.ok, err)
					}
					if err != nil && !errors.Is(err, ErrBadCredentials) {
						t.Fatalf("step %d: %v", i, err)
					}
					if hashed := f.hashed.Load() != before; hashed != s.hashed {
						t.Fatalf("step %d %q: real hash computed %v, want %v", i, s.do, hashed, s.hashed)
					}
				case "file":
					replaceFile(t, path, arg)
					if err := f.Reload(); err != nil {
						t.Fatal(err)
					}
				case "advance":
					d, _ := time.ParseDuration(arg)
					clock.add(d)
				case "ttl":
					d, _ := time.ParseDuration(arg)
					f.SetAuthCacheTTL(d)
				default:
					t.Fatalf("bad step %q", s.do)
				}
				if s.entries != "" {
					if n, _ := f.AuthCacheStats(); fmt.Sprint(n) != s.entries {
						t.Fatalf("step %d %q: %d entries, want %s", i, s.do, n, s.entries)
					}
				}
			}
		})
	}
}

// TestAuthCacheConcurrent hammers one cache from many goroutines, with
// right and wrong passwords, under -race: wrong ones never succeed.
func TestAuthCacheConcurrent(t *testing.T) {
	var b strings.Builder
	for i := range 8 {
		fmt.Fprintf(&b, "u%d:%s\n", i, hBcrypt5)
	}
	path := writeFile(t, t.TempDir(), b.String())
	log, _ := newLogger()
	f, err := OpenWith(path, Options{Logger: log, AuthCacheTTL: time.Hour, AuthCacheMax: 4})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Go(func() {
			for i := range 6 {
				user := fmt.Sprintf("u%d", (g+i)%8)
				pass := pw
				if (g+i)%3 == 0 {
					pass = "nope"
				}
				_, err := f.Authenticate(context.Background(), user, pass)
				if (err == nil) != (pass == pw) {
					errs <- fmt.Errorf("%s/%s: %v", user, pass, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n, _ := f.AuthCacheStats(); n > 4 {
		t.Errorf("%d entries, bound 4", n)
	}
}
