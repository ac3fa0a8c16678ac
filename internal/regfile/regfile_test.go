package regfile_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pop3d/pop3d/internal/regfile"
)

// within fails the test if f does not return within a few seconds: the
// defect this package prevents is a hang, and a regression must fail, not
// wedge the test run.
func within(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("blocked for 5s")
	}
}

func TestOpenRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	link := filepath.Join(dir, "link")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{fifo, "a FIFO"},
		{link, "a FIFO"},
		{sock, "a socket"},
		{dir, "a directory"},
		{"/dev/null", "a character device"},
		{"/dev/zero", "a character device"},
	} {
		within(t, func() {
			_, err := regfile.ReadFile(tc.path, 1<<20)
			var nr *regfile.NotRegularError
			if !errors.As(err, &nr) || !regfile.IsNotRegular(err) {
				t.Fatalf("ReadFile(%s) = %v, want *NotRegularError", tc.path, err)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.path) || !strings.Contains(msg, tc.want) {
				t.Errorf("ReadFile(%s) error %q does not name the file and %q", tc.path, msg, tc.want)
			}
		})
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := regfile.ReadFile(p, 5); err != nil || string(b) != "hello" {
		t.Errorf("ReadFile = %q, %v", b, err)
	}
	var tl *regfile.TooLargeError
	if _, err := regfile.ReadFile(p, 4); !errors.As(err, &tl) || !strings.Contains(err.Error(), p) {
		t.Errorf("ReadFile over the limit = %v, want *TooLargeError naming the file", err)
	}
	if _, err := regfile.ReadFile(filepath.Join(dir, "missing"), 5); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadFile(missing) = %v, want ErrNotExist", err)
	}
}
