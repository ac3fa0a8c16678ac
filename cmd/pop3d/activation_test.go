package main

import (
	"crypto/tls"
	"crypto/x509"
	"github.com/pop3d/pop3d/internal/pop3test"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startActivated runs pop3d as systemd would with socket activation: the
// listeners as fds 3.., LISTEN_FDS, LISTEN_FDNAMES, and LISTEN_PID set to
// pop3d's own pid (a shell sets it to $$ and execs pop3d in place).
func startActivated(t *testing.T, bin string, names string, ls []net.Listener, args ...string) (*exec.Cmd, *syncBuffer, chan error) {
	t.Helper()
	var files []*os.File
	for _, l := range ls {
		f, err := l.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files = append(files, f)
	}
	script := `LISTEN_PID=$$ exec "$@"`
	cmd := exec.Command("/bin/sh", append([]string{"-c", script, "sh", bin}, args...)...)
	cmd.Env = append(os.Environ(), "LISTEN_FDS="+itoa(len(ls)), "LISTEN_FDNAMES="+names, "NOTIFY_SOCKET=")
	cmd.ExtraFiles = files
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		exited <- <-exited
	})
	return cmd, logs, exited
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestBinarySocketActivation(t *testing.T) {
	bin := pop3dBinary(t)
	dir := t.TempDir()
	pwFile, tmpl := setupDemo(t, bin, dir)
	cert, key := writeCert(t, dir)
	busy := listenLoopback(t)
	base := []string{"-config", os.DevNull, "-passwd-file", pwFile, "-maildir", tmpl,
		// Ignored under activation, or binding this busy address would fail.
		"-listen", busy.Addr().String()}

	t.Run("pop3s without certificate", func(t *testing.T) {
		ls := []net.Listener{listenLoopback(t), listenLoopback(t)}
		_, logs, exited := startActivated(t, bin, "pop3:pop3s", ls, base...)
		select {
		case err := <-exited:
			exited <- err
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitFail {
				t.Errorf("exit %v, want status 1", err)
			}
			if !strings.Contains(logs.String(), "pop3s socket") || !strings.Contains(logs.String(), "needs TLS") {
				t.Errorf("no clear message:\n%s", logs.String())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("pop3d did not exit")
		}
	})

	t.Run("pop3 and pop3s", func(t *testing.T) {
		plain, implicit := listenLoopback(t), listenLoopback(t)
		cmd, logs, _ := startActivated(t, bin, "pop3:pop3s", []net.Listener{plain, implicit},
			append(base, "-tls-cert", cert, "-tls-key", key)...)
		logs.waitFor(t, regexp.MustCompile(`msg="pop3d started"`))

		c := pop3test.Dial(t, plain.Addr().String())
		if capa := strings.Join(c.Capa(), "\n"); !strings.Contains(capa, "STLS") {
			t.Errorf("plain socket CAPA lacks STLS:\n%s", capa)
		}

		pem, err := os.ReadFile(cert)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		c = pop3test.DialTLS(t, implicit.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "localhost"})
		c.Quit()
		cmd.Process.Signal(syscall.SIGTERM)
	})

	t.Run("unnamed socket is plain", func(t *testing.T) {
		l := listenLoopback(t)
		_, logs, _ := startActivated(t, bin, "", []net.Listener{l}, base...)
		logs.waitFor(t, regexp.MustCompile(`unknown fd name.*name=LISTEN_FD_3`))
		c := pop3test.Dial(t, l.Addr().String())
		c.OK("USER demo")
		c.OK("PASS demo")
		c.OK("QUIT")
	})
}
