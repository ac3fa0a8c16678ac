package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Claws Mail's SSL modes for POP3 (ssl_pop).
const (
	clawsPlain    = 0
	clawsTunnel   = 1 // implicit TLS, port 995
	clawsStartTLS = 2
)

// clawsRun is a Claws Mail configuration directory with one POP3 account
// for alice delivering into an MH inbox, and the server certificate pinned.
type clawsRun struct {
	home, cfg, inbox string
}

func newClaws(t *testing.T, s *site, addr string, ssl int, keep bool) *clawsRun {
	t.Helper()
	requireTool(t, "claws-mail")
	requireTool(t, "xvfb-run")
	home := t.TempDir()
	c := &clawsRun{home: home, cfg: filepath.Join(home, "claws"), inbox: filepath.Join(home, "Mail", "inbox")}
	host, port := splitHostPort(t, addr)
	for _, d := range []string{"inbox", "outbox", "draft", "queue", "trash"} {
		if err := os.MkdirAll(filepath.Join(home, "Mail", d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(c.cfg, "certs"), 0o700); err != nil {
		t.Fatal(err)
	}
	account := fmt.Sprintf(`[Account: 1]
account_name=alice@%[1]s
is_default=1
name=Alice
address=alice@example.org
protocol=0
receive_server=%[1]s
smtp_server=%[1]s
user_id=%[2]s
use_apop_auth=0
remove_mail=%[3]d
message_leave_time=0
filter_on_receive=0
filterhook_on_receive=0
receive_at_get_all=1
inbox=#mh/Mailbox/inbox
local_inbox=#mh/Mailbox/inbox
ssl_pop=%[4]d
use_nonblocking_ssl=1
set_popport=1
pop_port=%[5]s
`, host, alice, map[bool]int{true: 0, false: 1}[keep], ssl, port)
	writeFile(t, filepath.Join(c.cfg, "accountrc"), []byte(account), 0o600)
	// A password that is neither "!old" nor "{cipher,rounds}..." is taken
	// as stored in clear (passwordcrypt.c); the test needs no encryption.
	writeFile(t, filepath.Join(c.cfg, "passwordstorerc"), []byte("[account:1]\nrecv "+alicePass+"\n"), 0o600)
	folders := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<folderlist>
<folder type="mh" name="Mailbox" path="%s" collapsed="0">
<folderitem type="inbox" name="inbox" path="inbox" />
<folderitem type="outbox" name="outbox" path="outbox" />
<folderitem type="draft" name="draft" path="draft" />
<folderitem type="queue" name="queue" path="queue" />
<folderitem type="trash" name="trash" path="trash" />
</folder>
</folderlist>
`, filepath.Join(home, "Mail"))
	writeFile(t, filepath.Join(c.cfg, "folderlist.xml"), []byte(folders), 0o600)
	// The server certificate pinned as DER, as Claws keeps the ones its
	// user accepted.
	pemData, err := os.ReadFile(s.certFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(pemData)
	if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(c.cfg, "certs", host+"."+port+".cert"), blk.Bytes, 0o600)
	return c
}

// fetch runs Claws Mail under xvfb-run with --receive-all until pop3d
// logged the end of its session, then asks it to --exit.
func (c *clawsRun) fetch(t *testing.T, srv *server, want int) {
	t.Helper()
	before := len(srv.logLines())
	env := append(cleanEnv(), "HOME="+c.home, "NO_AT_BRIDGE=1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "xvfb-run", "-a", "claws-mail", "--alternate-config-dir", c.cfg, "--receive-all")
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	ended := func() bool {
		for _, l := range srv.logLines()[before:] {
			if l["msg"] == "disconnect" && l["user"] == alice {
				return true
			}
		}
		return false
	}
	deadline := time.After(60 * time.Second)
	var err error
	exited := false
wait:
	for !ended() || len(c.messages(t)) < want {
		select {
		case err = <-done:
			exited = true
			break wait
		case <-deadline:
			break wait
		case <-time.After(50 * time.Millisecond):
		}
	}
	if !exited {
		// --exit talks to the running instance over its socket.
		ectx, ecancel := context.WithTimeout(context.Background(), 20*time.Second)
		ex := exec.CommandContext(ectx, "claws-mail", "--alternate-config-dir", c.cfg, "--exit")
		ex.Env = env
		ex.Run()
		ecancel()
		select {
		case err = <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			err = <-done
		}
	}
	if !ended() {
		t.Fatalf("Claws Mail's POP3 session did not end (exit %v):\n%s", err, tail(out.Bytes(), 4000))
	}
}

// messages returns the message files of the MH inbox (named by number).
func (c *clawsRun) messages(t *testing.T) [][]byte {
	t.Helper()
	ents, err := os.ReadDir(c.inbox)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, e := range ents {
		if e.IsDir() || strings.Trim(e.Name(), "0123456789") != "" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(c.inbox, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestClawsMail: Claws Mail (under xvfb-run, --receive-all then --exit)
// fetches over plain TCP, STLS and implicit TLS with the server
// certificate pinned, byte exact into its MH inbox; with "remove mail" the
// messages are DELEted and gone from the Maildir.
func TestClawsMail(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		ssl  int
		keep bool
	}{
		{"plain keep", clawsPlain, true},
		{"starttls delete", clawsStartTLS, false},
		{"tls keep", clawsTunnel, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			timed(t, "Claws Mail "+tt.name)
			s := newSite(t)
			msgs := s.deliverClientMail(t, alice)
			srv := startTLSServer(t, s, "-log-level", "debug")
			addr := srv.addr
			if tt.ssl == clawsTunnel {
				addr = srv.tlsAdr
			}
			c := newClaws(t, s, addr, tt.ssl, tt.keep)
			c.fetch(t, srv, len(msgs))
			sameMail(t, "Claws Mail", c.messages(t), dataOf(msgs, asLF))
			conversationLogged(t, srv)
			if tt.keep {
				mustBeKept(t, s, alice, msgs)
			} else {
				mustBeGone(t, s, alice, msgs)
			}
		})
	}
}
