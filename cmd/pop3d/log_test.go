package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestNewLogger(t *testing.T) {
	tests := []struct {
		journal  bool
		wantTime bool
	}{
		{false, true},
		{true, false},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		level := new(slog.LevelVar)
		level.Set(slog.LevelWarn)
		logger := newLogger(&buf, level, tt.journal)
		logger.Info("hidden")
		logger.Warn("login failed", "remote_ip", "192.0.2.1", "user", "x")
		level.Set(slog.LevelDebug)
		logger.Debug("shown")
		out := buf.String()
		if strings.Contains(out, "hidden") || !strings.Contains(out, "shown") {
			t.Errorf("level not honoured or not changeable:\n%s", out)
		}
		if !strings.Contains(out, `level=WARN msg="login failed" remote_ip=192.0.2.1 user=x`) {
			t.Errorf("unexpected line format:\n%s", out)
		}
		if got := strings.Contains(out, "time="); got != tt.wantTime {
			t.Errorf("journal=%v: time attribute present=%v\n%s", tt.journal, got, out)
		}
	}
}

func TestIsJournal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		env  string
		want bool
	}{
		{fmt.Sprintf("%d:%d", st.Dev, st.Ino), true},
		{fmt.Sprintf("%d:%d", st.Dev, st.Ino+1), false},
		{"", false},
		{"garbage", false},
	}
	for _, tt := range tests {
		if got := isJournal(f, tt.env); got != tt.want {
			t.Errorf("isJournal(%q) = %v, want %v", tt.env, got, tt.want)
		}
	}
}

// TestBinaryJournalStream checks that pop3d leaves out time= only when its
// stderr is the stream JOURNAL_STREAM names.
func TestBinaryJournalStream(t *testing.T) {
	bin := pop3dBinary(t)
	dir := t.TempDir()
	for _, journal := range []bool{true, false} {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("stderr-%v", journal)))
		if err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
			t.Fatal(err)
		}
		stream := fmt.Sprintf("%d:%d", st.Dev, st.Ino)
		if !journal {
			stream = fmt.Sprintf("%d:%d", st.Dev, st.Ino+1)
		}
		// A config warning is logged, then startup fails for want of sockets.
		cmd := exec.Command(bin, "-config", os.DevNull, "-idle-timeout", "1m", "-listen", "")
		cmd.Env = append(os.Environ(), "JOURNAL_STREAM="+stream, "LISTEN_FDS=")
		cmd.Stderr = f
		cmd.Run()
		f.Close()
		out, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), "level=WARN") {
			t.Fatalf("no log line:\n%s", out)
		}
		if got := strings.Contains(string(out), "time="); got == journal {
			t.Errorf("journal=%v: time= present=%v:\n%s", journal, got, out)
		}
	}
}
