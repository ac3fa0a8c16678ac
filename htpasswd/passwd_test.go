package htpasswd

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// runPasswd runs RunPasswd with stdin and returns the status and outputs.
func runPasswd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := RunPasswd(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func authOK(t *testing.T, path, user, pass string) User {
	t.Helper()
	f, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := f.Authenticate(context.Background(), user, pass)
	if err != nil {
		t.Fatalf("Authenticate(%q, %q) after passwd: %v", user, pass, err)
	}
	return u
}

func TestRunPasswdCreate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "passwd")
	code, out, errOut := runPasswd(t, "s3cret pass\n", "-f", p, "alice@example.org")
	if code != 0 {
		t.Fatalf("status %d, stderr %q", code, errOut)
	}
	if !strings.Contains(out, "added user alice@example.org") {
		t.Errorf("stdout %q", out)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("new file mode %v, want 0640", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(p)
	if !strings.HasPrefix(string(data), "alice@example.org:$2y$10$") || !strings.HasSuffix(string(data), "\n") || strings.Count(string(data), "\n") != 1 {
		t.Errorf("file = %q, want one bcrypt cost 10 line", data)
	}
	authOK(t, p, "alice@example.org", "s3cret pass")
	// No temporary files left behind.
	ents, _ := os.ReadDir(filepath.Dir(p))
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want 1", len(ents))
	}
}

// TestRunPasswdEdit checks that changing and deleting a user keeps every
// other byte of the file, its mode and its owner.
func TestRunPasswdEdit(t *testing.T) {
	orig := "# users\r\n" +
		"alice:" + hSHA + "\r\n" +
		"\r\n" +
		"bob:{PLAIN}old:1000:1000:Bob:/home/bob:/bin/false:extra\r\n" +
		"  # bob:" + hSHA + "\r\n" +
		"carol:" + hApr1 + "\r\n" +
		"bob:" + hSHA + "\r\n" + // ignored duplicate
		"dave:" + hSHA // no final newline
	tests := []struct {
		name  string
		user  string
		args  []string
		stdin string
		want  func(t *testing.T, got string)
	}{
		{"change dovecot line", "bob", []string{"bob"}, "newpw\r\n", func(t *testing.T, got string) {
			pre := "# users\r\nalice:" + hSHA + "\r\n\r\nbob:$2y$10$"
			post := ":1000:1000:Bob:/home/bob:/bin/false:extra\r\n  # bob:" + hSHA + "\r\ncarol:" + hApr1 + "\r\nbob:" + hSHA + "\r\ndave:" + hSHA
			if !strings.HasPrefix(got, pre) || !strings.HasSuffix(got, post) || len(got) != len(pre)+53+len(post) {
				t.Errorf("file = %q", got)
			}
		}},
		{"change last line", "dave", []string{"-scheme", "sha512-crypt", "dave"}, "newpw", func(t *testing.T, got string) {
			i := strings.Index(orig, "dave:")
			if got[:i] != orig[:i] || !strings.HasPrefix(got[i:], "dave:$6$") || strings.HasSuffix(got, "\n") {
				t.Errorf("file = %q", got)
			}
		}},
		{"add", "erin", []string{"erin", "-scheme", "bcrypt"}, "newpw\n", func(t *testing.T, got string) {
			if !strings.HasPrefix(got, orig+"\r\nerin:$2y$10$") || !strings.HasSuffix(got, "\r\n") {
				t.Errorf("file = %q", got)
			}
		}},
		{"delete every line of bob", "bob", []string{"-d", "bob"}, "", func(t *testing.T, got string) {
			want := "# users\r\nalice:" + hSHA + "\r\n\r\n  # bob:" + hSHA + "\r\ncarol:" + hApr1 + "\r\ndave:" + hSHA
			if got != want {
				t.Errorf("file = %q\nwant   %q", got, want)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), orig)
			if err := os.Chmod(p, 0o604); err != nil {
				t.Fatal(err)
			}
			owned := os.Geteuid() == 0
			if owned {
				if err := os.Chown(p, 1234, 5678); err != nil {
					t.Fatal(err)
				}
			}
			code, _, errOut := runPasswd(t, tt.stdin, append([]string{"-f", p}, tt.args...)...)
			if code != 0 {
				t.Fatalf("status %d: %s", code, errOut)
			}
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			tt.want(t, string(data))
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o604 {
				t.Errorf("mode %v, want 0604", fi.Mode().Perm())
			}
			if st := fi.Sys().(*syscall.Stat_t); owned && (st.Uid != 1234 || st.Gid != 5678) {
				t.Errorf("owner %d:%d, want 1234:5678", st.Uid, st.Gid)
			}
			if tt.stdin != "" {
				u := authOK(t, p, tt.user, "newpw")
				if tt.name == "change dovecot line" && u.Home != "/home/bob" {
					t.Errorf("home lost: %+v", u)
				}
			}
		})
	}
}

func TestRunPasswdSymlink(t *testing.T) {
	dir := t.TempDir()
	real := writeFile(t, dir, "alice:"+hSHA+"\n")
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runPasswd(t, "x\n", "-f", link, "bob"); code != 0 {
		t.Fatalf("status %d: %s", code, errOut)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("symlink replaced: %v %v", fi, err)
	}
	authOK(t, real, "bob", "x")
	authOK(t, real, "alice", pw)
}

func TestRunPasswdErrors(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "alice:"+hSHA+"\n")
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name    string
		stdin   string
		args    []string
		code    int
		errText string
	}{
		{"no user", "x\n", []string{"-f", p}, 2, "usage:"},
		{"two users", "x\n", []string{"-f", p, "a", "b"}, 2, "usage:"},
		{"bad flag", "x\n", []string{"-x", "a"}, 2, "flag provided but not defined"},
		{"colon", "x\n", []string{"-f", p, "a:b"}, 2, "contains ':'"},
		{"control", "x\n", []string{"-f", p, "a\tb"}, 2, "control characters"},
		{"comment", "x\n", []string{"-f", p, "#a"}, 2, "comment"},
		{"space", "x\n", []string{"-f", p, " a"}, 2, "white space"},
		{"empty name", "x\n", []string{"-f", p, ""}, 2, "empty user name"},
		{"scheme", "x\n", []string{"-f", p, "-scheme", "md5", "a"}, 2, "unknown scheme"},
		{"empty stdin", "", []string{"-f", p, "a"}, 1, "no password on stdin"},
		{"empty password", "\n", []string{"-f", p, "a"}, 1, "empty password"},
		{"nul", "a\x00b\n", []string{"-f", p, "a"}, 1, "NUL"},
		{"too long for bcrypt", strings.Repeat("x", 73) + "\n", []string{"-f", p, "a"}, 1, "72 bytes"},
		{"delete unknown", "", []string{"-f", p, "-d", "zed"}, 1, "not found"},
		{"delete in missing file", "", []string{"-f", missing, "-d", "a"}, 1, "no such file"},
		{"missing directory", "x\n", []string{"-f", filepath.Join(dir, "no/such/passwd"), "a"}, 1, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runPasswd(t, tt.stdin, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.errText) {
				t.Errorf("status %d stderr %q, want %d and %q", code, errOut, tt.code, tt.errText)
			}
		})
	}
	if data, _ := os.ReadFile(p); string(data) != "alice:"+hSHA+"\n" {
		t.Errorf("failed runs changed the file: %q", data)
	}
	if code, _, _ := runPasswd(t, "", "-h"); code != 0 {
		t.Errorf("-h status %d", code)
	}
}

// TestRunPasswdNotATerminal: a regular file as stdin is read as one line,
// not as a terminal.
func TestRunPasswdStdinFile(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	if err := os.WriteFile(in, []byte("frompipe\nsecond line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stdin, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	p := filepath.Join(dir, "passwd")
	var out, errb bytes.Buffer
	if code := RunPasswd([]string{"-f", p, "u"}, stdin, &out, &errb); code != 0 {
		t.Fatalf("status %d: %s", code, errb.String())
	}
	if errb.Len() != 0 {
		t.Errorf("prompted on stderr: %q", errb.String())
	}
	authOK(t, p, "u", "frompipe")
}
