package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pop3d/pop3d/internal/pop3test"
)

// inTime fails the test if f does not return within 5 s: a FIFO in place
// of a file used to block open(2) forever, and a regression must fail,
// not wedge the test run.
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

// toFIFO replaces the file at path by a FIFO.
func toFIFO(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCheckNonRegularFiles checks that -check names a FIFO or device given
// as config file, password file, certificate or key, and never waits on it.
func TestCheckNonRegularFiles(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir)
	pw := filepath.Join(dir, "passwd")
	if err := os.WriteFile(pw, []byte("demo:"+shaHash("demo")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	toFIFO(t, fifo)
	base := []string{"-passwd-file", pw, "-maildir", dir + "/%n", "-tls-cert", cert, "-tls-key", key}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"config FIFO", append([]string{"-config", fifo}, base...), "config: " + fifo + ": not a regular file (a FIFO)"},
		{"config device", append([]string{"-config", "/dev/zero"}, base...), "config: /dev/zero: not a regular file (a character device)"},
		{"config directory", append([]string{"-config", dir}, base...), "config: " + dir + ": not a regular file (a directory)"},
		{"passwd FIFO", append([]string{"-config", os.DevNull}, append(base, "-passwd-file", fifo)...), "passwd_file: password file: " + fifo + ": not a regular file (a FIFO)"},
		{"key FIFO", append([]string{"-config", os.DevNull}, append(base, "-tls-key", fifo)...), "tls_cert/tls_key: tls key: " + fifo + ": not a regular file (a FIFO)"},
		{"cert FIFO", append([]string{"-config", os.DevNull}, append(base, "-tls-cert", fifo)...), "tls_cert/tls_key: tls certificate: " + fifo + ": not a regular file (a FIFO)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inTime(t, "-check", func() {
				var stdout, stderr bytes.Buffer
				status := run(append([]string{"-check"}, tc.args...), strings.NewReader(""), &stdout, &stderr)
				if status != exitFail || !strings.Contains(stderr.String(), tc.want) {
					t.Errorf("status %d, stderr:\n%s\nwant %q", status, stderr.String(), tc.want)
				}
			})
		})
	}
}

// TestReloadNonRegularFiles checks that a SIGHUP with a FIFO in place of
// the password file, the key or the config file returns, logs the file,
// and keeps serving with what was loaded before.
func TestReloadNonRegularFiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		path func(fx *reloadFixture) string
		want string
	}{
		{"passwd", func(fx *reloadFixture) string { return fx.pw }, "password file unreadable, keeping the last good copy"},
		{"key", func(fx *reloadFixture) string { return fx.key }, "certificate unusable, keeping the old one"},
		{"cert", func(fx *reloadFixture) string { return fx.cert }, "certificate unusable, keeping the old one"},
		{"config", func(fx *reloadFixture) string { return fx.conf }, "config invalid, keeping the old settings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newReloadFixture(t, "")
			p := tc.path(fx)
			toFIFO(t, p)
			inTime(t, "reload", fx.st.reload)
			logs := fx.logs.String()
			if !strings.Contains(logs, tc.want) || !strings.Contains(logs, p+": not a regular file (a FIFO)") {
				t.Errorf("reload log lacks %q naming %s:\n%s", tc.want, p, logs)
			}
			inTime(t, "login", func() {
				if err := fx.login("demo", "demo"); err != nil {
					t.Errorf("login after the reload: %v", err)
				}
			})
			if fx.st.certs == nil {
				t.Error("certificate dropped")
			} else if _, err := fx.st.certs.GetCertificate(nil); err != nil {
				t.Errorf("certificate after the reload: %v", err)
			}
		})
	}
}

// TestBinaryFIFOReload runs the real daemon, puts FIFOs in place of its
// config and password files, and checks that SIGHUP neither wedges the
// signal loop (SIGTERM still stops it) nor the logins.
func TestBinaryFIFOReload(t *testing.T) {
	bin := pop3dBinary(t)
	dir := t.TempDir()
	pwFile, tmpl := setupDemo(t, bin, dir)
	conf := filepath.Join(dir, "pop3d.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "passwd_file = %s\nmaildir = %s\nlisten = 127.0.0.1:0\n", pwFile, tmpl), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	cmd := exec.Command(bin, "-config", conf)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET=", "LISTEN_FDS=")
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	addr := logs.waitFor(t, startedRE)[1]

	toFIFO(t, pwFile)
	c := pop3test.Dial(t, addr)
	c.OK("USER demo")
	c.OK("PASS demo") // the last good copy
	c.OK("QUIT")
	toFIFO(t, conf)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	logs.waitFor(t, regexp.MustCompile(`reload: config invalid.*`+regexp.QuoteMeta(conf)+`: not a regular file`))
	logs.waitFor(t, regexp.MustCompile(`password file unreadable.*`+regexp.QuoteMeta(pwFile)+`: not a regular file`))
	c = pop3test.Dial(t, addr)
	c.OK("USER demo")
	c.OK("PASS demo")
	c.OK("QUIT")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(8 * time.Second):
		t.Fatalf("still running 8 s after SIGTERM:\n%s", logs.String())
	}
}
