package htpasswd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Hashes from testdata/vectors.txt, all of the password "Tr0ub4dor&3".
const (
	pw        = "Tr0ub4dor&3"
	hBcrypt5  = "$2y$05$73jz4UPGiC9FtshK3jbckugz1oTfYhbRG7YAcEDx96KEdQyi4/6Mq"
	hApr1     = "$apr1$Z7.SKOoW$eM7X.bnjXHtGWlqlA.v2b."
	hSHA      = "{SHA}h0Vy56WuaklGamrFeLmK26eMaqY="
	hSSHA256  = "{SSHA256}8uOfzcxO63cfdjPt9xBZBjA/blJwic4FrNPpTOBttxvXDq7P"
	hSha512   = "$6$OShjwKHf5xa9Q/fS$PU7ttimNZq/6A4II7Q2LOxQZ8C7YjWSugt7YHXGq0QXQ.18tevNMqQHYYScn8UggA0cfi.zeShGKzbKIjVJVN1"
	hDES      = "ObmWNLeQPNxBU"
	hPlainDov = "{PLAIN}Tr0ub4dor&3"
)

// logBuf is a slog text logger writing to a buffer safe for concurrent use.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newLogger() (*slog.Logger, *logBuf) {
	lb := &logBuf{}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

func writeFile(t testing.TB, dir, content string) string {
	t.Helper()
	p := filepath.Join(dir, "passwd")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// replaceFile writes content to a new file and renames it over path, as
// htpasswd and editors do.
func replaceFile(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

var sampleFile = strings.Join([]string{
	"# comment",
	"",
	"   ",
	"  # indented comment",
	"alice:" + hBcrypt5,
	"bob:" + hApr1 + "\r", // CRLF line
	"carol:" + hSHA,
	"dave:" + hSSHA256 + ":1000:1000:Dave:/home/dave::",
	"erin:" + hSha512 + ":::::",
	"frank:" + hDES,                   // refused: DES
	"frank:" + hBcrypt5,               // duplicate of a refused user: still refused
	"alice:" + hSHA,                   // duplicate: first wins
	"nocolon",                         // bad
	":" + hSHA,                        // empty user
	"gina:",                           // empty hash
	"hank:" + hSHA + ":1:1::rel/home", // relative home
	"ivan:" + hPlainDov,               // plain text, accepted with a warning
	"judy:" + hSHA + ":1:1::/var/mail/judy/../judy/",
	"kim\x01:" + hSHA,
	"last:" + hApr1, // no final newline
}, "\n")

func TestAuthenticate(t *testing.T) {
	logger, logs := newLogger()
	f, err := Open(writeFile(t, t.TempDir(), sampleFile), logger)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		user, pass string
		ok         bool
		home       string
	}{
		{"alice", pw, true, ""},
		{"alice", "wrong", false, ""},
		{"alice", "", false, ""},
		{"Alice", pw, false, ""}, // names are case-sensitive, as in Dovecot
		{"bob", pw, true, ""},
		{"carol", pw, true, ""},
		{"dave", pw, true, "/home/dave"},
		{"erin", pw, true, ""},
		{"frank", pw, false, ""},
		{"gina", "", false, ""},
		{"hank", pw, false, ""},
		{"ivan", pw, true, ""},
		{"ivan", pw + " ", false, ""},
		{"judy", pw, true, "/var/mail/judy"},
		{"last", pw, true, ""},
		{"nobody", pw, false, ""},
		{"", pw, false, ""},
		{"# comment", pw, false, ""},
	}
	for _, tt := range tests {
		u, err := f.Authenticate(context.Background(), tt.user, tt.pass)
		if tt.ok {
			if err != nil {
				t.Errorf("Authenticate(%q, %q) = %v, want success", tt.user, tt.pass, err)
				continue
			}
			if u.Name != tt.user || u.Home != tt.home {
				t.Errorf("Authenticate(%q) = %+v, want name %q home %q", tt.user, u, tt.user, tt.home)
			}
		} else if err != ErrBadCredentials {
			t.Errorf("Authenticate(%q, %q) = %+v, %v; want ErrBadCredentials", tt.user, tt.pass, u, err)
		}
	}
	out := logs.String()
	for _, want := range []string{
		`level=WARN msg="password file" file=`,
		`line=10 problem="user \"frank\" cannot log in: unsupported scheme DES crypt`,
		`line=11 problem="duplicate user \"frank\" ignored: line 10 wins"`,
		`line=12 problem="duplicate user \"alice\" ignored: line 5 wins"`,
		`line=13 problem="no ':' between user name and password hash"`,
		`line=14 problem="empty user name"`,
		`line=15 problem="user \"gina\" cannot log in: empty password hash`,
		`line=16 problem="user \"hank\" cannot log in: home \"rel/home\" is not an absolute path"`,
		`line=17 problem="user \"ivan\" has a plain-text password {PLAIN}`,
		`line=19 problem="user name \"kim\\x01\" contains control characters"`,
		`msg="password check failed"`,
		`reason="unknown user"`,
		`reason="wrong password"`,
		`reason="unusable password line"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s\nlog:\n%s", want, out)
		}
	}
	if strings.Contains(out, pw) {
		t.Errorf("log contains a password:\n%s", out)
	}
}

func TestCheck(t *testing.T) {
	p := writeFile(t, t.TempDir(), sampleFile)
	problems, err := Check(p)
	if err != nil {
		t.Fatal(err)
	}
	var lines []int
	for _, pr := range problems {
		if pr.File != p {
			t.Errorf("problem %v names file %q", pr, pr.File)
		}
		if !strings.HasPrefix(pr.String(), fmt.Sprintf("%s:%d: ", p, pr.Line)) {
			t.Errorf("String() = %q", pr.String())
		}
		lines = append(lines, pr.Line)
	}
	want := []int{10, 11, 12, 13, 14, 15, 16, 17, 19}
	if fmt.Sprint(lines) != fmt.Sprint(want) {
		t.Errorf("problem lines %v, want %v\n%v", lines, want, problems)
	}
	if _, err := Check(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Check(missing) err = %v, want ErrNotExist", err)
	}
	clean := writeFile(t, t.TempDir(), "a:"+hSHA+"\n# c\nb:"+hApr1+"\n")
	if problems, err := Check(clean); err != nil || len(problems) != 0 {
		t.Errorf("Check(clean) = %v, %v", problems, err)
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "/etc/pop3d/passwd", Line: 3, Msg: "bad"}, "/etc/pop3d/passwd:3: bad"},
		{Problem{File: "f", Msg: "whole file"}, "f: whole file"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing"), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want ErrNotExist", err)
	}
	if _, err := Open(dir, nil); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Open(dir) = %v, want not a regular file", err)
	}
	// An empty file opens; nobody can log in.
	f, err := Open(writeFile(t, dir, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Authenticate(context.Background(), "x", "y"); err != ErrBadCredentials {
		t.Errorf("Authenticate on empty file = %v", err)
	}
}

// TestReloadOnChange checks that edits in place, replacement by rename and
// explicit Reload are picked up, and that an unreadable file keeps the
// last good copy.
func TestReloadOnChange(t *testing.T) {
	logger, logs := newLogger()
	dir := t.TempDir()
	p := writeFile(t, dir, "alice:"+hSHA+"\n")
	f, err := Open(p, logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	auth := func(user string) error {
		_, err := f.Authenticate(ctx, user, pw)
		return err
	}
	if err := auth("alice"); err != nil {
		t.Fatal(err)
	}

	// Replaced by rename (new inode).
	replaceFile(t, p, "bob:"+hSHA+"\n")
	if err := auth("bob"); err != nil {
		t.Errorf("after rename: bob: %v", err)
	}
	if err := auth("alice"); err != ErrBadCredentials {
		t.Errorf("after rename: alice: %v", err)
	}

	// Edited in place, same size (only mtime/ctime differ).
	if err := os.WriteFile(p, []byte("carl:"+hSHA+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := auth("carl"); err != nil {
		t.Errorf("after in-place edit: carl: %v", err)
	}

	// Removed: the last good copy stays, one error is logged.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := auth("carl"); err != nil {
			t.Errorf("after removal: carl: %v", err)
		}
	}
	if n := strings.Count(logs.String(), "keeping the last good copy"); n != 1 {
		t.Errorf("%d unreadable-file errors logged, want 1:\n%s", n, logs)
	}
	if err := f.Reload(); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Reload of removed file = %v", err)
	}
	// Replaced by a directory: still the last good copy.
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := auth("carl"); err != nil {
		t.Errorf("after dir: carl: %v", err)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}

	// Back again.
	writeFile(t, dir, "dora:"+hSHA+"\n")
	if err := auth("dora"); err != nil {
		t.Errorf("after restore: dora: %v", err)
	}
	if err := auth("carl"); err != ErrBadCredentials {
		t.Errorf("after restore: carl: %v", err)
	}
	if err := f.Reload(); err != nil {
		t.Errorf("Reload: %v", err)
	}
}

// TestAuthenticateContext checks that a caller waiting for a verification
// slot gives up when its context ends, and that cheap schemes do not wait.
func TestAuthenticateContext(t *testing.T) {
	f, err := Open(writeFile(t, t.TempDir(), "a:"+hBcrypt5+"\nb:"+hSHA+"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.sem = make(chan struct{}, 1)
	f.sem <- struct{}{} // every slot busy
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, user := range []string{"a", "unknown"} {
		_, err := f.Authenticate(ctx, user, pw)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Authenticate(%s) with busy slots and cancelled ctx = %v, want context.Canceled", user, err)
		}
	}
	if _, err := f.Authenticate(ctx, "b", pw); err != nil {
		t.Errorf("cheap scheme waited for a slot: %v", err)
	}
	<-f.sem
	if _, err := f.Authenticate(context.Background(), "a", pw); err != nil {
		t.Errorf("after freeing the slot: %v", err)
	}
}

// TestConcurrent runs logins while the file is being replaced (for -race).
func TestConcurrent(t *testing.T) {
	p := writeFile(t, t.TempDir(), "a:"+hSHA+"\nb:"+hApr1+"\n")
	f, err := Open(p, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for range 50 {
				user := []string{"a", "b"}[i%2]
				if _, err := f.Authenticate(context.Background(), user, pw); err != nil {
					t.Errorf("%s: %v", user, err)
					return
				}
			}
		})
	}
	for i := range 20 {
		replaceFile(t, p, fmt.Sprintf("a:%s\nb:%s\n# %d\n", hSHA, hApr1, i))
	}
	wg.Wait()
}

// TestDummy checks that unknown users are checked against a hash of the
// file's most common scheme and cost.
func TestDummy(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"empty", "", fallbackDummy},
		{"only bad lines", "a:" + hDES + "\n", fallbackDummy},
		{"majority", "a:" + hSHA + "\nb:" + hBcrypt5 + "\nc:" + fallbackDummy + "\nd:" + hBcrypt5 + "\n", hBcrypt5},
		{"plain only", "a:" + hPlainDov + "\n", hPlainDov},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := parse([]byte(tt.content), "f", func(Problem) {})
			if tab.dummy != tt.want {
				t.Errorf("dummy = %q, want %q", tab.dummy, tt.want)
			}
		})
	}
}

// TestPasswordLength checks that a password over maxPasswordLen bytes is
// refused even when the file holds it, and one of that length is not.
func TestPasswordLength(t *testing.T) {
	long := strings.Repeat("x", maxPasswordLen+1)
	limit := strings.Repeat("y", maxPasswordLen)
	logger, logs := newLogger()
	f, err := Open(writeFile(t, t.TempDir(), "long:{PLAIN}"+long+"\nlimit:{PLAIN}"+limit+"\n"), logger)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Authenticate(context.Background(), "long", long); err != ErrBadCredentials {
		t.Errorf("over-long password: %v, want ErrBadCredentials", err)
	}
	if !strings.Contains(logs.String(), `reason="password too long"`) {
		t.Errorf("no reason logged:\n%s", logs)
	}
	if _, err := f.Authenticate(context.Background(), "limit", limit); err != nil {
		t.Errorf("password of the maximum length: %v", err)
	}
}
