package main

import (
	"fmt"
	"github.com/pop3d/pop3d/internal/pop3test"
	"github.com/pop3d/pop3d/internal/testlog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binDir holds the pop3d binary built for this test run, once, on demand;
// TestMain removes it.
var (
	binDir    string
	buildOnce = sync.OnceValues(func() (string, error) {
		dir, err := os.MkdirTemp("", "pop3d-bin-")
		if err != nil {
			return "", err
		}
		binDir = dir
		bin := filepath.Join(dir, "pop3d")
		gobin := filepath.Join(goRoot(), "bin", "go")
		cmd := exec.Command(gobin, "build", "-o", bin, "-ldflags", "-X main.version=test", ".")
		cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build: %v\n%s", err, out)
		}
		return bin, nil
	})
)

func goRoot() string {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return "/usr/local/go"
	}
	return strings.TrimSpace(string(out))
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func pop3dBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// syncBuffer collects output from many goroutines while the test reads it.
type syncBuffer struct{ testlog.Buffer }

// waitFor polls the log until re matches, and returns the submatches.
func (b *syncBuffer) waitFor(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(b.String()); m != nil {
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("log never matched %s:\n%s", re, b.String())
	return nil
}

// notifySocket is a NOTIFY_SOCKET made by the test, as systemd would.
type notifySocket struct {
	path string
	conn *net.UnixConn
}

func newNotifySocket(t *testing.T, dir string) *notifySocket {
	t.Helper()
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &notifySocket{path: path, conn: conn}
}

// expect reads datagrams until one contains state.
func (n *notifySocket) expect(t *testing.T, state string) {
	t.Helper()
	buf := make([]byte, 4096)
	n.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		k, err := n.conn.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %s on NOTIFY_SOCKET: %v", state, err)
		}
		for _, line := range strings.Split(string(buf[:k]), "\n") {
			if line == state {
				return
			}
		}
	}
}

// setupDemo makes a password file (through `pop3d passwd`, as an admin
// would) and a Maildir with two messages under dir.
func setupDemo(t *testing.T, bin, dir string) (pwFile, mailTmpl string) {
	t.Helper()
	pwFile = filepath.Join(dir, "passwd")
	cmd := exec.Command(bin, "passwd", "-f", pwFile, "demo")
	cmd.Stdin = strings.NewReader("demo\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pop3d passwd: %v\n%s", err, out)
	}
	makeMaildir(t, filepath.Join(dir, "mail", "demo"), "Subject: one\n\nfirst\n", "Subject: two\n\n.dot\nno final newline")
	return pwFile, filepath.Join(dir, "mail", "%n")
}

var startedRE = regexp.MustCompile(`msg="pop3d started".* listeners="?listen=(127\.0\.0\.1:\d+)`)

func TestBinaryLifecycle(t *testing.T) {
	bin := pop3dBinary(t)
	dir := t.TempDir()
	pwFile, tmpl := setupDemo(t, bin, dir)
	conf := filepath.Join(dir, "pop3d.conf")
	goodConf := fmt.Sprintf("passwd_file = %s\nmaildir = %s\nlisten = 127.0.0.1:0\nauth_failure_delay = 10ms\n", pwFile, tmpl)
	if err := os.WriteFile(conf, []byte(goodConf), 0o644); err != nil {
		t.Fatal(err)
	}
	notify := newNotifySocket(t, dir)

	var logs syncBuffer
	cmd := exec.Command(bin, "-config", conf)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify.path)
	cmd.Env = append(cmd.Env, "LISTEN_FDS=") // not socket-activated, whatever the caller's environment
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

	notify.expect(t, "READY=1")
	addr := logs.waitFor(t, startedRE)[1]
	if os.Geteuid() == 0 && !strings.Contains(logs.String(), "running as root") {
		t.Errorf("root without user: no warning in the log:\n%s", logs.String())
	}

	c := pop3test.Dial(t, addr)
	if line := c.Cmd("USER demo"); !strings.HasPrefix(line, "+OK") {
		t.Fatalf("USER: %q", line)
	}
	if line := c.Cmd("PASS wrong"); !strings.HasPrefix(line, "-ERR [AUTH]") {
		t.Fatalf("wrong PASS: %q", line)
	}
	c.OK("USER demo")
	c.OK("PASS demo")
	// 2 messages: 14+2 + 1+2... computed: "Subject: one\n\nfirst\n" = 20 bytes, 3 LF -> 23;
	// "Subject: two\n\n.dot\nno final newline" = 35 bytes, 3 LF + final CRLF -> 40.
	if line := c.OK("STAT"); line != "2 63" {
		t.Errorf("STAT = %q, want +OK 2 63", line)
	}
	// The strict client insists that "." starting a line came stuffed.
	body := c.Lines("RETR 2")
	want := []string{"Subject: two", "", ".dot", "no final newline"}
	if strings.Join(body, "|") != strings.Join(want, "|") {
		t.Errorf("RETR 2 = %q, want %q", body, want)
	}
	c.OK("QUIT")
	logs.waitFor(t, regexp.MustCompile(`msg="login failed".*user=demo`))
	logs.waitFor(t, regexp.MustCompile(`msg=login .*user=demo`))

	// A broken config on SIGHUP is logged and the old settings stay.
	if err := os.WriteFile(conf, []byte(goodConf+"bogus = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	notify.expect(t, "RELOADING=1")
	notify.expect(t, "READY=1")
	logs.waitFor(t, regexp.MustCompile(`reload: config invalid.*unknown key`))
	c = pop3test.Dial(t, addr)
	c.OK("USER demo")
	c.OK("PASS demo")
	c.OK("QUIT")

	// A good config on SIGHUP is applied.
	if err := os.WriteFile(conf, []byte(goodConf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	notify.expect(t, "READY=1")
	logs.waitFor(t, regexp.MustCompile(`msg=reloaded`))

	// SIGTERM: STOPPING=1, exit 0 within 5 s, even with a session open.
	idle := pop3test.Dial(t, addr)
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	notify.expect(t, "STOPPING=1")
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %s to exit", d)
		}
	case <-time.After(8 * time.Second):
		t.Fatalf("still running 8 s after SIGTERM:\n%s", logs.String())
	}
	if line, err := idle.ReadLineErr(); err == nil && !strings.HasPrefix(line, "-ERR") {
		t.Errorf("idle session told %q at shutdown", line)
	}
}

func TestBinaryStartupErrors(t *testing.T) {
	bin := pop3dBinary(t)
	dir := t.TempDir()
	pwFile, tmpl := setupDemo(t, bin, dir)
	busy := listenLoopback(t)
	cert, key := writeCert(t, dir)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing password file", []string{"-passwd-file", dir + "/nope", "-listen", "127.0.0.1:0"}, "passwd_file:"},
		{"busy port", []string{"-listen", busy.Addr().String()}, "listen:"},
		{"no listeners", []string{"-listen", ""}, "no sockets to listen on"},
		{"bad certificate", []string{"-listen", "127.0.0.1:0", "-tls-cert", key, "-tls-key", cert}, "tls:"},
		{"pop3s without certificate", []string{"-listen", "", "-listen-tls", "127.0.0.1:0"}, "listen_tls is set but"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-config", os.DevNull, "-passwd-file", pwFile, "-maildir", tmpl}, tt.args...)
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), "LISTEN_FDS=")
			out, err := cmd.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitFail {
				t.Fatalf("err = %v, want exit status 1\n%s", err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("output lacks %q:\n%s", tt.want, out)
			}
		})
	}
}

func TestBinaryExitStatuses(t *testing.T) {
	bin := pop3dBinary(t)
	dir := t.TempDir()
	pwFile, tmpl := setupDemo(t, bin, dir)
	tests := []struct {
		name   string
		args   []string
		status int
		out    string
	}{
		{"version", []string{"-version"}, 0, "pop3d test\n"},
		{"check good", []string{"-check", "-config", os.DevNull, "-passwd-file", pwFile, "-maildir", tmpl}, 0, "pop3d: configuration OK\n"},
		{"check bad", []string{"-check", "-config", os.DevNull, "-passwd-file", pwFile, "-maildir", "relative/%n"}, 1, ""},
		{"usage", []string{"-no-such-flag"}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := exec.Command(bin, tt.args...).Output()
			status := 0
			if ee, ok := err.(*exec.ExitError); ok {
				status = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if status != tt.status {
				t.Errorf("status %d, want %d", status, tt.status)
			}
			if tt.out != "" && string(out) != tt.out {
				t.Errorf("stdout %q, want %q", out, tt.out)
			}
		})
	}
}

// TestBinaryDropsPrivileges starts pop3d as root with user = nobody and
// checks every thread's uid in /proc after it serves its first client.
func TestBinaryDropsPrivileges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	bin := pop3dBinary(t)
	dir := t.TempDir()
	pwFile, tmpl := setupDemo(t, bin, dir)
	var logs syncBuffer
	cmd := exec.Command(bin, "-config", os.DevNull, "-passwd-file", pwFile, "-maildir", tmpl,
		"-listen", "127.0.0.1:0", "-user", "nobody")
	cmd.Env = append(os.Environ(), "LISTEN_FDS=")
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	addr := logs.waitFor(t, startedRE)[1]
	c := pop3test.Dial(t, addr)
	c.Capa()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", cmd.Process.Pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no tasks: %v", err)
	}
	uidRE := regexp.MustCompile(`(?m)^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$`)
	gidRE := regexp.MustCompile(`(?m)^Gid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$`)
	for _, task := range tasks {
		status, err := os.ReadFile(task)
		if err != nil {
			continue // the thread exited
		}
		u := uidRE.FindStringSubmatch(string(status))
		g := gidRE.FindStringSubmatch(string(status))
		if u == nil || g == nil {
			t.Fatalf("%s: no Uid/Gid lines", task)
		}
		for i := 1; i <= 4; i++ {
			if u[i] != nobody.Uid || g[i] != nobody.Gid {
				t.Errorf("%s: Uid %v Gid %v, want all %s/%s", task, u[1:], g[1:], nobody.Uid, nobody.Gid)
				break
			}
		}
	}
	if !strings.Contains(logs.String(), "dropped privileges") {
		t.Errorf("no log line about dropping privileges:\n%s", logs.String())
	}
}
