// Package e2e tests the real pop3d binary with real POP3 clients (the mail
// readers Thunderbird, Claws Mail and mutt, the fetchers mpop, fetchmail and
// getmail, Python poplib, curl, Perl Net::POP3) on Maildirs written the way
// an MTA writes them.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/pop3d/pop3d/internal/testlog"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binPath is the pop3d binary built once by TestMain.
var binPath string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "pop3d-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Tests run it as other users too (`pop3d uidl` as the mail owner).
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	binPath = filepath.Join(dir, "pop3d")
	// Built normally (not -race): the tests measure the shipped program.
	cmd := exec.Command("go", "build", "-o", binPath, "../cmd/pop3d")
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ../cmd/pop3d: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// aptPackages maps the external tools the tests run to their Debian package.
var aptPackages = map[string]string{
	"curl":                    "curl",
	"python3":                 "python3",
	"perl":                    "perl",
	"fetchmail":               "fetchmail",
	"getmail":                 "getmail6",
	"htpasswd":                "apache2-utils",
	"systemd-socket-activate": "systemd",
	"fail2ban-regex":          "fail2ban",
	"fail2ban-client":         "fail2ban",
	"maildrop":                "maildrop",
	"mkpasswd":                "whois",
	"doveadm":                 "dovecot-core",
	"procmail":                "procmail",
	"promtool":                "prometheus",
	"setpriv":                 "util-linux",
	"thunderbird":             "thunderbird",
	"certutil":                "libnss3-tools",
	"mpop":                    "mpop",
	"mutt":                    "mutt",
	"script":                  "bsdutils",
	"claws-mail":              "claws-mail",
	"xvfb-run":                "xvfb",
}

// requireTool skips the test when tool is missing, or fails it under CI=true:
// CI must never pass by skipping.
func requireTool(t testing.TB, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err == nil {
		return p
	}
	pkg := aptPackages[tool]
	if pkg == "" {
		pkg = tool
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found; install it: apt-get install -y %s", tool, pkg)
	}
	t.Skipf("%s not found (apt-get install -y %s)", tool, pkg)
	return ""
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// shortTempDir is a temp dir with a short path, for unix sockets (108 bytes).
func shortTempDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "p3")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// syncBuffer collects output from many goroutines while the test reads it.
type syncBuffer = testlog.Buffer

// notifier is a NOTIFY_SOCKET the test listens on, as systemd does.
type notifier struct {
	path string
	conn *net.UnixConn
	mu   sync.Mutex
	msgs []string
	cond chan struct{} // closed and replaced on every message
}

func newNotifier(t testing.TB) *notifier {
	t.Helper()
	path := filepath.Join(shortTempDir(t), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	// Reachable after pop3d drops privileges, as /run/systemd/notify is.
	if err := os.Chmod(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	n := &notifier{path: path, conn: c, cond: make(chan struct{})}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, _, err := c.ReadFromUnix(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			for _, line := range strings.Split(string(buf[:k]), "\n") {
				if line != "" {
					n.msgs = append(n.msgs, line)
				}
			}
			close(n.cond)
			n.cond = make(chan struct{})
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close() })
	return n
}

// messages returns every notification line received so far.
func (n *notifier) messages() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.msgs...)
}

// waitFor waits until the notification line want arrives at index >= from,
// and returns the index after it.
func (n *notifier) waitFor(t testing.TB, want string, from int, timeout time.Duration) int {
	t.Helper()
	deadline := time.After(timeout)
	for {
		n.mu.Lock()
		for i := from; i < len(n.msgs); i++ {
			if n.msgs[i] == want {
				n.mu.Unlock()
				return i + 1
			}
		}
		ch := n.cond
		n.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no %q on NOTIFY_SOCKET within %v; got %q", want, timeout, n.messages())
		}
	}
}

// server is one running pop3d process.
type server struct {
	t      testing.TB
	cmd    *exec.Cmd
	addr   string // plain+STLS listener, "" if none
	tlsAdr string // implicit TLS listener, "" if none
	stderr *syncBuffer
	notify *notifier
	done   chan struct{}
	err    error // Wait's result, valid after done
}

// startServer runs pop3d with -config /dev/null, the site's password file and
// Maildir template, a short auth failure delay, a plain listener on a free
// loopback port, and extra flags last (so they win). It waits until the
// process sent READY=1 and stops it with SIGTERM when the test ends.
func startServer(t testing.TB, s *site, extra ...string) *server {
	t.Helper()
	args := []string{
		"-config", "/dev/null",
		"-passwd-file", s.passwd,
		"-maildir", s.maildirTemplate(),
		"-auth-failure-delay", "100ms",
	}
	return startServerArgs(t, append(args, extra...), withPlain())
}

// startTLSServer is startServer with the site's certificate, STLS on the
// plain listener and an implicit-TLS listener on another free port.
func startTLSServer(t testing.TB, s *site, extra ...string) *server {
	t.Helper()
	args := []string{
		"-config", "/dev/null",
		"-passwd-file", s.passwd,
		"-maildir", s.maildirTemplate(),
		"-auth-failure-delay", "100ms",
		"-tls-cert", s.certFile,
		"-tls-key", s.keyFile,
	}
	return startServerArgs(t, append(args, extra...), withPlain(), withTLS())
}

type startOpt func(*startConf)

type startConf struct {
	plain, tls bool
	envListen  bool // the plain listener from POP3D_LISTEN, not a flag
	env        []string
	noWait     bool
	addr       string // the plain listener's address; "" for a free port
	wrapper    func(notifyPath string) []string
	stderrR    *os.File // with stderrW: a pipe the test made for stderr
	stderrW    *os.File
}

func withPlain() startOpt { return func(c *startConf) { c.plain = true } }

func withTLS() startOpt { return func(c *startConf) { c.tls = true } }

// withEnvListen gives pop3d its plain listener in POP3D_LISTEN and no
// listener flags at all (a run from the environment only).
func withEnvListen() startOpt { return func(c *startConf) { c.envListen = true } }

func withNoWait() startOpt { return func(c *startConf) { c.noWait = true } }

// withAddr puts the plain listener on addr instead of a free port (the
// address another server just left).
func withAddr(addr string) startOpt { return func(c *startConf) { c.plain, c.addr = true, addr } }

// withStderrFile gives pop3d the write end w of a pipe as stderr (so that
// its device:inode is known) and copies r into the captured log.
func withStderrFile(r, w *os.File) startOpt {
	return func(c *startConf) { c.stderrR, c.stderrW = r, w }
}

// withWrapper runs pop3d under another program (systemd-socket-activate),
// whose argv wrap returns given the NOTIFY_SOCKET path.
func withWrapper(wrap func(notifyPath string) []string) startOpt {
	return func(c *startConf) { c.wrapper = wrap }
}

func withEnv(kv ...string) startOpt { return func(c *startConf) { c.env = append(c.env, kv...) } }

// startServerArgs runs pop3d with exactly args plus -listen/-listen-tls on
// free ports as the options ask.
func startServerArgs(t testing.TB, args []string, opts ...startOpt) *server {
	t.Helper()
	var c startConf
	for _, o := range opts {
		o(&c)
	}
	// A port picked by freePort can be taken by someone else before pop3d
	// binds it: start again on fresh ports then.
	for attempt := 1; ; attempt++ {
		srv := startOnce(t, args, c)
		if c.noWait || srv.waitReady(attempt < 3) {
			return srv
		}
		t.Logf("pop3d could not bind its ports, retrying:\n%s", srv.stderr.String())
	}
}

func startOnce(t testing.TB, args []string, c startConf) *server {
	t.Helper()
	srv := &server{t: t, stderr: &syncBuffer{}, notify: newNotifier(t), done: make(chan struct{})}
	env := c.env
	if c.envListen {
		srv.addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		env = append(env[:len(env):len(env)], "POP3D_LISTEN="+srv.addr)
	} else if c.plain {
		srv.addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		if c.addr != "" {
			srv.addr = c.addr
		}
		args = append([]string{"-listen", srv.addr}, args...)
	} else if c.wrapper == nil {
		args = append([]string{"-listen", ""}, args...)
	}
	if c.tls {
		srv.tlsAdr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		args = append([]string{"-listen-tls", srv.tlsAdr}, args...)
	}
	argv := append([]string{binPath}, args...)
	if c.wrapper != nil {
		argv = append(c.wrapper(srv.notify.path), argv...)
	}
	srv.cmd = exec.Command(argv[0], argv[1:]...)
	srv.cmd.Env = append(cleanEnv(), "NOTIFY_SOCKET="+srv.notify.path)
	srv.cmd.Env = append(srv.cmd.Env, env...)
	srv.cmd.Stderr = srv.stderr
	srv.cmd.Stdout = srv.stderr
	if c.stderrW != nil {
		srv.cmd.Stderr, srv.cmd.Stdout = c.stderrW, c.stderrW
	}
	if err := srv.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if c.stderrW != nil {
		c.stderrW.Close()
		go func() {
			io.Copy(srv.stderr, c.stderrR)
			c.stderrR.Close()
		}()
	}
	go func() {
		srv.err = srv.cmd.Wait()
		close(srv.done)
	}()
	t.Cleanup(func() {
		srv.stop()
		if t.Failed() {
			t.Logf("pop3d %s\nstderr:\n%s", strings.Join(args, " "), srv.stderr.String())
		}
	})
	return srv
}

// cleanEnv is the test's environment without anything that would change how
// pop3d logs or listens.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "JOURNAL_STREAM", "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES":
			continue
		}
		if strings.HasPrefix(kv, "POP3D_") {
			continue // settings of the test's own environment (pop3d reads POP3D_<KEY>)
		}
		env = append(env, kv)
	}
	return env
}

// waitReady waits for READY=1 and for the listeners to accept, failing the
// test with the log if pop3d exits first. It returns false instead when
// pop3d exited because an address was in use and mayRetry is set.
func (s *server) waitReady(mayRetry bool) bool {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, m := range s.notify.messages() {
			if m == "READY=1" {
				s.waitListening(deadline)
				return true
			}
		}
		select {
		case <-s.done:
			if mayRetry && strings.Contains(s.stderr.String(), "address already in use") {
				return false
			}
			s.t.Fatalf("pop3d exited before READY=1: %v\n%s", s.err, s.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("pop3d sent no READY=1 within 15s (got %q)\n%s", s.notify.messages(), s.stderr.String())
		}
	}
}

// waitListening checks /proc/net/tcp for the listeners, so that waiting does
// not open a POP3 session (which would show in the log).
func (s *server) waitListening(deadline time.Time) {
	s.t.Helper()
	for _, a := range []string{s.addr, s.tlsAdr} {
		if a == "" {
			continue
		}
		for !isListening(a) {
			if time.Now().After(deadline) {
				s.t.Fatalf("READY=1 sent but nothing listens on %s\n%s", a, s.stderr.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// isListening reports whether a TCP socket listens on the IPv4 addr.
func isListening(addr string) bool {
	_, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return false
	}
	want := fmt.Sprintf(":%04X", port)
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && strings.HasSuffix(f[1], want) && f[3] == "0A" {
			return true
		}
	}
	return false
}

// signal sends sig to pop3d.
func (s *server) signal(sig syscall.Signal) {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits up to timeout for pop3d to exit and returns its exit code.
func (s *server) wait(timeout time.Duration) (int, error) {
	select {
	case <-s.done:
	case <-time.After(timeout):
		return -1, fmt.Errorf("pop3d still running after %v", timeout)
	}
	var ee *exec.ExitError
	if errors.As(s.err, &ee) {
		return ee.ExitCode(), nil
	}
	if s.err != nil {
		return -1, s.err
	}
	return 0, nil
}

// stop ends pop3d with SIGTERM, then SIGKILL if it lingers.
func (s *server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.t.Errorf("pop3d ignored SIGTERM for 10s; killing it")
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// logLines returns pop3d's stderr so far, parsed.
func (s *server) logLines() []logLine {
	var out []logLine
	sc := bufio.NewScanner(strings.NewReader(s.stderr.String()))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		if l, err := parseLogLine(sc.Text()); err == nil {
			out = append(out, l)
		}
	}
	return out
}

// waitLog waits until a log line satisfies match and returns it.
func (s *server) waitLog(match func(logLine) bool, timeout time.Duration) (logLine, bool) {
	deadline := time.Now().Add(timeout)
	for {
		for _, l := range s.logLines() {
			if match(l) {
				return l, true
			}
		}
		if time.Now().After(deadline) {
			return nil, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// msgIs matches log lines by their msg attribute.
func msgIs(msg string) func(logLine) bool {
	return func(l logLine) bool { return l["msg"] == msg }
}

// runCmd runs a client program with a deadline and returns its stdout; on
// failure it fails the test with stdout and stderr.
func runCmd(t testing.TB, timeout time.Duration, env []string, name string, args ...string) []byte {
	t.Helper()
	out, stderr, err := runCmdErr(timeout, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, out, stderr)
	}
	return out
}

// runCmdErr is runCmd that returns the error instead.
func runCmdErr(timeout time.Duration, env []string, name string, args ...string) (stdout, stderr []byte, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(cleanEnv(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	// WaitDelay only bounds how long a child that left its output pipes to a
	// grandchild may hold us; under a loaded machine and the race detector,
	// draining a 2 MB stdout after exit can take well over a second.
	cmd.WaitDelay = 15 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v: %w", timeout, err)
	}
	return o.Bytes(), e.Bytes(), err
}
