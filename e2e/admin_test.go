package e2e

import (
	"github.com/pop3d/pop3d/internal/pop3test"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runPop3d runs the pop3d binary with args and returns its exit status,
// stdout and stderr.
func runPop3d(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	out, errOut, err := runCmdErr(30*time.Second, nil, binPath, args...)
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(interface{ ExitCode() int }); ok {
			code = ee.ExitCode()
		}
	}
	return code, string(out), string(errOut)
}

// whoRows returns the rows of `pop3d who` after its header, as fields.
func whoRows(t *testing.T, args ...string) [][]string {
	t.Helper()
	code, out, errOut := runPop3d(t, append([]string{"who"}, args...)...)
	if code != 0 {
		t.Fatalf("pop3d who: exit %d\n%s%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if !strings.HasPrefix(lines[0], "SESSION ") {
		t.Fatalf("pop3d who header: %q", lines[0])
	}
	var rows [][]string
	for _, l := range lines[1:] {
		rows = append(rows, strings.Fields(l))
	}
	return rows
}

var sessionIDRE = regexp.MustCompile(`^[0-9a-f]{16}$`)

// TestWhoKick: pop3d who lists the live sessions of the real binary, and
// pop3d kick ends them by user and by id as a shutdown would: no UPDATE,
// -ERR [SYS/TEMP].
func TestWhoKick(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	msgs := s.deliverShapes(t, alice)
	sock := filepath.Join(shortTempDir(t), "control")
	conf := filepath.Join(s.dir, "pop3d.conf")
	writeFile(t, conf, []byte("control_socket = "+sock+"\n"), 0o644)
	srv := startServer(t, s, "-control-socket", sock)

	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("control socket mode %v, want a socket with 0600", fi.Mode())
	}

	if rows := whoRows(t, "-control-socket", sock); len(rows) != 0 {
		t.Fatalf("who with no sessions: %q", rows)
	}
	a := pop3test.Dial(t, srv.addr)
	a.Login(alice, alicePass)
	a.OK("DELE 1")
	anon := pop3test.Dial(t, srv.addr)
	b := pop3test.Dial(t, srv.addr)
	b.AuthPlain(bob, bobPass)
	b.Multi("LIST")

	// Found through the config file too.
	rows := whoRows(t, "-config", conf)
	if len(rows) != 3 {
		t.Fatalf("who: %d rows, want 3: %q", len(rows), rows)
	}
	byUser := map[string][]string{}
	for _, r := range rows {
		if len(r) != 9 { // SINCE is "TIME (AGE)": two fields
			t.Fatalf("who row %q", r)
		}
		if !sessionIDRE.MatchString(r[0]) {
			t.Errorf("session id %q", r[0])
		}
		if !strings.HasPrefix(r[2], "127.0.0.1:") || r[3] != "no" {
			t.Errorf("remote/TLS of %q", r)
		}
		byUser[r[1]] = r
	}
	if r := byUser[alice]; r == nil || r[4] != "TRANSACTION" || r[7] != strconv.Itoa(len(msgs)) {
		t.Errorf("alice's row %q, want TRANSACTION with %d messages", r, len(msgs))
	}
	if r := byUser["-"]; r == nil || r[4] != "AUTHORIZATION" || r[7] != "0" {
		t.Errorf("the anonymous row %q", r)
	}
	if r := byUser[bob]; r == nil || r[8] == "0" {
		t.Errorf("bob's row %q: sent octets missing", r)
	}

	// Kick by user: alice's session ends without UPDATE.
	code, out, errOut := runPop3d(t, "kick", "-control-socket", sock, alice)
	if code != 0 || out != "kicked 1 session(s)\n" {
		t.Fatalf("kick alice: exit %d %q %q", code, out, errOut)
	}
	if l := a.Line(); l != "-ERR [SYS/TEMP] session ended by the administrator" {
		t.Fatalf("kicked client got %q", l)
	}
	a.ExpectEOF()
	a.Close() // as clients do: the server stops lingering
	if got := len(listMaildir(t, s.maildir(alice))); got != len(msgs) {
		t.Errorf("after the kick alice has %d messages, want %d (no UPDATE)", got, len(msgs))
	}

	// Kick by session id.
	code, out, errOut = runPop3d(t, "kick", "-config", conf, byUser["-"][0])
	if code != 0 || out != "kicked 1 session(s)\n" {
		t.Fatalf("kick by id: exit %d %q %q", code, out, errOut)
	}
	if l := anon.Line(); l != "-ERR [SYS/TEMP] session ended by the administrator" {
		t.Fatalf("kicked client got %q", l)
	}
	anon.ExpectEOF()
	anon.Close()

	// Nobody matches: exit 1, and bob's session goes on.
	code, out, errOut = runPop3d(t, "kick", "-control-socket", sock, "nobody")
	if code != 1 || out != "kicked 0 session(s)\n" || !strings.Contains(errOut, `no session with id or user "nobody"`) {
		t.Fatalf("kick nobody: exit %d %q %q", code, out, errOut)
	}
	b.OK("NOOP")
	if rows := whoRows(t, "-control-socket", sock); len(rows) != 1 || rows[0][1] != bob {
		t.Fatalf("who after the kicks: %q", rows)
	}
	b.Quit()

	ll, ok := srv.waitLog(func(l logLine) bool { return l["msg"] == "disconnect" && l["user"] == alice }, 5*time.Second)
	if !ok || ll["how"] != "kicked" || ll["del"] != "0/"+strconv.Itoa(len(msgs)) || ll["session"] != byUser[alice][0] {
		t.Errorf("alice's disconnect line %v", ll)
	}

	// Usage and errors.
	off := filepath.Join(s.dir, "off.conf")
	writeFile(t, off, []byte("control_socket =\n"), 0o644)
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"kick", "-control-socket", sock}, 2, "Usage:"},
		{[]string{"who", "-control-socket", sock, "extra"}, 2, "Usage:"},
		{[]string{"who", "-control-socket", filepath.Join(s.dir, "nonexistent")}, 1, "is pop3d running with this control_socket?"},
		{[]string{"who", "-config", off}, 1, "control_socket is off in " + off},
		{[]string{"who", "-config", filepath.Join(s.dir, "missing.conf")}, 1, "missing.conf"},
	} {
		code, out, errOut := runPop3d(t, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("pop3d %q: exit %d, stderr %q; want %d with %q (stdout %q)", tt.args, code, errOut, tt.code, tt.want, out)
		}
	}

	// Mode 0600 keeps other users out; the daemon checks the peer's
	// credentials as well, which this shows with the mode opened up.
	if os.Geteuid() == 0 {
		requireTool(t, "setpriv")
		os.Chmod(filepath.Dir(sock), 0o755)
		os.Chmod(sock, 0o666)
		out, errOut, err := runCmdErr(30*time.Second, nil, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
			binPath, "who", "-control-socket", sock)
		if err == nil || !strings.Contains(string(errOut), "permission denied") {
			t.Errorf("pop3d who as nobody: %v %q %q", err, out, errOut)
		}
		os.Chmod(sock, 0o600)
	}

	// The socket goes away with the daemon.
	srv.stop()
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("control socket left behind: %v", err)
	}
}
