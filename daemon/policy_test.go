package daemon_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pop3d/pop3d/daemon"
)

// policyBackend wraps memBackend: its mailboxes carry a UserPolicy and
// first-retrieval times, and it checks APOP against the plain passwords.
type policyBackend struct {
	*memBackend
	mu     sync.Mutex
	policy map[string]daemon.UserPolicy
	first  map[string]map[int]time.Time // user -> message -> first RETR
}

type policyMailbox struct {
	daemon.Mailbox
	p     daemon.UserPolicy
	first map[int]time.Time
}

func (m policyMailbox) Policy() daemon.UserPolicy { return m.p }
func (m policyMailbox) FirstRetrieved(i int) (time.Time, bool) {
	t, ok := m.first[i]
	return t, ok
}

func (b *policyBackend) wrap(user string, mb daemon.Mailbox, err error) (daemon.Mailbox, error) {
	if err != nil {
		return mb, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.policy[user]
	if !ok {
		return mb, nil
	}
	return policyMailbox{Mailbox: mb, p: p, first: b.first[user]}, nil
}

func (b *policyBackend) Login(ctx context.Context, user, pass string, info daemon.ConnInfo) (daemon.Mailbox, error) {
	mb, err := b.memBackend.Login(ctx, user, pass, info)
	return b.wrap(user, mb, err)
}

func (b *policyBackend) LoginAPOP(ctx context.Context, user, challenge, digest string, info daemon.ConnInfo) (daemon.Mailbox, error) {
	b.memBackend.mu.Lock()
	pass, ok := b.memBackend.pass[user]
	b.memBackend.mu.Unlock()
	sum := md5.Sum([]byte(challenge + pass))
	if !ok || hex.EncodeToString(sum[:]) != digest {
		return nil, daemon.ErrAuth
	}
	mb, err := b.memBackend.Login(ctx, user, pass, info)
	return b.wrap(user, mb, err)
}

func TestCapaPolicy(t *testing.T) {
	yes := func() bool { return true }
	tests := []struct {
		name   string
		edit   func(*daemon.Config)
		user   *daemon.UserPolicy
		before []string
		after  []string
	}{
		{"defaults", nil, nil, []string{"EXPIRE NEVER"}, []string{"EXPIRE NEVER"}},
		{"global values", func(c *daemon.Config) {
			c.LoginDelay = 5 * time.Minute
			c.Expire = daemon.ExpireAfter(0)
		}, nil, []string{"LOGIN-DELAY 300", "EXPIRE 0"}, []string{"LOGIN-DELAY 300", "EXPIRE 0"}},
		{"per user", func(c *daemon.Config) {
			c.Expire = daemon.ExpireAfter(30)
			c.PerUserPolicy = yes
		}, &daemon.UserPolicy{LoginDelay: time.Hour, Expire: daemon.ExpireAfter(7)},
			[]string{"LOGIN-DELAY 0 USER", "EXPIRE 30 USER"}, []string{"LOGIN-DELAY 3600", "EXPIRE 7"}},
		{"per user, never", func(c *daemon.Config) { c.PerUserPolicy = yes },
			&daemon.UserPolicy{}, []string{"LOGIN-DELAY 0 USER", "EXPIRE NEVER USER"}, []string{"EXPIRE NEVER"}},
	}
	pick := func(lines []string) []string {
		var out []string
		for _, l := range lines {
			if strings.HasPrefix(l, "LOGIN-DELAY") || strings.HasPrefix(l, "EXPIRE") {
				out = append(out, l)
			}
		}
		return out
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pb := &policyBackend{memBackend: newMemBackend(), policy: map[string]daemon.UserPolicy{}}
			pb.addUser("alice", "pw")
			if tt.user != nil {
				pb.policy["alice"] = *tt.user
			}
			ts := startServerWith(t, pb, tt.edit)
			c := ts.dial(t)
			c.cmd("CAPA", "+OK capability list follows")
			if got := pick(c.multi()); !slices.Equal(got, tt.before) {
				t.Errorf("before login: %q, want %q", got, tt.before)
			}
			c.cmd("USER alice", "+OK")
			c.cmd("PASS pw", "+OK maildrop has 0 messages (0 octets)")
			c.cmd("CAPA", "+OK capability list follows")
			if got := pick(c.multi()); !slices.Equal(got, tt.after) {
				t.Errorf("after login: %q, want %q", got, tt.after)
			}
		})
	}
}

// startServerWith serves any Backend with the test config after edit.
func startServerWith(t *testing.T, b daemon.Backend, edit func(*daemon.Config)) *testServer {
	t.Helper()
	return startServerBackend(t, b, daemon.ModePlain, edit)
}

func TestExpireAtQuit(t *testing.T) {
	now := time.Unix(1_000_000_000, 0)
	day := 24 * time.Hour
	msgs := func() []memMessage {
		return []memMessage{{data: []byte("a\n")}, {data: []byte("b\n")}, {data: []byte("c\n")}, {data: []byte("d\n")}}
	}
	tests := []struct {
		name      string
		expire    daemon.Expire
		first     map[int]time.Time
		cmds      []string // after login, before QUIT
		deleted   []int
		retrieved []int
	}{
		{"never", daemon.Expire{}, map[int]time.Time{0: now.Add(-100 * day)}, []string{"RETR 2"}, nil, []int{1}},
		{"0: retrieved now, TOP does not count", daemon.ExpireAfter(0), nil,
			[]string{"RETR 1", "TOP 2 0", "RETR 3"}, []int{0, 2}, nil},
		{"0: retrieved before", daemon.ExpireAfter(0), map[int]time.Time{3: now.Add(-time.Minute)},
			[]string{"RETR 1"}, []int{0, 3}, nil},
		{"1: older than a day only", daemon.ExpireAfter(1),
			map[int]time.Time{0: now.Add(-2 * day), 1: now.Add(-12 * time.Hour), 2: now.Add(-day - time.Second)},
			[]string{"RETR 2", "RETR 4"}, []int{0, 2}, []int{1, 3}},
		{"1: DELE and expiry together", daemon.ExpireAfter(1), map[int]time.Time{0: now.Add(-2 * day)},
			[]string{"DELE 1", "DELE 2"}, []int{0, 1}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pb := &policyBackend{memBackend: newMemBackend(),
				policy: map[string]daemon.UserPolicy{"alice": {Expire: tt.expire}},
				first:  map[string]map[int]time.Time{"alice": tt.first}}
			pb.addUser("alice", "pw", msgs()...)
			ts := startServerWith(t, pb, func(c *daemon.Config) { c.Now = func() time.Time { return now } })
			c := ts.login(t, "alice", "pw")
			for _, cmd := range tt.cmds {
				c.send(cmd)
				if l := c.line(); !strings.HasPrefix(l, "+OK") {
					t.Fatalf("%s: %q", cmd, l)
				}
				if strings.HasPrefix(cmd, "RETR") || strings.HasPrefix(cmd, "TOP") {
					c.body()
				}
			}
			c.send("QUIT")
			c.line()
			rec := waitFor(t, pb.commits, "commit")
			if !slices.Equal(rec.deleted, tt.deleted) || !slices.Equal(rec.retrieved, tt.retrieved) {
				t.Fatalf("Commit(deleted %v, retrieved %v), want (%v, %v)", rec.deleted, rec.retrieved, tt.deleted, tt.retrieved)
			}
			if tt.expire.Set {
				ts.waitLog(t, "expired=")
			}
		})
	}
}

func TestPolicyRefusals(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		answer  string
		log     string
		penalty bool // the client address's failure delay grows
	}{
		{"disabled account", &daemon.Error{Code: daemon.CodeAuth, Text: "moved to imap.example.com", Reason: "account disabled", Verified: true},
			"-ERR [AUTH] moved to imap.example.com", `msg="login refused" remote_ip=127.0.0.1 user=alice mech=USER reason="account disabled"`, false},
		{"login delay", &daemon.Error{Code: daemon.CodeLoginDelay, Text: "wait 42 seconds", Reason: "login delay", Verified: true},
			"-ERR [LOGIN-DELAY] wait 42 seconds", `msg="login refused" remote_ip=127.0.0.1 user=alice mech=USER reason="login delay"`, false},
		{"network not allowed", &daemon.Error{Code: daemon.CodeAuth, Text: "authentication failed", Reason: "network not allowed"},
			"-ERR [AUTH] authentication failed", `msg="login failed" remote_ip=127.0.0.1 user=alice mech=USER reason="network not allowed"`, true},
		{"mailbox unavailable", &daemon.Error{Code: daemon.CodeSysPerm, Text: "mailbox unavailable"},
			"-ERR [SYS/PERM] mailbox unavailable", `msg="login error"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newMemBackend()
			b.addUser("alice", "pw")
			b.loginErr["alice"] = tt.err
			ts := startServer(t, b, daemon.ModePlain, nil)
			c := ts.dial(t)
			c.cmd("USER alice", "+OK")
			c.cmd("PASS pw", tt.answer)
			ts.waitLog(t, tt.log)
			base := testConfig().AuthFailureDelay
			got := ts.srv.PenaltyDelay(netip.MustParseAddr("127.0.0.1"))
			if tt.penalty != (got > base) {
				t.Errorf("penalty after %s: delay %v (base %v)", tt.name, got, base)
			}
			if strings.Contains(tt.log, "refused") && strings.Contains(ts.logs.String(), `msg="login failed"`) {
				t.Errorf("a verified refusal was logged as a failed login:\n%s", ts.logs.String())
			}
		})
	}
}

// Failures on several connections from one address add up; a success
// resets them.
func TestPenaltyAcrossConnections(t *testing.T) {
	b := newMemBackend()
	b.addUser("alice", "pw")
	ts := startServer(t, b, daemon.ModePlain, func(c *daemon.Config) { c.AuthFailureDelay = time.Millisecond })
	ip := netip.MustParseAddr("127.0.0.1")
	for i, want := range []time.Duration{2, 4, 8} {
		c := ts.dial(t)
		c.cmd("USER alice", "+OK")
		c.cmd("PASS wrong", "-ERR [AUTH] authentication failed")
		c.cmd("QUIT", "+OK bye")
		if got := ts.srv.PenaltyDelay(ip); got != want*time.Millisecond {
			t.Fatalf("after %d failures: %v, want %v", i+1, got, want*time.Millisecond)
		}
	}
	ts.login(t, "alice", "pw")
	if got := ts.srv.PenaltyDelay(ip); got != time.Millisecond {
		t.Fatalf("after a success: %v", got)
	}
}

var challengeRE = regexp.MustCompile(`^\+OK POP3 server ready (<[0-9]+\.[0-9a-f]{16}\.[0-9]+@[^<> ]+>)$`)

func TestAPOP(t *testing.T) {
	pb := &policyBackend{memBackend: newMemBackend()}
	pb.addUser("alice", "tanstaaf", memMessage{data: []byte("hi\n")})
	ts := startServerWith(t, pb, func(c *daemon.Config) { c.APOP = true; c.Hostname = "pop.example" })
	greet := func() (*client, string) {
		c := ts.dialNoGreeting(t)
		l := c.line()
		m := challengeRE.FindStringSubmatch(l)
		if m == nil || !strings.HasSuffix(m[1], "@pop.example>") {
			t.Fatalf("greeting %q has no APOP timestamp", l)
		}
		return c, m[1]
	}
	digest := func(ts, secret string) string {
		s := md5.Sum([]byte(ts + secret))
		return hex.EncodeToString(s[:])
	}
	c, ch := greet()
	c2, ch2 := greet()
	if ch == ch2 {
		t.Fatalf("two sessions share the timestamp %s", ch)
	}
	c.cmd("APOP alice "+digest(ch, "tanstaaf"), "+OK maildrop has 1 messages (4 octets)")
	// The other session's timestamp does not work here (no replay).
	c2.cmd("APOP alice "+digest(ch, "tanstaaf"), "-ERR [AUTH] authentication failed")
	c2.cmd("APOP alice", "-ERR APOP takes two arguments: the user name and the digest")
	ts.waitLog(t, `msg="login failed" remote_ip=127.0.0.1 user=alice mech=APOP`)
	// APOP is no capability: CAPA is unchanged.
	c2.cmd("CAPA", "+OK capability list follows")
	for _, l := range c2.multi() {
		if strings.Contains(l, "APOP") {
			t.Errorf("CAPA lists %q", l)
		}
	}
	c.cmd("APOP alice x", "-ERR already logged in")

	// Without apop = yes: plain greeting, APOP refused.
	ts2 := startServerWith(t, pb, nil)
	d := ts2.dial(t)
	d.cmd("APOP alice "+digest(ch, "tanstaaf"), "-ERR APOP is not available")
}
