package htpasswd

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns a pseudo-terminal pair, or skips the test when the
// system has none.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	// O_NONBLOCK makes the master pollable, so that read deadlines work.
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// typeAnswers plays the user at the master side: after each prompt it types
// the next answer. Once finished is closed (the program returned) it reads
// what is left and returns everything the terminal showed, so that a last
// message such as an error is never missed.
func typeAnswers(m *os.File, finished <-chan struct{}, answers ...string) <-chan string {
	done := make(chan string, 1)
	go func() {
		var seen bytes.Buffer
		buf := make([]byte, 256)
		prompts := 0
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			m.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			n, err := m.Read(buf)
			seen.Write(buf[:n])
			if c := strings.Count(seen.String(), "password: "); c > prompts && prompts < len(answers) {
				m.Write([]byte(answers[prompts] + "\n"))
				prompts++
			}
			select {
			case <-finished:
				if n == 0 || err != nil {
					// Drained: the program has returned and nothing more came.
					done <- seen.String()
					return
				}
			default:
			}
		}
		done <- seen.String()
	}()
	return done
}

func TestRunPasswdTerminal(t *testing.T) {
	tests := []struct {
		name    string
		answers []string
		code    int
		show    string
	}{
		{"match", []string{"t3rminal secret", "t3rminal secret"}, 0, "added user tty"},
		{"mismatch", []string{"t3rminal secret", "other secret"}, 1, "passwords do not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, s := openPTY(t)
			before, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
			if err != nil {
				t.Fatal(err)
			}
			if before.Lflag&unix.ECHO == 0 {
				t.Fatal("pty starts without echo")
			}
			finished := make(chan struct{})
			shown := typeAnswers(m, finished, tt.answers...)
			p := filepath.Join(t.TempDir(), "passwd")
			var out bytes.Buffer
			code := RunPasswd([]string{"-f", p, "tty"}, s, &out, s)
			close(finished)
			screen := <-shown
			if code != tt.code {
				t.Fatalf("status %d, want %d; screen %q", code, tt.code, screen)
			}
			if !strings.Contains(screen+out.String(), tt.show) {
				t.Errorf("screen %q, stdout %q: want %q", screen, out.String(), tt.show)
			}
			if strings.Contains(screen, "secret") {
				t.Errorf("password echoed: %q", screen)
			}
			if !strings.Contains(screen, "New password: ") || !strings.Contains(screen, "Retype new password: ") {
				t.Errorf("prompts missing: %q", screen)
			}
			after, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
			if err != nil {
				t.Fatal(err)
			}
			if after.Lflag != before.Lflag || after.Iflag != before.Iflag {
				t.Errorf("terminal not restored: lflag %#x -> %#x", before.Lflag, after.Lflag)
			}
			if tt.code == 0 {
				authOK(t, p, "tty", tt.answers[0])
			}
		})
	}
}
