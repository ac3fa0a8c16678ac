package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// muttRun is a mutt setup in its own HOME: the POP3 account on pops://,
// the site's CA trusted, a Maildir spool file and a header cache.
type muttRun struct {
	home, rc, spool, saved string
	url                    string
}

func newMutt(t *testing.T, s *site, tlsAddr string, del bool) *muttRun {
	t.Helper()
	requireTool(t, "mutt")
	requireTool(t, "script")
	home := t.TempDir()
	m := &muttRun{home: home, rc: filepath.Join(home, "muttrc"), spool: filepath.Join(home, "Maildir"),
		saved: filepath.Join(home, "saved"), url: "pops://" + alice + "@" + tlsAddr + "/"}
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(m.spool, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	rc := fmt.Sprintf(`set pop_host="%s"
set pop_pass="%s"
set pop_delete=%s
set mbox_type=Maildir
set spoolfile="%s"
set folder="%s"
set ssl_ca_certificates_file="%s"
set certificate_file="%s"
set header_cache="%s"
set ssl_force_tls=yes
set confirmcreate=no
set confirmappend=no
set quit=yes
set move=no
set mark_old=no
set wait_key=no
set timeout=1
`, m.url, alicePass, map[bool]string{true: "yes", false: "no"}[del], m.spool, home, s.caFile,
		filepath.Join(home, "certs"), filepath.Join(home, "hcache"))
	writeFile(t, m.rc, []byte(rc), 0o600)
	return m
}

// run starts mutt in a pseudo-terminal (script) with the keys to push and
// waits for it to exit.
func (m *muttRun) run(t *testing.T, args ...string) {
	t.Helper()
	cmd := "mutt -n -F " + m.rc
	for _, a := range args {
		cmd += " '" + a + "'"
	}
	runCmd(t, time.Minute, []string{"HOME=" + m.home, "TERM=vt100", "COLUMNS=80", "LINES=24"},
		"script", "-qec", cmd, "/dev/null")
}

// commands returns the command lines pop3d logged (log_level debug) since
// line from of its log.
func commands(srv *server, from int) []string {
	var out []string
	for _, l := range srv.logLines()[from:] {
		if l["msg"] == "command" {
			out = append(out, l["line"])
		}
	}
	return out
}

func countPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// TestMutt: mutt's fetch-mail over pops:// moves the mail into its Maildir
// spool byte exact (and DELEtes it with pop_delete); opening the pops://
// folder lists it from TOP headers kept in the header cache, so a second
// open sends no TOP, and saving from there stores the messages byte exact.
func TestMutt(t *testing.T) {
	t.Parallel()
	t.Run("fetch-mail", func(t *testing.T) {
		t.Parallel()
		timed(t, "mutt fetch-mail")
		s := newSite(t)
		msgs := s.deliverClientMail(t, alice)
		srv := startTLSServer(t, s, "-log-level", "debug")
		m := newMutt(t, s, srv.tlsAdr, true)
		m.run(t, "-e", "push <fetch-mail><quit>")
		sameMail(t, "mutt fetch-mail", readMaildirFiles(t, m.spool), dataOf(msgs, asLF))
		if u := lastUpdate(srv); u["deleted"] != fmt.Sprint(len(msgs)) {
			t.Errorf("update line %v, want deleted=%d", u, len(msgs))
		}
		mustBeGone(t, s, alice, msgs)
		conversationLogged(t, srv)
	})
	t.Run("pops folder", func(t *testing.T) {
		t.Parallel()
		timed(t, "mutt pops folder")
		s := newSite(t)
		msgs := s.deliverClientMail(t, alice)
		srv := startTLSServer(t, s, "-log-level", "debug")
		m := newMutt(t, s, srv.tlsAdr, false)
		from := len(srv.logLines())
		m.run(t, "-f", m.url, "-e", "push <quit>")
		first := commands(srv, from)
		if n := countPrefix(first, "TOP "); n != len(msgs) {
			t.Errorf("first open sent %d TOP commands, want %d: %q", n, len(msgs), first)
		}
		if ents, _ := os.ReadDir(filepath.Join(m.home, "hcache")); len(ents) == 0 {
			if _, err := os.Stat(filepath.Join(m.home, "hcache")); err != nil {
				t.Errorf("no header cache written: %v", err)
			}
		}
		// Second open: the headers come from the cache; save every message.
		from = len(srv.logLines())
		m.run(t, "-f", m.url, "-e", "push <tag-pattern>~A<enter><tag-prefix><copy-message>"+m.saved+"<enter><quit>")
		second := commands(srv, from)
		if n := countPrefix(second, "TOP "); n != 0 {
			t.Errorf("second open sent %d TOP commands despite the header cache: %q", n, second)
		}
		if n := countPrefix(second, "RETR "); n != len(msgs) {
			t.Errorf("saving sent %d RETR commands, want %d: %q", n, len(msgs), second)
		}
		// Copying, mutt adds the Content-Length and Lines headers.
		var saved [][]byte
		for _, b := range readMaildirFiles(t, m.saved) {
			saved = append(saved, stripHeaders(b, "Content-Length", "Lines"))
		}
		sameMail(t, "mutt save from pops://", saved, dataOf(msgs, asLF))
		mustBeKept(t, s, alice, msgs)
	})
}
