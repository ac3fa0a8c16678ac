package daemon_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pop3d/pop3d/daemon"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestAuthPlain(t *testing.T) {
	ts := startServer(t, aliceBackend(), daemon.ModePlain, nil)
	total := sizeOf(msg1) + sizeOf(msg2) + sizeOf(msg3)
	ok := fmt.Sprintf("+OK maildrop has 3 messages (%d octets)", total)
	tests := []struct {
		name  string
		steps []step
	}{
		{"initial response", []step{one("AUTH PLAIN "+b64("\x00alice\x00secret"), ok)}},
		{"mechanism case-insensitive", []step{one("auth plain "+b64("\x00alice\x00secret"), ok)}},
		{"authzid equal to authcid", []step{one("AUTH PLAIN "+b64("alice\x00alice\x00secret"), ok)}},
		{"continuation", []step{one("AUTH PLAIN", "+ "), one(b64("\x00alice\x00secret"), ok)}},
		{"password with spaces", []step{one("AUTH PLAIN "+b64("\x00bob\x00 two  words "), "+OK maildrop has 0 messages (0 octets)")}},
		{"cancel", []step{one("AUTH PLAIN", "+ "), one("*", "-ERR authentication cancelled"), one("AUTH PLAIN "+b64("\x00alice\x00secret"), ok)}},
		{"empty initial response", []step{one("AUTH PLAIN =", "-ERR malformed PLAIN response")}},
		{"empty continuation", []step{one("AUTH PLAIN", "+ "), one("", "-ERR malformed PLAIN response")}},
		{"bad base64", []step{one("AUTH PLAIN !!!!", "-ERR invalid base64 in SASL response")}},
		{"bad base64 padding", []step{one("AUTH PLAIN "+strings.TrimRight(b64("\x00alice\x00secret"), "="), "-ERR invalid base64 in SASL response")}},
		{"bad base64 in continuation", []step{one("AUTH PLAIN", "+ "), one("@@@", "-ERR invalid base64 in SASL response")}},
		{"one NUL", []step{one("AUTH PLAIN "+b64("alice\x00secret"), "-ERR malformed PLAIN response")}},
		{"three NULs", []step{one("AUTH PLAIN "+b64("\x00alice\x00sec\x00ret"), "-ERR malformed PLAIN response")}},
		{"empty authcid", []step{one("AUTH PLAIN "+b64("\x00\x00secret"), "-ERR malformed PLAIN response")}},
		{"other authzid", []step{one("AUTH PLAIN "+b64("bob\x00alice\x00secret"), "-ERR [AUTH] logging in as another user is not supported")}},
		{"wrong password", []step{one("AUTH PLAIN "+b64("\x00alice\x00wrong"), "-ERR [AUTH] authentication failed")}},
		{"unknown user", []step{one("AUTH PLAIN "+b64("\x00nobody\x00wrong"), "-ERR [AUTH] authentication failed")}},
		{"in use", []step{one("AUTH PLAIN "+b64("\x00carol\x00pw"), "-ERR [IN-USE] mailbox locked by another session")}},
		{"too many arguments", []step{one("AUTH PLAIN a b", "-ERR too many arguments")}},
		{"probing mechanisms is not a bad command", []step{
			one("AUTH LOGIN", "-ERR unsupported SASL mechanism"),
			one("AUTH NTLM", "-ERR unsupported SASL mechanism"),
			one("AUTH CRAM-MD5", "-ERR unsupported SASL mechanism"),
			one("AUTH GSSAPI", "-ERR unsupported SASL mechanism"),
			one("AUTH PLAIN "+b64("\x00alice\x00secret"), ok),
		}},
		{"continuation too long", []step{
			one("AUTH PLAIN", "+ "),
			one(strings.Repeat("A", 9000), "-ERR SASL response too long"),
			one("AUTH PLAIN "+b64("\x00alice\x00secret"), ok),
		}},
		{"continuation of 6000 octets is read whole", []step{
			one("AUTH PLAIN", "+ "),
			one(b64("\x00alice\x00"+strings.Repeat("p", 4500)), "-ERR [AUTH] authentication failed"),
		}},
		{"NUL in continuation", []step{one("AUTH PLAIN", "+ "), one("AA\x00A", "-ERR NUL byte in SASL response")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run(t, ts.dial(t), tt.steps)
		})
	}
	ts.waitLog(t, `msg=login remote_ip=127.0.0.1 session=ID user=alice mech=PLAIN tls=false messages=3`)
	ts.waitLog(t, `msg="login failed" remote_ip=127.0.0.1 session=ID user=nobody mech=PLAIN reason="bad credentials"`)
	if strings.Contains(ts.logs.String(), "secret") || strings.Contains(ts.logs.String(), "wrong") {
		t.Errorf("a password reached the log:\n%s", ts.logs.String())
	}
}

func TestAuthFailureDelayAndLimit(t *testing.T) {
	const delay = 300 * time.Millisecond
	ts := startServer(t, aliceBackend(), daemon.ModePlain, func(c *daemon.Config) { c.AuthFailureDelay = delay })
	c := ts.dial(t)

	// Another session is answered while this one waits out its delay.
	start := time.Now()
	c.send("USER alice\r\nPASS wrong")
	c.expect("+OK")
	other := ts.dial(t)
	other.cmd("NOOP", "-ERR not logged in")
	otherDone := time.Since(start)
	c.expect("-ERR [AUTH] authentication failed")
	if el := time.Since(start); el < delay {
		t.Errorf("failure answered after %v, before the %v delay", el, delay)
	}
	if otherDone >= delay {
		t.Errorf("another session waited for this one's failure delay (%v)", otherDone)
	}

	c.cmd("AUTH PLAIN "+b64("\x00alice\x00wrong"), "-ERR [AUTH] authentication failed")
	c.cmd("USER nobody", "+OK")
	c.cmd("PASS x", "-ERR [AUTH] too many authentication failures")
	c.expectClosed()
	ts.waitLog(t, `msg="login failed" remote_ip=127.0.0.1 session=ID user=nobody mech=USER reason="bad credentials"`)

	// Failures are per connection.
	c = ts.dial(t)
	c.cmd("USER alice", "+OK")
	c.send("PASS secret")
	if l := c.line(); !strings.HasPrefix(l, "+OK maildrop") {
		t.Fatalf("login after another connection's failures: %q", l)
	}
}

func TestAuthUnlimitedFailures(t *testing.T) {
	ts := startServer(t, aliceBackend(), daemon.ModePlain, func(c *daemon.Config) {
		c.MaxAuthFailures = 0
		c.AuthFailureDelay = 0
	})
	c := ts.dial(t)
	for range 10 {
		c.cmd("USER alice", "+OK")
		c.cmd("PASS wrong", "-ERR [AUTH] authentication failed")
	}
}
