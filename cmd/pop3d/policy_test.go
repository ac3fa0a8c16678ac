package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pop3d/pop3d/daemon"
	"github.com/pop3d/pop3d/htpasswd"
)

func fields(t *testing.T, s string) []htpasswd.Field {
	t.Helper()
	f, err := htpasswd.ParseExtra(s)
	if err != nil {
		t.Fatalf("ParseExtra(%q): %v", s, err)
	}
	return f
}

func TestPolicyFor(t *testing.T) {
	g := globalPolicy{loginDelay: time.Minute, expire: daemon.ExpireAfter(30)}
	tests := []struct {
		extra    string
		want     userPolicy
		warnings int
		err      string
	}{
		{"", userPolicy{loginDelay: time.Minute, expire: daemon.ExpireAfter(30)}, 0, ""},
		{"nologin", userPolicy{nologin: true, loginDelay: time.Minute, expire: daemon.ExpireAfter(30)}, 0, ""},
		{"nologin=y reason=\"gone to IMAP\"", userPolicy{nologin: true, reason: "gone to IMAP", loginDelay: time.Minute, expire: daemon.ExpireAfter(30)}, 0, ""},
		{"login_delay=0 expire=never", userPolicy{}, 0, ""},
		{"login_delay=15m expire=0", userPolicy{loginDelay: 15 * time.Minute, expire: daemon.ExpireAfter(0)}, 0, ""},
		{"login_delay=300 expire=NEVER color=blue userdb_mail=x", userPolicy{loginDelay: 5 * time.Minute}, 2, ""},
		{"login_delay=-1", userPolicy{}, 0, "login_delay"},
		{"login_delay=soon", userPolicy{}, 0, "login_delay"},
		{"expire=-3", userPolicy{}, 0, "expire"},
		{"expire=1e3", userPolicy{}, 0, "expire"},
		{"allow_nets=10.0.0.0/33", userPolicy{}, 0, "allow_nets"},
		{"allow_nets=bogus", userPolicy{}, 0, "allow_nets"},
		{"expire=1 expire=2", userPolicy{}, 0, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.extra, func(t *testing.T) {
			fs := fields(t, tt.extra)
			w, err := checkExtra(fs)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("checkExtra: %v, want %q", err, tt.err)
				}
				if _, err := policyFor(g, fs); err == nil {
					t.Fatal("policyFor accepted what checkExtra refused")
				}
				return
			}
			if err != nil || len(w) != tt.warnings {
				t.Fatalf("checkExtra = %q, %v; want %d warnings", w, err, tt.warnings)
			}
			p, err := policyFor(g, fs)
			if err != nil {
				t.Fatal(err)
			}
			p.allowNets = nil
			if p.nologin != tt.want.nologin || p.reason != tt.want.reason ||
				p.loginDelay != tt.want.loginDelay || p.expire != tt.want.expire {
				t.Errorf("policy = %+v, want %+v", p, tt.want)
			}
		})
	}
}

func TestAllowNets(t *testing.T) {
	tests := []struct {
		nets   string
		remote string
		ok     bool
	}{
		{"", "192.0.2.1", false}, // an empty list allows nobody
		{"192.0.2.0/24", "192.0.2.77", true},
		{"192.0.2.0/24", "198.51.100.1", false},
		{"192.0.2.0/24, 2001:db8::/32", "2001:db8:1::5", true},
		{"192.0.2.5", "192.0.2.5", true},
		{"192.0.2.5", "192.0.2.6", false},
		{"::ffff:192.0.2.0/120", "192.0.2.9", true},
		{"127.0.0.1", "::ffff:127.0.0.1", true},
	}
	for _, tt := range tests {
		nets, err := parseNets(tt.nets)
		if err != nil {
			t.Fatalf("parseNets(%q): %v", tt.nets, err)
		}
		p := userPolicy{allowNets: nets}
		ip := net.ParseIP(tt.remote)
		if got := p.allowed(&net.TCPAddr{IP: ip, Port: 1}); got != tt.ok {
			t.Errorf("allow_nets=%q from %s: %v, want %v", tt.nets, tt.remote, got, tt.ok)
		}
	}
	none := userPolicy{}
	if !none.allowed(&net.UnixAddr{Name: "x"}) {
		t.Error("no allow_nets refuses a login")
	}
}

func TestDelayLeft(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	tests := []struct {
		delay time.Duration
		last  time.Time
		want  time.Duration
	}{
		{0, now, 0},
		{time.Minute, time.Time{}, 0},
		{time.Minute, now.Add(-10 * time.Second), 50 * time.Second},
		{time.Minute, now.Add(-time.Minute), 0},
		{time.Minute, now.Add(time.Hour), time.Minute}, // clock stepped back: at most the delay
	}
	for _, tt := range tests {
		if got := delayLeft(tt.delay, tt.last, now); got != tt.want {
			t.Errorf("delayLeft(%v, %v) = %v, want %v", tt.delay, tt.last, got, tt.want)
		}
	}
	var e *daemon.Error
	if err := errLoginDelay(1500 * time.Millisecond); !errors.As(err, &e) || e.Code != daemon.CodeLoginDelay ||
		e.Text != "login delay: wait 2 more seconds" || !e.Verified {
		t.Errorf("errLoginDelay = %#v", err)
	}
}

// The backend end to end on a real Maildir with a moved clock: nologin,
// allow_nets from the (PROXY) remote address, LOGIN-DELAY across
// backends sharing the Maildir, and the policy a session sees.
func TestBackendPolicy(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "mail")
	for _, u := range []string{"off", "net", "slow", "exp", "plain"} {
		makeMaildir(t, filepath.Join(root, u), "Subject: x\n\nx\n")
	}
	lines := []string{
		"off:" + shaHash("pw") + ":::::: nologin reason=\"moved to imap.example.com\"",
		"net:" + shaHash("pw") + ":::::: allow_nets=192.0.2.0/24 nologin",
		"slow:" + shaHash("pw") + ":::::: login_delay=600",
		"exp:" + shaHash("pw") + ":::::: expire=3 login_delay=0",
		"plain:{PLAIN}pw",
	}
	pwPath := filepath.Join(dir, "passwd")
	if err := os.WriteFile(pwPath, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	pw, err := openPasswd(&Config{PasswdFile: pwPath}, logger)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	settings := backendSettings{passwd: pw, template: root + "/%u", now: clock,
		global: globalPolicy{loginDelay: 0, expire: daemon.ExpireAfter(7)}}
	b1 := newBackend(settings, logger)
	b2 := newBackend(settings, logger) // another pop3d on the same Maildirs
	if !b1.perUser() {
		t.Error("perUser = false with extra fields in the file")
	}
	from := func(ip string) daemon.ConnInfo {
		return daemon.ConnInfo{RemoteAddr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 5}}
	}
	login := func(b *backend, user, ip string) (daemon.Mailbox, *daemon.Error) {
		t.Helper()
		mb, err := b.Login(context.Background(), user, "pw", from(ip))
		if err != nil {
			var e *daemon.Error
			if !errors.As(err, &e) {
				t.Fatalf("%s: %v", user, err)
			}
			return nil, e
		}
		return mb, nil
	}
	if _, e := login(b1, "off", "127.0.0.1"); e == nil || e.Code != daemon.CodeAuth || !e.Verified || e.Text != "moved to imap.example.com" {
		t.Errorf("nologin: %+v", e)
	}
	if _, e := login(b1, "net", "198.51.100.7"); e == nil || e.Code != daemon.CodeAuth || e.Verified || e.Reason != "network not allowed" || e.Text != "authentication failed" {
		t.Errorf("outside allow_nets: %+v", e)
	}
	if _, e := login(b1, "net", "192.0.2.9"); e == nil || e.Reason != "account disabled" {
		t.Errorf("inside allow_nets, nologin: %+v", e)
	}
	// LOGIN-DELAY: the second backend sees the first one's login.
	mb, e := login(b1, "slow", "127.0.0.1")
	if e != nil {
		t.Fatal(e)
	}
	if p := mb.(daemon.PolicyMailbox).Policy(); p.LoginDelay != 10*time.Minute || p.Expire != daemon.ExpireAfter(7) {
		t.Errorf("slow's policy = %+v", p)
	}
	mb.Close()
	now = now.Add(4 * time.Minute)
	if _, e := login(b2, "slow", "127.0.0.1"); e == nil || e.Code != daemon.CodeLoginDelay || e.Text != "login delay: wait 360 more seconds" {
		t.Errorf("second login after 4 min: %+v", e)
	}
	now = now.Add(6 * time.Minute)
	if mb, e = login(b2, "slow", "127.0.0.1"); e != nil {
		t.Fatalf("after the delay: %+v", e)
	}
	mb.Close()
	// EXPIRE: retrieval recorded at QUIT, seen by the next session.
	mb, e = login(b1, "exp", "127.0.0.1")
	if e != nil {
		t.Fatal(e)
	}
	if p := mb.(daemon.PolicyMailbox).Policy(); p.Expire != daemon.ExpireAfter(3) || p.LoginDelay != 0 {
		t.Errorf("exp's policy = %+v", p)
	}
	if err := mb.Commit(context.Background(), nil, []int{0}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	mb, e = login(b1, "exp", "127.0.0.1")
	if e != nil {
		t.Fatal(e)
	}
	defer mb.Close()
	if at, ok := mb.(daemon.PolicyMailbox).FirstRetrieved(0); !ok || !at.Equal(now.Add(-time.Hour)) {
		t.Errorf("FirstRetrieved = %v, %v", at, ok)
	}
	// APOP: plain secrets only.
	ch := "<1.2.3@h>"
	if _, err := b1.LoginAPOP(context.Background(), "slow", ch, "00000000000000000000000000000000", from("127.0.0.1")); !errors.Is(err, daemon.ErrAuth) {
		t.Errorf("APOP for a hashed password: %v", err)
	}
}
