package main

import (
	"bytes"
	"github.com/pop3d/pop3d/internal/pop3test"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDemoSetup runs scripts/demo-setup twice (it must be idempotent) and
// serves the result the way `make run` does.
func TestDemoSetup(t *testing.T) {
	bin := pop3dBinary(t)
	script, err := filepath.Abs("../../scripts/demo-setup")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "run")
	runScript := func() {
		t.Helper()
		cmd := exec.Command(script, dir)
		cmd.Env = append(os.Environ(), "POP3D="+bin)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("demo-setup: %v\n%s", err, out)
		}
	}
	runScript()
	pw1, err := os.ReadFile(filepath.Join(dir, "passwd"))
	if err != nil {
		t.Fatal(err)
	}
	newDir := filepath.Join(dir, "mail", "demo", "new")
	names1, err := filepath.Glob(filepath.Join(newDir, "*"))
	if err != nil || len(names1) != 4 {
		t.Fatalf("new/ holds %d messages (%v), want 4", len(names1), err)
	}
	postfix := regexp.MustCompile(`^\d+\.V[0-9a-f]+I[0-9a-f]+M\d+\.[^/:]+$`)
	for _, n := range names1 {
		if !postfix.MatchString(filepath.Base(n)) {
			t.Errorf("name %q is not Postfix-style", filepath.Base(n))
		}
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, "mail", "demo", "tmp", "*")); len(tmp) != 0 {
		t.Errorf("tmp/ not empty: %v", tmp)
	}

	runScript()
	pw2, _ := os.ReadFile(filepath.Join(dir, "passwd"))
	names2, _ := filepath.Glob(filepath.Join(newDir, "*"))
	if !bytes.Equal(pw1, pw2) || strings.Join(names1, ",") != strings.Join(names2, ",") {
		t.Error("second run changed the demo setup")
	}

	// As in the Makefile's run target.
	var logs syncBuffer
	cmd := exec.Command(bin, "-config", os.DevNull, "-passwd-file", filepath.Join(dir, "passwd"),
		"-maildir", filepath.Join(dir, "mail", "%n"), "-listen", "127.0.0.1:0", "-auth-failure-delay", "1s")
	cmd.Env = append(os.Environ(), "LISTEN_FDS=")
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	addr := logs.waitFor(t, startedRE)[1]
	c := pop3test.Dial(t, addr)
	c.OK("USER demo")
	c.OK("PASS demo")
	if line := c.OK("STAT"); !strings.HasPrefix(line, "4 ") {
		t.Errorf("STAT = %q, want 4 messages", line)
	}
	if body := strings.Join(c.Lines("RETR 1"), "\n"); !strings.Contains(body, "Subject: Welcome to pop3d") {
		t.Errorf("message 1 is not the welcome message:\n%s", body)
	}
	if body := c.Lines("RETR 4"); body[len(body)-1] != "This message has no final line break; pop3d adds CRLF on the wire." {
		t.Errorf("message 4 ends with %q", body[len(body)-1])
	}
	c.OK("QUIT")
}
