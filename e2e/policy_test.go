package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stepsResult is what testdata/poplib_steps.py prints.
type stepsResult struct {
	Welcome string            `json:"welcome"`
	Steps   []json.RawMessage `json:"steps"`
}

// str is step i's answer as a string ("" if it is not one).
func (r stepsResult) str(i int) string {
	var s string
	json.Unmarshal(r.Steps[i], &s)
	return s
}

// lines is step i's answer as a list of strings (CAPA).
func (r stepsResult) lines(i int) []string {
	var l []string
	json.Unmarshal(r.Steps[i], &l)
	return l
}

// poplibSteps runs Python's poplib through steps against addr, sending
// proxyHeader first when it is not "".
func poplibSteps(t *testing.T, addr, proxyHeader string, steps ...[]any) stepsResult {
	t.Helper()
	requireTool(t, "python3")
	host, port := splitHostPort(t, addr)
	js, err := json.Marshal(steps)
	if err != nil {
		t.Fatal(err)
	}
	var r stepsResult
	runClient(t, &r, "python3", "testdata/poplib_steps.py", host, port, proxyHeader, string(js))
	if len(r.Steps) != len(steps) {
		t.Fatalf("poplib ran %d of %d steps", len(r.Steps), len(steps))
	}
	return r
}

func step(op string, args ...any) []any { return append([]any{op}, args...) }

// appendPasswd adds raw lines to the site's password file.
func (s *site) appendPasswd(t *testing.T, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(s.passwd, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		if _, err := f.WriteString(l + "\n"); err != nil {
			t.Fatal(err)
		}
	}
}

// loginLog waits for a log line with msg for user and returns it.
func loginLog(t *testing.T, srv *server, msg, user string) logLine {
	t.Helper()
	l, ok := srv.waitLog(func(l logLine) bool { return l["msg"] == msg && l["user"] == user }, 10*time.Second)
	if !ok {
		t.Fatalf("no %q log line for %s:\n%s", msg, user, srv.stderr.String())
	}
	return l
}

// TestPolicyFieldsPoplib: nologin with its reason, allow_nets judged by the
// address of a PROXY header from a trusted proxy, unknown fields ignored,
// and `pop3d passwd` keeping the fields of the line it rewrites.
func TestPolicyFieldsPoplib(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.appendPasswd(t,
		`gone:{PLAIN}pw1:::::: nologin reason="moved to imap.example.com"`,
		`office:{PLAIN}pw2:::::: allow_nets=192.0.2.0/24,2001:db8::/32 color=blue`,
	)
	// pop3d passwd changes office's password and keeps its extra fields.
	s.addUserWithPop3d(t, "office", "new-office-pw")
	data, err := os.ReadFile(s.passwd)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), ":::::: allow_nets=192.0.2.0/24,2001:db8::/32 color=blue\n") || strings.Contains(string(data), "pw2") {
		t.Fatalf("pop3d passwd lost the extra fields:\n%s", data)
	}
	s.deliver(t, "office", "one", []byte("Subject: hi\n\nhello\n"), false)

	// -check: the unknown field is a warning, not a problem.
	out, errOut, err := runCmdErr(time.Minute, nil, binPath, "-config", "/dev/null", "-passwd-file", s.passwd, "-maildir", s.maildirTemplate(), "-check")
	if err != nil || !strings.Contains(string(errOut), `warning: `+s.passwd+`:4: user "office": unknown extra field "color" ignored`) {
		t.Errorf("-check: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}

	// The proxy is taken to have terminated TLS: the clients are not on
	// loopback, so plain-text credentials need allow_insecure_auth.
	srv := startServer(t, s, "-proxy-protocol-from", "127.0.0.1", "-allow-insecure-auth")
	r := poplibSteps(t, srv.addr, "PROXY TCP4 198.51.100.9 127.0.0.1 40000 110",
		step("user", "gone"), step("pass", "pw1"))
	if got := r.str(1); got != "ERR: -ERR [AUTH] moved to imap.example.com" {
		t.Errorf("nologin: %q", got)
	}
	l := loginLog(t, srv, "login refused", "gone")
	if l["reason"] != "account disabled" || l["remote_ip"] != "198.51.100.9" {
		t.Errorf("nologin log line: %v", l)
	}

	r = poplibSteps(t, srv.addr, "PROXY TCP4 198.51.100.9 127.0.0.1 40001 110",
		step("user", "office"), step("pass", "new-office-pw"))
	if got := r.str(1); got != "ERR: -ERR [AUTH] authentication failed" {
		t.Errorf("outside allow_nets: %q", got)
	}
	l = loginLog(t, srv, "login failed", "office")
	if l["reason"] != "network not allowed" || l["remote_ip"] != "198.51.100.9" || l["level"] != "WARN" {
		t.Errorf("allow_nets log line: %v", l)
	}

	for _, hdr := range []string{"PROXY TCP4 192.0.2.200 127.0.0.1 40002 110", "PROXY TCP6 2001:db8::7 ::1 40003 110"} {
		r = poplibSteps(t, srv.addr, hdr, step("user", "office"), step("pass", "new-office-pw"), step("stat"), step("quit"))
		if got := r.str(1); !strings.HasPrefix(got, "+OK maildrop has 1 messages") {
			t.Errorf("inside allow_nets (%s): %q", hdr, got)
		}
	}
}

// TestLoginDelayAcrossRestart: LOGIN-DELAY is announced in CAPA before and
// after login, and a second login after a restart of pop3d is refused with
// [LOGIN-DELAY]: the last login is kept with the mailbox.
func TestLoginDelayAcrossRestart(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.appendPasswd(t, `fast:{PLAIN}pw:::::: login_delay=0`)
	s.deliver(t, alice, "one", []byte("Subject: hi\n\nhello\n"), false)
	args := []string{"-login-delay", "1h"}
	srv := startServer(t, s, args...)
	r := poplibSteps(t, srv.addr, "", step("capa"), step("user", alice), step("pass", alicePass), step("capa"), step("quit"))
	if caps := r.lines(0); !slices.Contains(caps, "LOGIN-DELAY 3600 USER") {
		t.Errorf("CAPA before login: %q", caps)
	}
	if caps := r.lines(3); !slices.Contains(caps, "LOGIN-DELAY 3600") {
		t.Errorf("CAPA after login: %q", caps)
	}
	srv.signal(syscall.SIGTERM)
	if code, err := srv.wait(10 * time.Second); code != 0 || err != nil {
		t.Fatalf("pop3d exit %d, %v", code, err)
	}

	srv = startServer(t, s, args...)
	r = poplibSteps(t, srv.addr, "", step("user", alice), step("pass", alicePass))
	if got := r.str(1); !strings.HasPrefix(got, "ERR: -ERR [LOGIN-DELAY] login delay: wait ") {
		t.Errorf("second login after the restart: %q", got)
	}
	l := loginLog(t, srv, "login refused", alice)
	if l["reason"] != "login delay" {
		t.Errorf("log line: %v", l)
	}
	// A user whose own login_delay is 0 logs in at once, again and again.
	for range 2 {
		r = poplibSteps(t, srv.addr, "", step("user", "fast"), step("pass", "pw"), step("capa"), step("quit"))
		if got := r.str(1); !strings.HasPrefix(got, "+OK") {
			t.Errorf("fast: %q", got)
		}
		if slices.ContainsFunc(r.lines(2), func(c string) bool { return strings.HasPrefix(c, "LOGIN-DELAY") }) {
			t.Errorf("fast's CAPA after login announces a delay: %q", r.lines(2))
		}
	}
	if _, err := os.Stat(filepath.Join(s.maildir(alice), "pop3d-state")); err != nil {
		t.Errorf("no state file: %v", err)
	}
}

// TestExpireZero: with expire = 0 the messages retrieved with RETR (not
// TOP) are deleted at QUIT, exactly those.
func TestExpireZero(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	var msgs []message
	for i := range 4 {
		msgs = append(msgs, s.deliver(t, alice, fmt.Sprint(i), []byte(fmt.Sprintf("Subject: %d\n\nbody %d\n", i, i)), false))
	}
	srv := startServer(t, s, "-expire", "0")
	r := poplibSteps(t, srv.addr, "", step("capa"), step("user", alice), step("pass", alicePass), step("capa"),
		step("retr", 1), step("top", 2, 0), step("retr", 4), step("quit"))
	if caps := r.lines(0); !slices.Contains(caps, "EXPIRE 0") {
		t.Errorf("CAPA before login: %q", caps)
	}
	if caps := r.lines(3); !slices.Contains(caps, "EXPIRE 0") {
		t.Errorf("CAPA after login: %q", caps)
	}
	if got := r.str(7); got != "+OK bye (2 messages deleted)" {
		t.Errorf("QUIT: %q", got)
	}
	want := []string{"new/" + msgs[1].uniq, "new/" + msgs[2].uniq}
	if got := listMaildir(t, s.maildir(alice)); !slices.Equal(got, want) {
		t.Errorf("Maildir after QUIT: %q, want %q", got, want)
	}
	l := loginLog(t, srv, "update", alice)
	if l["expired"] != "2" || l["deleted"] != "2" {
		t.Errorf("update log line: %v", l)
	}
}

// TestExpireOneDay: with expire = 1, messages retrieved in one session are
// kept; after the clock moved two days (pop3d restarted with the
// test-only POP3D_TEST_CLOCK_SKEW), the next QUIT deletes exactly them,
// not the one retrieved for the first time in that session nor the one
// never retrieved.
func TestExpireOneDay(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	var msgs []message
	for i := range 4 {
		msgs = append(msgs, s.deliver(t, alice, fmt.Sprint(i), []byte(fmt.Sprintf("Subject: %d\n\nbody %d\n", i, i)), false))
	}
	srv := startServer(t, s, "-expire", "1", "-mark-read=false")
	r := poplibSteps(t, srv.addr, "", step("user", alice), step("pass", alicePass),
		step("retr", 1), step("retr", 2), step("top", 3, 1), step("quit"))
	if got := r.str(5); got != "+OK bye (0 messages deleted)" {
		t.Errorf("first QUIT: %q", got)
	}
	if got := listMaildir(t, s.maildir(alice)); len(got) != 4 {
		t.Fatalf("first session deleted messages: %q", got)
	}
	srv.signal(syscall.SIGTERM)
	srv.wait(10 * time.Second)

	srv = startServerArgs(t, []string{"-config", "/dev/null", "-passwd-file", s.passwd, "-maildir", s.maildirTemplate(),
		"-expire", "1", "-mark-read=false"}, withPlain(), withEnv("POP3D_TEST_CLOCK_SKEW=49h"))
	r = poplibSteps(t, srv.addr, "", step("user", alice), step("pass", alicePass), step("stat"),
		step("retr", 4), step("quit"))
	if got := r.str(4); got != "+OK bye (2 messages deleted)" {
		t.Errorf("second QUIT: %q", got)
	}
	want := []string{"new/" + msgs[2].uniq, "new/" + msgs[3].uniq}
	if got := listMaildir(t, s.maildir(alice)); !slices.Equal(got, want) {
		t.Errorf("Maildir after the second QUIT: %q, want %q", got, want)
	}
}

// TestAPOPPoplib: poplib's apop() against the timestamp in the greeting,
// for a {PLAIN} user; a user with a hashed password cannot use APOP.
func TestAPOPPoplib(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.appendPasswd(t, "carol:{PLAIN}tanstaaf", "dave:{CLEARTEXT}x y z")
	s.deliver(t, "carol", "one", []byte("Subject: hi\n\nhello\n"), false)
	srv := startServer(t, s, "-apop")
	r := poplibSteps(t, srv.addr, "", step("apop", "carol", "tanstaaf"), step("stat"), step("quit"))
	if !challengeInGreeting(r.Welcome) {
		t.Errorf("greeting %q has no APOP timestamp", r.Welcome)
	}
	if got := r.str(0); !strings.HasPrefix(got, "+OK maildrop has 1 messages") {
		t.Errorf("apop(): %q", got)
	}
	r = poplibSteps(t, srv.addr, "", step("apop", "dave", "x y z"))
	if got := r.str(0); !strings.HasPrefix(got, "+OK") {
		t.Errorf("apop() with a {CLEARTEXT} secret: %q", got)
	}
	r = poplibSteps(t, srv.addr, "", step("apop", alice, alicePass), step("apop", "carol", "wrong"))
	for i := range 2 {
		if got := r.str(i); got != "ERR: -ERR [AUTH] authentication failed" {
			t.Errorf("apop() %d: %q", i, got)
		}
	}
	l := loginLog(t, srv, "login failed", alice)
	if l["mech"] != "APOP" {
		t.Errorf("log line: %v", l)
	}
	// Without -apop the greeting has no timestamp.
	srv2 := startServer(t, s)
	r = poplibSteps(t, srv2.addr, "", step("quit"))
	if challengeInGreeting(r.Welcome) {
		t.Errorf("greeting without apop: %q", r.Welcome)
	}
}

func challengeInGreeting(w string) bool {
	i := strings.IndexByte(w, '<')
	return i > 0 && strings.HasSuffix(w, ">") && strings.Contains(w[i:], "@")
}

// TestEnvOnly: pop3d with no config file, no password file and no flags,
// everything from the environment (POP3D_AUTH, POP3D_<KEY>), serves mail.
func TestEnvOnly(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/etc/pop3d/pop3d.conf"); err == nil {
		t.Skip("/etc/pop3d/pop3d.conf exists here; pop3d would read it")
	}
	if _, err := os.Stat("/etc/pop3d/passwd"); err == nil {
		t.Skip("/etc/pop3d/passwd exists here; pop3d would read it")
	}
	s := newSite(t)
	s.deliver(t, "erin", "one", []byte("Subject: env\n\nfrom the environment\n"), false)
	srv := startServerArgs(t, nil, withEnvListen(), withEnv(
		"POP3D_AUTH=erin:er1n-pw frank:fr4nk",
		"POP3D_MAILDIR="+s.maildirTemplate(),
		"POP3D_AUTH_FAILURE_DELAY=10ms",
		"POP3D_EXPIRE=never",
	))
	r := poplibSteps(t, srv.addr, "", step("user", "erin"), step("pass", "er1n-pw"), step("retr", 1), step("quit"))
	if got := r.str(1); !strings.HasPrefix(got, "+OK maildrop has 1 messages") {
		t.Errorf("login with POP3D_AUTH: %q", got)
	}
	r = poplibSteps(t, srv.addr, "", step("user", "erin"), step("pass", "wrong"))
	if got := r.str(1); got != "ERR: -ERR [AUTH] authentication failed" {
		t.Errorf("wrong password: %q", got)
	}
	if strings.Contains(srv.stderr.String(), "er1n-pw") {
		t.Error("the password reached the log")
	}
}
