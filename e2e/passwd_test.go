package e2e

import (
	"errors"
	"github.com/pop3d/pop3d/internal/pop3test"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPasswordSchemes: password entries written by the real tools admins
// use, each accepted with its password and refused with another.
func TestPasswordSchemes(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	type entry struct{ user, pass, tool string }
	var entries []entry
	add := func(user, pass, tool string, hash []byte) {
		h := strings.TrimSpace(string(hash))
		if i := strings.LastIndexByte(h, '\n'); i >= 0 {
			h = h[i+1:]
		}
		if strings.Contains(h, ":") { // htpasswd -n prints user:hash
			h = h[strings.IndexByte(h, ':')+1:]
		}
		f, err := os.OpenFile(s.passwd, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(user + ":" + h + "\n"); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, entry{user, pass, tool})
	}
	run := func(name string, args ...string) []byte {
		return runCmd(t, 30*time.Second, nil, name, args...)
	}
	add("apr1", "apr1-pass", "htpasswd -m", run("htpasswd", "-nbm", "apr1", "apr1-pass"))
	add("bcrypt", "bcrypt-pass", "htpasswd -B", run("htpasswd", "-nbB", "bcrypt", "bcrypt-pass"))
	if optionalTool(t, "mkpasswd") {
		add("sha512", "sha512-pass", "mkpasswd -m sha-512", run("mkpasswd", "-m", "sha-512", "sha512-pass"))
		add("yescrypt", "yescrypt-pass", "mkpasswd -m yescrypt", run("mkpasswd", "-m", "yescrypt", "yescrypt-pass"))
	}
	if optionalTool(t, "doveadm") {
		add("dovecot", "dovecot-pass", "doveadm pw -s SHA512-CRYPT", run("doveadm", "pw", "-s", "SHA512-CRYPT", "-p", "dovecot-pass"))
	}
	// pop3d passwd with the other scheme, and -d.
	cmd := exec.Command(binPath, "passwd", "-f", s.passwd, "-scheme", "sha512-crypt", "carol")
	cmd.Stdin = strings.NewReader("carol-pass\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pop3d passwd -scheme sha512-crypt: %v\n%s", err, out)
	}
	entries = append(entries, entry{"carol", "carol-pass", "pop3d passwd -scheme sha512-crypt"})
	if data, _ := os.ReadFile(s.passwd); !strings.Contains(string(data), "\ncarol:$6$") {
		t.Errorf("pop3d passwd -scheme sha512-crypt did not write a $6$ hash:\n%s", data)
	}
	cmd = exec.Command(binPath, "passwd", "-f", s.passwd, "-d", bob)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pop3d passwd -d: %v\n%s", err, out)
	}

	srv := startServer(t, s, "-auth-failure-delay", "10ms")
	for _, e := range entries {
		p := pop3test.Dial(t, srv.addr)
		p.OK("USER " + e.user)
		if r := p.Cmd("PASS " + e.pass + "x"); !strings.HasPrefix(r, "-ERR [AUTH]") {
			t.Errorf("%s: wrong password answered %q", e.tool, r)
		}
		p.OK("USER " + e.user)
		if r := p.Cmd("PASS " + e.pass); !strings.HasPrefix(r, "+OK") {
			t.Errorf("%s: right password answered %q", e.tool, r)
		} else {
			p.Quit()
		}
	}
	p := pop3test.Dial(t, srv.addr)
	p.OK("USER " + bob)
	if r := p.Cmd("PASS " + bobPass); !strings.HasPrefix(r, "-ERR [AUTH]") {
		t.Errorf("user removed with pop3d passwd -d still logs in: %q", r)
	}
}

// TestCheckAndVersion: -version prints something and exits 0; -check
// accepts a good configuration and refuses a broken one without serving.
func TestCheckAndVersion(t *testing.T) {
	out, stderr, err := runCmdErr(10*time.Second, nil, binPath, "-version")
	if err != nil || !strings.Contains(string(out)+string(stderr), "pop3d") {
		t.Errorf("pop3d -version: %v, %q %q", err, out, stderr)
	}
	s := newSite(t)
	conf := filepath.Join(s.dir, "good.conf")
	writeFile(t, conf, []byte("passwd_file = "+s.passwd+"\nmaildir = "+s.maildirTemplate()+"\nlisten = 127.0.0.1:1\ntls_cert = "+s.certFile+"\ntls_key = "+s.keyFile+"\n"), 0o644)
	if out, stderr, err := runCmdErr(20*time.Second, nil, binPath, "-config", conf, "-check"); err != nil {
		t.Errorf("pop3d -check on a good config: %v\n%s%s", err, out, stderr)
	}
	bad := []struct{ name, conf string }{
		{"unknown key", "passwd_file = " + s.passwd + "\nno_such_key = 1\n"},
		{"bad number", "passwd_file = " + s.passwd + "\nmax_connections = lots\n"},
		{"missing passwd file", "passwd_file = " + filepath.Join(s.dir, "nope") + "\n"},
		{"key without cert", "passwd_file = " + s.passwd + "\ntls_key = " + s.keyFile + "\n"},
		{"bad duration", "passwd_file = " + s.passwd + "\nidle_timeout = soon\n"},
	}
	for _, b := range bad {
		f := filepath.Join(s.dir, "bad.conf")
		writeFile(t, f, []byte(b.conf), 0o644)
		out, stderr, err := runCmdErr(20*time.Second, nil, binPath, "-config", f, "-check")
		var ee *exec.ExitError
		if err == nil {
			t.Errorf("pop3d -check accepted a config with %s:\n%s%s", b.name, out, stderr)
		} else if !errors.As(err, &ee) {
			t.Errorf("pop3d -check, %s: %v", b.name, err)
		} else if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Errorf("pop3d -check, %s: killed by %v", b.name, ws.Signal())
		}
		if len(strings.TrimSpace(string(out)+string(stderr))) == 0 {
			t.Errorf("pop3d -check, %s: failed without saying why", b.name)
		}
	}
}

// optionalTool reports whether tool is installed; a missing tool only
// narrows the test, except under CI=true where it fails it.
func optionalTool(t *testing.T, tool string) bool {
	t.Helper()
	if _, err := exec.LookPath(tool); err == nil {
		return true
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found; install it: apt-get install -y %s", tool, aptPackages[tool])
	}
	t.Logf("%s not found: its hashes are not tested", tool)
	return false
}
