package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Thunderbird's socket types (nsMsgSocketType).
const (
	tbPlain    = 0
	tbStartTLS = 2
	tbSSL      = 3
)

// tbProfile is a fresh Thunderbird profile with one POP3 account for
// alice, its password in logins.json and the site's test CA trusted.
type tbProfile struct {
	dir   string
	inbox string // the account's Inbox mbox
}

func newTBProfile(t *testing.T, s *site, addr string, socketType int, leaveOnServer bool) *tbProfile {
	t.Helper()
	requireTool(t, "thunderbird")
	requireTool(t, "certutil")
	requireTool(t, "python3")
	dir := t.TempDir()
	host, port := splitHostPort(t, addr)
	mail := filepath.Join(dir, "Mail", host)
	local := filepath.Join(dir, "Mail", "Local Folders")
	p := &tbProfile{dir: dir, inbox: filepath.Join(mail, "Inbox")}
	prefs := []string{
		// One POP3 account and the Local Folders every profile has.
		`"mail.accountmanager.accounts", "account1,account2"`,
		`"mail.accountmanager.defaultaccount", "account1"`,
		`"mail.accountmanager.localfoldersserver", "server2"`,
		`"mail.account.account1.server", "server1"`,
		`"mail.account.account1.identities", "id1"`,
		`"mail.account.account2.server", "server2"`,
		`"mail.identity.id1.fullName", "Alice"`,
		`"mail.identity.id1.useremail", "alice@example.org"`,
		`"mail.identity.id1.valid", true`,
		`"mail.server.server1.type", "pop3"`,
		`"mail.server.server1.name", "alice@` + host + `"`,
		`"mail.server.server1.hostname", "` + host + `"`,
		`"mail.server.server1.port", ` + port,
		`"mail.server.server1.userName", "` + alice + `"`,
		fmt.Sprintf(`"mail.server.server1.socketType", %d`, socketType),
		`"mail.server.server1.authMethod", 3`, // normal password
		`"mail.server.server1.directory", "` + mail + `"`,
		`"mail.server.server1.login_at_startup", true`,
		// Without it Thunderbird only checks and downloads nothing.
		`"mail.server.server1.download_on_biff", true`,
		fmt.Sprintf(`"mail.server.server1.leave_on_server", %v`, leaveOnServer),
		`"mail.server.server1.deferred_to_account", ""`,
		`"mail.server.server1.check_new_mail", false`,
		`"mail.server.server2.type", "none"`,
		`"mail.server.server2.name", "Local Folders"`,
		`"mail.server.server2.hostname", "Local Folders"`,
		`"mail.server.server2.userName", "nobody"`,
		`"mail.server.server2.directory", "` + local + `"`,
		// No first-run pages, update checks, telemetry or dialogs.
		`"mail.shell.checkDefaultClient", false`,
		`"mail.provider.enabled", false`,
		`"mail.startup.enabledMailCheckOnce", true`,
		`"mail.rights.version", 1`,
		`"mailnews.start_page.enabled", false`,
		`"mail.spotlight.firstRunDone", true`,
		`"mail.biff.show_alert", false`,
		`"mail.biff.play_sound", false`,
		`"app.update.auto", false`,
		`"app.update.disabledForTesting", true`,
		`"datareporting.policy.dataSubmissionEnabled", false`,
		`"datareporting.healthreport.uploadEnabled", false`,
		`"toolkit.telemetry.enabled", false`,
		`"extensions.update.enabled", false`,
		`"network.proxy.type", 0`,
		`"browser.shell.checkDefaultBrowser", false`,
		// Nothing that costs time after the fetch: no indexing, no
		// network services beyond the POP3 server.
		`"mailnews.database.global.indexer.enabled", false`,
		`"network.connectivity-service.enabled", false`,
		`"network.captive-portal-service.enabled", false`,
		`"browser.safebrowsing.malware.enabled", false`,
		`"browser.safebrowsing.phishing.enabled", false`,
		`"extensions.getAddons.cache.enabled", false`,
		`"extensions.autoDisableScopes", 15`,
		`"toolkit.telemetry.unified", false`,
		`"calendar.integration.notify", false`,
	}
	var js strings.Builder
	for _, pr := range prefs {
		js.WriteString("user_pref(" + pr + ");\n")
	}
	writeFile(t, filepath.Join(dir, "user.js"), []byte(js.String()), 0o600)
	runCmd(t, 30*time.Second, nil, "certutil", "-N", "-d", "sql:"+dir, "--empty-password")
	runCmd(t, 30*time.Second, nil, "certutil", "-A", "-d", "sql:"+dir, "-n", "pop3d test CA", "-t", "C,,", "-i", s.caFile)
	helper, err := filepath.Abs("testdata/tb_login.py")
	if err != nil {
		t.Fatal(err)
	}
	runCmd(t, 30*time.Second, nil, "python3", helper, dir, "mailbox://"+host, alice, alicePass)
	return p
}

// fetch runs Thunderbird headless on the profile until the POP3 session
// with pop3d ended (pop3d logged the disconnect of the session it started)
// and stops it.
func (p *tbProfile) fetch(t *testing.T, srv *server, want int) {
	t.Helper()
	before := len(srv.logLines())
	logFile := filepath.Join(p.dir, "moz.log")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "thunderbird", "--headless", "-profile", p.dir, "--no-remote")
	cmd.Env = append(cleanEnv(), "HOME="+p.dir, "MOZ_LOG=POP3:5", "MOZ_LOG_FILE="+logFile,
		"MOZ_CRASHREPORTER_DISABLE=1", "TMPDIR="+p.dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
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
	var err error
	deadline := time.After(90 * time.Second)
wait:
	for !ended() || len(p.messages(t)) < want {
		select {
		case err = <-done:
			break wait
		case <-deadline:
			break wait
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Logf("Thunderbird fetched in %s (connected after %s)", time.Since(started).Round(10*time.Millisecond), connectedAfter(srv, before, started))
	cmd.Process.Kill()
	if err == nil {
		<-done
	}
	if !ended() {
		mozlog, _ := os.ReadFile(logFile + ".moz_log")
		if len(mozlog) == 0 {
			mozlog, _ = os.ReadFile(logFile)
		}
		t.Fatalf("Thunderbird's POP3 session did not end (exit %v):\n%s\nMOZ_LOG:\n%s", err, out.String(), tail(mozlog, 4000))
	}
}

// connectedAfter is how long after start pop3d logged the first connection
// since log line from.
func connectedAfter(srv *server, from int, start time.Time) time.Duration {
	for _, l := range srv.logLines()[from:] {
		if l["msg"] == "connect" {
			if ts, err := time.Parse(time.RFC3339Nano, l["time"]); err == nil {
				return ts.Sub(start).Round(10 * time.Millisecond)
			}
		}
	}
	return 0
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// mboxFromLine is the separator line Thunderbird writes before each message.
var mboxFromLine = regexp.MustCompile(`(?m)^From - .*\r?\n`)

// messages splits the Inbox mbox into messages, without the separator
// lines and the X-Mozilla-* headers Thunderbird adds, ">From " unescaped.
func (p *tbProfile) messages(t *testing.T) [][]byte {
	t.Helper()
	data, err := os.ReadFile(p.inbox)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	idx := mboxFromLine.FindAllIndex(data, -1)
	for i, loc := range idx {
		end := len(data)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		out = append(out, data[loc[1]:end])
	}
	return out
}

// tbHeaders are the header lines Thunderbird adds to a message it stores.
var tbHeaders = []string{"X-Account-Key", "X-UIDL", "X-Mozilla-Status", "X-Mozilla-Status2", "X-Mozilla-Keys"}

// escapedFrom is a "From " line escaped by the mbox writer.
var escapedFrom = regexp.MustCompile(`(?m)^>From `)

// tbNorm turns a message from the mbox back into what was fetched: without
// the headers Thunderbird adds, without the line ending it puts between
// messages, "From " lines unescaped. What remains must be W(file) with LF
// line ends.
func tbNorm(m []byte) []byte {
	m = stripHeaders(m, tbHeaders...)
	if bytes.HasSuffix(m, []byte("\n\r\n")) {
		m = m[:len(m)-2]
	}
	return escapedFrom.ReplaceAll(m, []byte("From "))
}

// tbUIDLs returns the X-UIDL headers of the stored messages.
func tbUIDLs(msgs [][]byte) []string {
	var out []string
	re := regexp.MustCompile(`(?m)^X-UIDL: (\S+)\r?$`)
	for _, m := range msgs {
		if u := re.FindSubmatch(m); u != nil {
			out = append(out, string(u[1]))
		}
	}
	return out
}

// lastUpdate returns pop3d's last "update" log line for alice.
func lastUpdate(srv *server) logLine {
	var last logLine
	for _, l := range srv.logLines() {
		if l["msg"] == "update" && l["user"] == alice {
			last = l
		}
	}
	return last
}

// TestThunderbird: Thunderbird (headless, a fresh profile, the password in
// logins.json, the test CA trusted in its NSS database) fetches over plain
// TCP, STLS and implicit TLS into its Inbox mbox, byte exact. With
// leave-on-server a second run fetches nothing and a message delivered in
// between is fetched alone; without it the messages are DELEted and gone
// from the Maildir.
func TestThunderbird(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		socketType int
		keep       bool
	}{
		{"plain keep", tbPlain, true},
		{"starttls delete", tbStartTLS, false},
		{"tls keep", tbSSL, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			timed(t, "Thunderbird "+tt.name)
			s := newSite(t)
			msgs := s.deliverClientMail(t, alice)
			srv := startTLSServer(t, s, "-log-level", "debug")
			addr := srv.addr
			if tt.socketType == tbSSL {
				addr = srv.tlsAdr
			}
			p := newTBProfile(t, s, addr, tt.socketType, tt.keep)
			p.fetch(t, srv, len(msgs))
			got := p.messages(t)
			norm := make([][]byte, len(got))
			for i, m := range got {
				norm[i] = tbNorm(m)
			}
			sameMail(t, "Thunderbird", norm, dataOf(msgs, asLF))
			conversationLogged(t, srv)
			var uniqs []string
			for _, m := range msgs {
				uniqs = append(uniqs, m.uniq)
			}
			if u := tbUIDLs(got); strings.Join(u, " ") != strings.Join(uniqs, " ") {
				t.Errorf("X-UIDL headers %q, want the unique names %q", u, uniqs)
			}
			login, _ := srv.waitLog(func(l logLine) bool { return l["msg"] == "login" }, time.Second)
			if wantTLS := fmt.Sprint(tt.socketType != tbPlain); login["tls"] != wantTLS {
				t.Errorf("login line %v, want tls=%s", login, wantTLS)
			}
			if !tt.keep {
				if u := lastUpdate(srv); u["deleted"] != fmt.Sprint(len(msgs)) {
					t.Errorf("update line %v, want deleted=%d", u, len(msgs))
				}
				mustBeGone(t, s, alice, msgs)
				return
			}
			mustBeKept(t, s, alice, msgs)
			if tt.socketType != tbPlain {
				return
			}
			// Second run: nothing new, nothing fetched.
			p.fetch(t, srv, len(msgs))
			if u := lastUpdate(srv); u["retrieved"] != "0" {
				t.Errorf("second run: update line %v, want retrieved=0", u)
			}
			if n := len(p.messages(t)); n != len(msgs) {
				t.Errorf("second run stored %d messages, want still %d", n, len(msgs))
			}
			// A message delivered in between is fetched alone.
			late := s.deliver(t, alice, "late", lateMail, false)
			p.fetch(t, srv, len(msgs)+1)
			if u := lastUpdate(srv); u["retrieved"] != "1" {
				t.Errorf("third run: update line %v, want retrieved=1", u)
			}
			got = p.messages(t)
			norm = norm[:0]
			for _, m := range got {
				norm = append(norm, tbNorm(m))
			}
			sameMail(t, "Thunderbird after a late delivery", norm, dataOf(append(msgs, late), asLF))
		})
	}
}
