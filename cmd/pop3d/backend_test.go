package main

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pop3d/pop3d/daemon"
	"github.com/pop3d/pop3d/htpasswd"
	"github.com/pop3d/pop3d/maildir"
)

// shaHash is htpasswd -s's form: cheap, so tests stay fast.
func shaHash(pass string) string {
	sum := sha1.Sum([]byte(pass))
	return "{SHA}" + base64.StdEncoding.EncodeToString(sum[:])
}

// makeMaildir creates a Maildir at dir with the given messages in new/.
func makeMaildir(t *testing.T, dir string, msgs ...string) {
	t.Helper()
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range msgs {
		name := fmt.Sprintf("%d.P1Q%d.test", 1700000000+i, i)
		if err := os.WriteFile(filepath.Join(dir, "new", name), []byte(m), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

type backendFixture struct {
	b        *backend
	mailRoot string
	homeA    string // home with a Maildir/ subdirectory
	homeB    string // home that is itself the Maildir
}

func newBackendFixture(t *testing.T, opts maildir.Options) backendFixture {
	t.Helper()
	dir := t.TempDir()
	fx := backendFixture{
		mailRoot: filepath.Join(dir, "mail"),
		homeA:    filepath.Join(dir, "homes", "a"),
		homeB:    filepath.Join(dir, "homes", "b"),
	}
	makeMaildir(t, filepath.Join(fx.mailRoot, "example.org", "alice"), "Subject: 1\n\nhi\n", "Subject: 2\n\nho\n")
	makeMaildir(t, filepath.Join(fx.mailRoot, "bob"), "Subject: b\n\nb\n")
	makeMaildir(t, filepath.Join(fx.homeA, "Maildir"), "1\n", "2\n", "3\n")
	makeMaildir(t, fx.homeB, "x\n")
	if err := os.WriteFile(filepath.Join(dir, "afile"), []byte("not a maildir"), 0o600); err != nil {
		t.Fatal(err)
	}
	lines := []string{
		"alice@example.org:" + shaHash("secret"),
		"bob:" + shaHash("pw with spaces"),
		"carol@example.org:" + shaHash("c"), // no Maildir yet
		"homea:" + shaHash("a") + ":1000:1000::" + fx.homeA + "::",
		"homeb:" + shaHash("b") + ":1000:1000::" + fx.homeB + "::",
		"relhome:" + shaHash("r") + ":1000:1000::relative/dir::",
		"filehome:" + shaHash("f") + ":1000:1000::" + filepath.Join(dir, "afile") + "::",
		"dot@..:" + shaHash("d"),
	}
	pwPath := filepath.Join(dir, "passwd")
	if err := os.WriteFile(pwPath, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	pw, err := htpasswd.Open(pwPath, logger)
	if err != nil {
		t.Fatal(err)
	}
	fx.b = newBackend(backendSettings{passwd: pw, template: fx.mailRoot + "/%d/%n", opts: opts}, logger)
	return fx
}

var loopbackInfo = daemon.ConnInfo{
	RemoteAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000},
	LocalAddr:  &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 110},
}

func TestBackendLogin(t *testing.T) {
	fx := newBackendFixture(t, maildir.Options{Create: true, MarkRead: true})
	tests := []struct {
		name, user, pass string
		code             string // "" = success
		messages         int
	}{
		{"template with domain", "alice@example.org", "secret", "", 2},
		{"template without domain", "bob", "pw with spaces", "", 1},
		{"created on first login", "carol@example.org", "c", "", 0},
		{"home with Maildir subdir", "homea", "a", "", 3},
		{"home is the Maildir", "homeb", "b", "", 1},
		{"wrong password", "alice@example.org", "Secret", daemon.CodeAuth, 0},
		{"unknown user", "mallory", "secret", daemon.CodeAuth, 0},
		{"empty user", "", "secret", daemon.CodeAuth, 0},
		{"control character", "bob\x01", "pw with spaces", daemon.CodeAuth, 0},
		{"too long", strings.Repeat("a", 256), "x", daemon.CodeAuth, 0},
		{"invalid UTF-8", "b\xffob", "x", daemon.CodeAuth, 0},
		{"escaping name, right password", "dot@..", "d", daemon.CodeSysPerm, 0},
		{"escaping name, wrong password", "dot@..", "x", daemon.CodeAuth, 0},
		{"relative home (line refused)", "relhome", "r", daemon.CodeAuth, 0},
		{"home is a file", "filehome", "f", daemon.CodeSysPerm, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mb, err := fx.b.Login(context.Background(), tt.user, tt.pass, loopbackInfo)
			if tt.code != "" {
				if err == nil {
					mb.Close()
					t.Fatalf("login succeeded, want [%s]", tt.code)
				}
				if got := daemon.CodeOf(err); got != tt.code {
					t.Fatalf("code = %q (%v), want %q", got, err, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			defer mb.Close()
			if mb.Len() != tt.messages {
				t.Errorf("Len = %d, want %d", mb.Len(), tt.messages)
			}
			if _, ok := mb.(daemon.SizeCorrector); !ok {
				t.Error("mailbox is not a daemon.SizeCorrector")
			}
		})
	}
}

func TestBackendInUse(t *testing.T) {
	fx := newBackendFixture(t, maildir.Options{Create: true})
	first, err := fx.b.Login(context.Background(), "bob", "pw with spaces", loopbackInfo)
	if err != nil {
		t.Fatal(err)
	}
	_, err = fx.b.Login(context.Background(), "bob", "pw with spaces", loopbackInfo)
	if daemon.CodeOf(err) != daemon.CodeInUse {
		t.Errorf("second login: %v, want [IN-USE]", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := fx.b.Login(context.Background(), "bob", "pw with spaces", loopbackInfo)
	if err != nil {
		t.Fatalf("login after Close: %v", err)
	}
	again.Close()
}

func TestBackendNoCreate(t *testing.T) {
	fx := newBackendFixture(t, maildir.Options{Create: false})
	_, err := fx.b.Login(context.Background(), "carol@example.org", "c", loopbackInfo)
	if daemon.CodeOf(err) != daemon.CodeSysPerm {
		t.Errorf("missing Maildir without create: %v, want [SYS/PERM]", err)
	}
	var de *daemon.Error
	if errors.As(err, &de) && strings.Contains(de.Text, "carol") {
		t.Errorf("client text reveals details: %q", de.Text)
	}
}

func TestBackendCommitDeletes(t *testing.T) {
	fx := newBackendFixture(t, maildir.Options{Create: true, MarkRead: true})
	mb, err := fx.b.Login(context.Background(), "homea", "a", loopbackInfo)
	if err != nil {
		t.Fatal(err)
	}
	if err := mb.Commit(context.Background(), []int{0, 2}, []int{1}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	mb, err = fx.b.Login(context.Background(), "homea", "a", loopbackInfo)
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close()
	if mb.Len() != 1 {
		t.Errorf("after deleting 2 of 3: Len = %d", mb.Len())
	}
}

func TestOpenError(t *testing.T) {
	tests := []struct {
		err  error
		code string
	}{
		{fmt.Errorf("x: %w", maildir.ErrLocked), daemon.CodeInUse},
		{fmt.Errorf("x: %w", maildir.ErrNotFound), daemon.CodeSysPerm},
		{fmt.Errorf("x: %w", maildir.ErrNotMaildir), daemon.CodeSysPerm},
		{&fs.PathError{Op: "open", Path: "/m", Err: fs.ErrPermission}, daemon.CodeSysPerm},
		{errors.New("disk on fire"), daemon.CodeSysTemp},
	}
	for _, tt := range tests {
		got := openError(tt.err)
		if daemon.CodeOf(got) != tt.code {
			t.Errorf("openError(%v) code %q, want %q", tt.err, daemon.CodeOf(got), tt.code)
		}
		if !errors.Is(got, tt.err) {
			t.Errorf("openError(%v) lost the cause", tt.err)
		}
	}
}

// fakeStore is a store whose Commit fails as told.
type fakeStore struct {
	commitErr  error
	corrected  []int64
	tmpRemoved int
}

func (f *fakeStore) Len() int       { return 1 }
func (f *fakeStore) Size(int) int64 { return 1 }
func (f *fakeStore) UID(int) string { return "u" }
func (f *fakeStore) Open(int) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("x")), nil
}
func (f *fakeStore) Commit(context.Context, []int, []int) error { return f.commitErr }
func (f *fakeStore) Close() error                               { return nil }
func (f *fakeStore) CorrectSize(i int, n int64)                 { f.corrected = append(f.corrected, n) }
func (f *fakeStore) TmpRemoved() int                            { return f.tmpRemoved }
func (f *fakeStore) Total() int64                               { return 1 }
func (f *fakeStore) Load() error                                { return nil }

// TestMailboxLoginAttrs: tmp_removed on the login line only when files
// were removed.
func TestMailboxLoginAttrs(t *testing.T) {
	if got := (mailbox{store: &fakeStore{}}).LoginAttrs(); len(got) != 0 {
		t.Errorf("nothing removed: LoginAttrs = %v, want none", got)
	}
	got := (mailbox{store: &fakeStore{tmpRemoved: 3}}).LoginAttrs()
	if len(got) != 1 || got[0].Key != "tmp_removed" || got[0].Value.Int64() != 3 {
		t.Errorf("3 removed: LoginAttrs = %v, want [tmp_removed=3]", got)
	}
}

func TestMailboxCommitErrors(t *testing.T) {
	tests := []struct {
		err  error
		code string
		text string
	}{
		{nil, "", ""},
		{&maildir.CommitError{NotRemoved: 3, Err: fs.ErrPermission}, daemon.CodeSysTemp, "3 messages could not be removed"},
		{&maildir.CommitError{NotRemoved: 1, Err: fs.ErrPermission}, daemon.CodeSysTemp, "1 message could not be removed"},
		{&maildir.CommitError{NotRemoved: 2, Err: fs.ErrPermission, Permanent: true}, daemon.CodeSysPerm, "2 messages could not be removed"},
		{&maildir.CommitError{NotRemoved: 1, Err: fmt.Errorf("maildir /x: %w", maildir.ErrGone)}, daemon.CodeSysTemp,
			"mailbox moved during the session: 1 message not removed"},
		{errors.New("lock lost"), daemon.CodeSysTemp, "mailbox could not be updated"},
	}
	for _, tt := range tests {
		fs := &fakeStore{commitErr: tt.err}
		m := mailbox{store: fs}
		err := m.Commit(context.Background(), []int{0}, nil)
		if tt.err == nil {
			if err != nil {
				t.Errorf("Commit = %v, want nil", err)
			}
			continue
		}
		var de *daemon.Error
		if !errors.As(err, &de) || de.Code != tt.code || de.Text != tt.text || !errors.Is(err, tt.err) {
			t.Errorf("Commit(%v) = %#v, want [%s] %q wrapping the cause", tt.err, err, tt.code, tt.text)
		}
	}
	fs := &fakeStore{}
	var sc daemon.SizeCorrector = mailbox{store: fs}
	sc.CorrectSize(0, 42)
	if len(fs.corrected) != 1 || fs.corrected[0] != 42 {
		t.Errorf("CorrectSize not forwarded: %v", fs.corrected)
	}
}

func TestValidUser(t *testing.T) {
	for name, want := range map[string]bool{
		"demo": true, "a@b.c": true, "ünïcode": true, "with space": true,
		"": false, "a\x00": false, "a\nb": false, "a\x7f": false, "a\u0085": false,
		strings.Repeat("x", 255): true, strings.Repeat("x", 256): false, "\xff": false,
	} {
		if got := validUser(name); got != want {
			t.Errorf("validUser(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestMailboxPath(t *testing.T) {
	dir := t.TempDir()
	withSub := filepath.Join(dir, "with")
	if err := os.MkdirAll(filepath.Join(withSub, "Maildir"), 0o700); err != nil {
		t.Fatal(err)
	}
	fileSub := filepath.Join(dir, "filesub")
	if err := os.MkdirAll(fileSub, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fileSub, "Maildir"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		tmpl string
		u    htpasswd.User
		want string
		err  error // nil: success; errAny: some error
	}{
		{"template", "/m/%d/%n", htpasswd.User{Name: "a@b.c"}, "/m/b.c/a", nil},
		{"template no domain", "/m/%d/%n", htpasswd.User{Name: "a"}, "/m/a", nil},
		{"escaping user", "/m/%u", htpasswd.User{Name: ".."}, "", maildir.ErrBadUser},
		{"home with Maildir dir", "/m/%u", htpasswd.User{Name: "a", Home: withSub}, filepath.Join(withSub, "Maildir"), nil},
		{"home whose Maildir is a file", "/m/%u", htpasswd.User{Name: "a", Home: fileSub + "/"}, fileSub, nil},
		{"missing home", "/m/%u", htpasswd.User{Name: "a", Home: dir + "/none"}, dir + "/none", nil},
		{"relative home", "/m/%u", htpasswd.User{Name: "a", Home: "rel"}, "", errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mailboxPath(tt.tmpl, tt.u)
			switch {
			case tt.err == nil && err != nil:
				t.Fatalf("err = %v", err)
			case tt.err == errAny && err == nil, tt.err != nil && tt.err != errAny && !errors.Is(err, tt.err):
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if got != tt.want {
				t.Errorf("path = %q, want %q", got, tt.want)
			}
		})
	}
}

var errAny = errors.New("any error")
