package e2e

import (
	"github.com/pop3d/pop3d/internal/pop3test"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	filterPath = "../contrib/fail2ban/filter.d/pop3d.conf"
	jailPath   = "../contrib/fail2ban/jail.d/pop3d.local"
)

var linesRE = regexp.MustCompile(`Lines: (\d+) lines, (\d+) ignored, (\d+) matched, (\d+) missed`)

// fail2banRegex runs fail2ban-regex on logFile with the shipped filter and
// returns the matched count, the total line count and the addresses found.
func fail2banRegex(t *testing.T, logFile string) (matched, total int, ips []string) {
	t.Helper()
	filter, err := filepath.Abs(filterPath)
	if err != nil {
		t.Fatal(err)
	}
	out := runCmd(t, time.Minute, nil, "fail2ban-regex", logFile, filter)
	m := linesRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("fail2ban-regex output has no Lines: summary:\n%s", out)
	}
	total, _ = strconv.Atoi(string(m[1]))
	matched, _ = strconv.Atoi(string(m[3]))
	if ignored, _ := strconv.Atoi(string(m[2])); ignored != 0 {
		t.Errorf("fail2ban-regex ignored %d lines", ignored)
	}
	ipOut := runCmd(t, time.Minute, nil, "fail2ban-regex", "-o", "ip", logFile, filter)
	ips = strings.Fields(string(ipOut))
	return matched, total, ips
}

// TestFail2banFilter: real pop3d log lines through fail2ban-regex with the
// shipped filter match exactly the failed logins, in a log file (time=...)
// and in the form fail2ban's systemd backend builds from the journal.
func TestFail2banFilter(t *testing.T) {
	t.Parallel()
	requireTool(t, "fail2ban-regex")
	s := newSite(t)
	s.deliverShapes(t, alice)
	srv := startServer(t, s, "-auth-failure-delay", "10ms")

	// A good login, then failures: wrong password, unknown user, bad AUTH
	// PLAIN.
	p := pop3test.Dial(t, srv.addr)
	p.Login(alice, alicePass)
	p.Quit()
	p = pop3test.Dial(t, srv.addr)
	p.OK("USER " + alice)
	if r := p.Cmd("PASS nope"); !strings.HasPrefix(r, "-ERR") {
		t.Fatalf("bad PASS: %q", r)
	}
	p.OK("USER nosuchuser")
	if r := p.Cmd("PASS nope"); !strings.HasPrefix(r, "-ERR") {
		t.Fatalf("unknown user: %q", r)
	}
	if r := p.Cmd("AUTH PLAIN AGFsaWNlAHdyb25n"); !strings.HasPrefix(r, "-ERR") { // \0alice\0wrong
		t.Fatalf("bad AUTH PLAIN: %q", r)
	}
	p.NetConn().Close()
	q := pop3test.Dial(t, srv.addr)
	q.AuthPlain(alice, alicePass)
	q.Quit()
	srv.signal(syscall.SIGTERM)
	if code, err := srv.wait(5 * time.Second); code != 0 || err != nil {
		t.Fatalf("pop3d exit %d, %v", code, err)
	}

	raw := srv.stderr.String()
	var lines []string
	failed := 0
	for _, l := range strings.Split(strings.TrimRight(raw, "\n"), "\n") {
		lines = append(lines, l)
		if pl, err := parseLogLine(l); err == nil && pl["msg"] == "login failed" {
			failed++
		}
	}
	if failed != 3 {
		t.Fatalf("%d login failed lines, want 3:\n%s", failed, raw)
	}
	logFile := filepath.Join(t.TempDir(), "pop3d.log")
	writeFile(t, logFile, []byte(raw), 0o644)
	matched, total, ips := fail2banRegex(t, logFile)
	if total != len(lines) || matched != failed {
		t.Errorf("fail2ban-regex on the log file: %d lines, %d matched; want %d lines, %d matched\n%s", total, matched, len(lines), failed, raw)
	}
	for _, ip := range ips {
		if ip != "127.0.0.1" {
			t.Errorf("fail2ban-regex found address %q, want 127.0.0.1", ip)
		}
	}
	if len(ips) != failed {
		t.Errorf("fail2ban-regex -o ip found %d addresses, want %d", len(ips), failed)
	}

	// The journal: no time=, and fail2ban's systemd backend puts
	// "HOST IDENT[PID]: " in front of MESSAGE.
	var jl strings.Builder
	for _, l := range lines {
		l = regexp.MustCompile(`^time=\S+ `).ReplaceAllString(l, "")
		jl.WriteString("mail.example.org pop3d[4242]: " + l + "\n")
	}
	journalFile := filepath.Join(t.TempDir(), "journal.log")
	writeFile(t, journalFile, []byte(jl.String()), 0o644)
	if matched, _, _ := fail2banRegex(t, journalFile); matched != failed {
		t.Errorf("fail2ban-regex on journal-style lines matched %d, want %d\n%s", matched, failed, jl.String())
	}
}

// TestFail2banFilterInjection: user names are attacker-controlled; slog
// quotes them and the filter takes the address only from remote_ip right
// after the message, so no crafted name yields another address.
func TestFail2banFilterInjection(t *testing.T) {
	t.Parallel()
	requireTool(t, "fail2ban-regex")
	log := `time=2026-11-22T04:05:06.123Z level=WARN msg="login failed" remote_ip=192.0.2.7 user="x remote_ip=10.9.9.9" mech=USER reason="authentication failed"
time=2026-11-22T04:05:07.123+01:00 level=WARN msg="login failed" remote_ip=2001:db8::1 user=bob mech=PLAIN reason="authentication failed"
time=2026-11-22T04:05:08.123Z level=INFO msg=login remote_ip=192.0.2.8 user="level=WARN msg=\"login failed\" remote_ip=6.6.6.6 x" mech=USER tls=false messages=1 octets=3
time=2026-11-22T04:05:09.123Z level=INFO msg=disconnect remote_ip=192.0.2.8 user="msg=\"login failed\" remote_ip=6.6.6.6" bytes_sent=1 duration=1ms
`
	f := filepath.Join(t.TempDir(), "crafted.log")
	writeFile(t, f, []byte(log), 0o644)
	matched, total, ips := fail2banRegex(t, f)
	if total != 4 || matched != 2 {
		t.Errorf("crafted log: %d lines, %d matched; want 4, 2", total, matched)
	}
	if strings.Join(ips, " ") != "192.0.2.7 2001:db8::1" {
		t.Errorf("crafted log: addresses %q, want [192.0.2.7 2001:db8::1]", ips)
	}
}

// TestFail2banJail: the example jail, enabled, loads with the filter in a
// copy of Debian's fail2ban configuration.
func TestFail2banJail(t *testing.T) {
	t.Parallel()
	requireTool(t, "fail2ban-client")
	if _, err := os.Stat("/etc/fail2ban/jail.conf"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no /etc/fail2ban/jail.conf (apt-get install -y fail2ban): %v", err)
		}
		t.Skip("no /etc/fail2ban to copy")
	}
	dir := t.TempDir()
	runCmd(t, time.Minute, nil, "cp", "-r", "/etc/fail2ban/.", dir)
	filter, err := os.ReadFile(filterPath)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "filter.d", "pop3d.conf"), filter, 0o644)
	jail, err := os.ReadFile(jailPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(jail), "enabled  = false") {
		t.Fatalf("%s must ship disabled", jailPath)
	}
	// Only our jail: other jails in /etc may need logs that do not exist.
	os.RemoveAll(filepath.Join(dir, "jail.d"))
	os.Mkdir(filepath.Join(dir, "jail.d"), 0o755)
	writeFile(t, filepath.Join(dir, "jail.d", "pop3d.local"),
		[]byte(strings.Replace(string(jail), "enabled  = false", "enabled  = true", 1)), 0o644)
	writeFile(t, filepath.Join(dir, "jail.local"), []byte("[sshd]\nenabled = false\n"), 0o644)
	out := string(runCmd(t, time.Minute, nil, "fail2ban-client", "-c", dir, "-d"))
	for _, want := range []string{
		"['add', 'pop3d', 'systemd']",
		"'addjournalmatch', '_SYSTEMD_UNIT=pop3d.service'",
		"--dports pop3,pop3s",
		"'addfailregex', '",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("fail2ban-client -d lacks %s:\n%s", want, out)
		}
	}
}
