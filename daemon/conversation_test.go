package daemon_test

import (
	"encoding/base64"
	"log/slog"
	"strings"
	"testing"

	"github.com/pop3d/pop3d/daemon"
	"github.com/pop3d/pop3d/internal/pop3test"
)

// TestConversationLog: at debug level every command line and every status
// line is logged, secrets masked, message contents never.
func TestConversationLog(t *testing.T) {
	const (
		pass    = "s3cr3t-Pa55"
		content = "UNIQUE-BODY-MARKER"
	)
	b := newMemBackend()
	b.addUser("alice", pass, memMessage{data: []byte("Subject: hello\n\n" + content + "\n")})
	ts := startServer(t, b, daemon.ModePlain, nil)

	c := ts.login(t, "alice", pass)
	c.send("RETR 1")
	c.expect("+OK 38 octets")
	c.body()
	c.send("CAPA")
	c.line()
	c.multi()
	c.cmd("QUIT", "+OK bye (0 messages deleted)")
	c.expectClosed()

	plain := pop3test.PlainResponse("alice", pass)
	c = ts.dial(t)
	c.send("AUTH PLAIN " + plain)
	c.line()
	c.send("QUIT")
	c.line()
	c.expectClosed()

	c = ts.dial(t)
	c.send("AUTH PLAIN")
	c.expect("+ ")
	c.send(plain)
	c.line()
	c.send("QUIT")
	c.line()
	c.expectClosed()

	c = ts.dial(t)
	c.send("pass\t" + pass)
	c.line()
	c.send("APOP alice 0123456789abcdef" + pass)
	c.line()
	c.send("AUTH PLAIN")
	c.expect("+ ")
	c.send("*")
	c.line()
	c.send("QUIT")
	c.line()
	c.expectClosed()
	ts.waitLog(t, "disconnect")

	logs := ts.logs.String()
	for _, secret := range []string{pass, plain, base64.StdEncoding.EncodeToString([]byte(pass)), content, "Subject: hello", "PIPELINING"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains %q:\n%s", secret, logs)
		}
	}
	for _, want := range []string{
		`msg=command remote_ip=127.0.0.1 line="USER alice"`,
		`msg=command remote_ip=127.0.0.1 line="PASS ***"`,
		`msg=response remote_ip=127.0.0.1 line="+OK maildrop has 1 messages (38 octets)"`,
		`msg=command remote_ip=127.0.0.1 line="RETR 1"`,
		`msg=response remote_ip=127.0.0.1 line="+OK 38 octets"`,
		`msg=response remote_ip=127.0.0.1 line="+OK capability list follows"`,
		`msg=command remote_ip=127.0.0.1 line="AUTH PLAIN ***"`,
		`msg=command remote_ip=127.0.0.1 line="AUTH PLAIN"`,
		`msg=response remote_ip=127.0.0.1 line="+ "`,
		`msg="sasl response" remote_ip=127.0.0.1 line=***`,
		`msg="sasl response" remote_ip=127.0.0.1 line=*`,
		`msg=command remote_ip=127.0.0.1 line=pass***`,
		`msg=command remote_ip=127.0.0.1 line="APOP alice ***"`,
		`msg=response remote_ip=127.0.0.1 line="+OK POP3 server ready"`,
		`msg=response remote_ip=127.0.0.1 line="+OK bye (0 messages deleted)"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
}

// TestConversationLogOff: above debug level nothing of the conversation is
// logged.
func TestConversationLogOff(t *testing.T) {
	b := newMemBackend()
	b.addUser("alice", "pw", memMessage{data: []byte("x\n")})
	ts := startServerLevel(t, b, daemon.ModePlain, nil, slog.LevelInfo)
	c := ts.login(t, "alice", "pw")
	c.cmd("QUIT", "+OK bye (0 messages deleted)")
	c.expectClosed()
	ts.waitLog(t, "disconnect")
	if logs := ts.logs.String(); strings.Contains(logs, "msg=command") || strings.Contains(logs, "msg=response") {
		t.Errorf("conversation logged at info level:\n%s", logs)
	}
}
