package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mpopRun is an mpop account in its own HOME, delivering into a Maildir.
type mpopRun struct {
	home, rc, maildir string
}

// newMpop writes an mpoprc for alice on addr with the site's CA as the
// trust file; mode is "plain", "starttls" or "tls".
func newMpop(t *testing.T, s *site, addr, mode string, keep bool) *mpopRun {
	t.Helper()
	requireTool(t, "mpop")
	home := t.TempDir()
	m := &mpopRun{home: home, rc: filepath.Join(home, "mpoprc"), maildir: filepath.Join(home, "Maildir")}
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(m.maildir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	host, port := splitHostPort(t, addr)
	tls := map[string]string{"plain": "tls off", "starttls": "tls on\ntls_starttls on", "tls": "tls on\ntls_starttls off"}[mode]
	onOff := map[bool]string{true: "on", false: "off"}
	rc := fmt.Sprintf(`defaults
timeout 30
%s
tls_trust_file %s
pipelining on
received_header off
uidls_file %s

account alice
host %s
port %s
user %s
password %s
auth user
delivery maildir %s
keep %s
`, tls, s.caFile, filepath.Join(home, "uidls"), host, port, alice, alicePass, m.maildir, onOff[keep])
	writeFile(t, m.rc, []byte(rc), 0o600)
	return m
}

// fetch runs mpop once and returns how many messages it says it retrieved.
func (m *mpopRun) fetch(t *testing.T) string {
	t.Helper()
	out := runCmd(t, time.Minute, []string{"HOME=" + m.home}, "mpop", "-C", m.rc, "--debug", "alice")
	return string(out)
}

// TestMpop: mpop, a fetcher that pipelines everything, fetches over plain,
// STLS and implicit TLS (trust file = the test CA), byte exact, with keep
// (a second run fetches nothing, a message delivered in between is fetched
// alone) and without (the messages are deleted from the Maildir).
func TestMpop(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"plain", "starttls", "tls"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			timed(t, "mpop "+mode)
			s := newSite(t)
			msgs := s.deliverClientMail(t, alice)
			srv := startTLSServer(t, s, "-log-level", "debug")
			addr := srv.addr
			if mode == "tls" {
				addr = srv.tlsAdr
			}

			m := newMpop(t, s, addr, mode, true)
			out := m.fetch(t)
			if !strings.Contains(out, "PIPELINING") {
				t.Errorf("mpop did not see PIPELINING in CAPA:\n%s", out)
			}
			sameMail(t, "mpop", readMaildirFiles(t, m.maildir), dataOf(msgs, asLF))
			mustBeKept(t, s, alice, msgs)

			// Second run: nothing new.
			m.fetch(t)
			if n := len(readMaildirFiles(t, m.maildir)); n != len(msgs) {
				t.Errorf("second run with keep: %d messages stored, want still %d", n, len(msgs))
			}
			// A message delivered in between is fetched alone.
			late := s.deliver(t, alice, "late", lateMail, false)
			m.fetch(t)
			sameMail(t, "mpop after a late delivery", readMaildirFiles(t, m.maildir), dataOf(append(msgs, late), asLF))

			// Without keep: all fetched again by a fresh mpop, then deleted.
			d := newMpop(t, s, addr, mode, false)
			d.fetch(t)
			sameMail(t, "mpop without keep", readMaildirFiles(t, d.maildir), dataOf(append(msgs, late), asLF))
			mustBeGone(t, s, alice, append(msgs, late))
			conversationLogged(t, srv)
		})
	}
}
