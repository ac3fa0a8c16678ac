package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// netLab is a private network of hosts, each a network namespace with one
// veth link to a bridge that lives in a namespace of its own. Nothing of it
// touches the machine's own network namespace: its addresses are reachable
// only from inside. Everything is removed at the end of the test; every
// process started in a host is ended first.
type netLab struct {
	t      *testing.T
	prefix string // namespace name prefix, unique per test run
	sw     string // the switch namespace holding the bridge
	hosts  []string
}

// newNetLab needs root and ip(8); under CI both are required.
func newNetLab(t *testing.T) *netLab {
	t.Helper()
	requireTool(t, "ip")
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("network namespace tests need root")
		}
		t.Skip("network namespace tests need root")
	}
	l := &netLab{t: t, prefix: fmt.Sprintf("p3-%d-%d-", os.Getpid(), time.Now().UnixNano()%100000)}
	l.sw = l.prefix + "sw"
	l.ip("netns", "add", l.sw)
	t.Cleanup(func() { l.remove() })
	l.ip("-n", l.sw, "link", "add", "br0", "type", "bridge")
	l.ip("-n", l.sw, "link", "set", "br0", "up")
	return l
}

// ip runs ip(8) and fails the test on error.
func (l *netLab) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// host adds a host named name (a few letters) with address addr (in the
// lab's /24) and returns its namespace.
func (l *netLab) host(name, addr string) string {
	l.t.Helper()
	ns := l.prefix + name
	l.ip("netns", "add", ns)
	l.hosts = append(l.hosts, ns)
	port := "v" + name
	l.ip("-n", l.sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
	l.ip("-n", l.sw, "link", "set", port, "master", "br0", "up")
	l.ip("-n", ns, "addr", "add", addr+"/24", "dev", "eth0")
	l.ip("-n", ns, "link", "set", "eth0", "up")
	l.ip("-n", ns, "link", "set", "lo", "up")
	return ns
}

// cut disconnects host name from the network (a partition); mend joins it
// again.
func (l *netLab) cut(name string)  { l.ip("-n", l.sw, "link", "set", "v"+name, "down") }
func (l *netLab) mend(name string) { l.ip("-n", l.sw, "link", "set", "v"+name, "up") }

// remove ends every process still in a host and deletes the namespaces.
func (l *netLab) remove() {
	for _, ns := range append(l.hosts, l.sw) {
		out, _ := exec.Command("ip", "netns", "pids", ns).Output()
		for _, f := range strings.Fields(string(out)) {
			// The test itself, should a thread of it be left there.
			if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			l.t.Errorf("ip netns del %s: %v %s", ns, err, out)
		}
	}
}

// dial connects to addr from inside namespace ns. The socket is made on an
// OS thread moved into ns, which is thrown away afterwards; the socket
// stays in ns.
func dialIn(ns, addr string, timeout time.Duration) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer unix.Close(orig)
		fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("setns %s: %w", ns, err)}
			return
		}
		d := net.Dialer{Timeout: timeout}
		c, err := d.Dial("tcp", addr)
		// Back to the test's namespace; a thread that cannot go back
		// stays locked, and the runtime ends it with this goroutine.
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// proc is a program running in a lab host.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
}

// startIn runs name with args in namespace ns. It is stopped with SIGTERM
// (SIGKILL after 10 s) at the end of the test, if still running.
func startIn(t *testing.T, ns, label, name string, args ...string) *proc {
	t.Helper()
	return startArgv(t, label, append([]string{"ip", "netns", "exec", ns, name}, args...))
}

// startArgv runs argv as startIn does (argv[0] must exec the program in
// place, as ip netns exec and nsenter do, so that signals reach it).
func startArgv(t *testing.T, label string, argv []string) *proc {
	t.Helper()
	p := &proc{name: label, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = cleanEnv()
	p.cmd.Stdout = p.stderr
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", label, err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("%s output:\n%s", label, p.stderr.String())
		}
	})
	return p
}

// stop sends sig and waits for the end (SIGKILL after 10 s).
func (p *proc) stop(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// logSessionIDs matches the session ids of pop3d's log lines.
var logSessionIDs = regexp.MustCompile(`session=[0-9a-f]{16}`)

// waitLog waits until the output holds want, where every session id reads
// session=ID.
func (p *proc) waitLog(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	p.waitLogCount(t, want, 1, timeout)
}

// logCount is how many times p has logged want so far.
func (p *proc) logCount(want string) int {
	// Session ids vary: want names each as session=ID.
	return strings.Count(logSessionIDs.ReplaceAllString(p.stderr.String(), "session=ID"), want)
}

// waitLogCount waits until p has logged want at least n times: a line that
// may already have been logged before the event a test waits for (a backend
// seen down while the cluster was starting) is waited for by its count.
func (p *proc) waitLogCount(t *testing.T, want string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for p.logCount(want) < n {
		select {
		case <-p.done:
			t.Fatalf("%s exited before logging %q:\n%s", p.name, want, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not log %q within %v:\n%s", p.name, want, timeout, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitListen waits until addr accepts connections from namespace ns.
func waitListen(t *testing.T, ns, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := dialIn(ns, addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening from %s within %v: %v", addr, ns, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runIn runs a command in ns and returns its stdout.
func runIn(t *testing.T, ns string, timeout time.Duration, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
	cmd.Env = cleanEnv()
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s in %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), ns, err, o.String(), e.String())
	}
	return o.Bytes()
}
