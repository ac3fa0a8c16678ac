package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/pop3d/pop3d/internal/pop3test"
	"github.com/pop3d/pop3d/internal/wireform"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// fetchmailRun is one fetchmail invocation against srv with an rcfile in a
// private HOME; the MDA stores each message as a file in out.
type fetchmailRun struct {
	home, rc, idfile, out string
}

func newFetchmail(t *testing.T, addr string, rcExtra string) *fetchmailRun {
	t.Helper()
	return newFetchmailUser(t, addr, alice, alicePass, rcExtra)
}

// newFetchmailUser is newFetchmail for another account.
func newFetchmailUser(t *testing.T, addr, user, pass, rcExtra string) *fetchmailRun {
	t.Helper()
	requireTool(t, "fetchmail")
	home := t.TempDir()
	f := &fetchmailRun{home: home, rc: filepath.Join(home, ".fetchmailrc"), idfile: filepath.Join(home, "fetchids"), out: filepath.Join(home, "out")}
	if err := os.Mkdir(f.out, 0o700); err != nil {
		t.Fatal(err)
	}
	mda, err := filepath.Abs("testdata/mda.sh")
	if err != nil {
		t.Fatal(err)
	}
	host, port := splitHostPort(t, addr)
	rc := fmt.Sprintf(`set no syslog
set invisible
poll %s service %s protocol POP3 uidl timeout 30
    user "%s" there with password "%s" is "root" here
    mda "%s %s"
    no rewrite
    %s
`, host, port, user, pass, mda, f.out, rcExtra)
	// fetchmail refuses an rcfile others can read.
	writeFile(t, f.rc, []byte(rc), 0o600)
	return f
}

// fetch runs fetchmail with args and returns the messages the MDA got since
// the last call. Exit 1 ("no mail") is not an error.
func (f *fetchmailRun) fetch(t *testing.T, args ...string) [][]byte {
	t.Helper()
	before := map[string]bool{}
	ents, _ := os.ReadDir(f.out)
	for _, e := range ents {
		before[e.Name()] = true
	}
	env := []string{"HOME=" + f.home, "FETCHMAILHOME=" + f.home}
	// As root fetchmail keeps its lock in /var/run whatever FETCHMAILHOME
	// says, so parallel tests would refuse each other: one PID file each.
	all := append([]string{"-f", f.rc, "--idfile", f.idfile, "--pidfile", filepath.Join(f.home, "fetchmail.pid"), "--nodetach", "-v"}, args...)
	out, stderr, err := runCmdErr(2*time.Minute, env, "fetchmail", all...)
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		t.Fatalf("fetchmail %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	var got [][]byte
	ents, _ = os.ReadDir(f.out)
	for _, e := range ents {
		if before[e.Name()] || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(f.out, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, data)
	}
	t.Logf("fetchmail %s: %d messages", strings.Join(args, " "), len(got))
	return got
}

// sameBodies compares fetched messages with the delivered ones as
// multisets, each side as the client delivers it (norm).
func sameBodies(t *testing.T, who string, got [][]byte, msgs []message, norm func([]byte) []byte) {
	t.Helper()
	var g, w []string
	for _, b := range got {
		g = append(g, string(b))
	}
	for _, m := range msgs {
		w = append(w, string(norm(m.data)))
	}
	sort.Strings(g)
	sort.Strings(w)
	if len(g) != len(w) {
		t.Errorf("%s fetched %d messages, want %d", who, len(g), len(w))
	}
	for i := 0; i < len(g) && i < len(w); i++ {
		if g[i] != w[i] {
			t.Errorf("%s message differs:\n got %q\nwant %q", who, pop3test.Trunc([]byte(g[i])), pop3test.Trunc([]byte(w[i])))
		}
	}
}

// fetchmailForm is what fetchmail 6.4 hands its MDA for a message whose
// RETR octets were W(b): LF line ends and every other CR dropped too
// (stripcr), and an empty line added after a message that has only header
// lines. An empty message is replaced by fetchmail's own notice, which
// fetchmailGot maps back to "".
func fetchmailForm(b []byte) []byte {
	out := bytes.ReplaceAll(toLF(wireform.Reference(b)), []byte("\r"), nil)
	if len(out) > 0 && !bytes.HasPrefix(out, []byte("\n")) && !bytes.Contains(out, []byte("\n\n")) {
		out = append(out, '\n')
	}
	return out
}

// fetchmailGot undoes fetchmail's substitution of a notice for an empty
// message.
func fetchmailGot(msgs [][]byte) [][]byte {
	var out [][]byte
	for _, m := range msgs {
		if bytes.HasPrefix(m, []byte("From: FETCHMAIL-DAEMON\n")) && bytes.Contains(m, []byte("\nSubject: Headerless mail from ")) {
			m = nil
		}
		out = append(out, m)
	}
	return out
}

// TestFetchmail: --keep fetches all and leaves them; with UIDL a second run
// fetches only new mail; a run without --keep deletes from disk.
func TestFetchmail(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	msgs := s.deliverShapes(t, alice)
	srv := startServer(t, s)
	// fetchmail 6.4 tries STLS even when CAPA does not offer it and gives
	// up when it fails, unless told that TLS is not wanted.
	f := newFetchmail(t, srv.addr, "sslproto ''")

	got := f.fetch(t, "--keep")
	sameBodies(t, "fetchmail --keep", fetchmailGot(got), msgs, fetchmailForm)
	if left := listMaildir(t, s.maildir(alice)); len(left) != len(msgs) {
		t.Fatalf("after fetchmail --keep the Maildir holds %d files, want %d: %v", len(left), len(msgs), left)
	}

	// Second run: nothing new, nothing fetched.
	if got := f.fetch(t, "--keep"); len(got) != 0 {
		t.Errorf("second fetchmail --keep run (UIDL) fetched %d old messages", len(got))
	}

	// New mail arrives: only it is fetched.
	fresh := []message{
		s.deliver(t, alice, "new1", []byte("From: new1@example.org\nSubject: new one\nMessage-ID: <new1@e2e>\n\nfresh\n"), false),
		s.deliver(t, alice, "new2", []byte("From: new2@example.org\nSubject: new two\nMessage-ID: <new2@e2e>\n\n.dot\nfresh too\n"), false),
	}
	got = f.fetch(t, "--keep")
	sameBodies(t, "fetchmail --keep after new mail", fetchmailGot(got), fresh, fetchmailForm)

	// Without --keep, --all: everything is fetched and deleted from disk.
	got = f.fetch(t, "--nokeep", "--all")
	sameBodies(t, "fetchmail --nokeep --all", fetchmailGot(got), append(append([]message(nil), msgs...), fresh...), fetchmailForm)
	if left := listMaildir(t, s.maildir(alice)); len(left) != 0 {
		t.Errorf("after fetchmail --nokeep the Maildir still holds %v", left)
	}
	if _, ok := srv.waitLog(func(l logLine) bool {
		return l["msg"] == "update" && l["deleted"] == fmt.Sprint(len(msgs)+len(fresh))
	}, 5*time.Second); !ok {
		t.Errorf("no update line with deleted=%d", len(msgs)+len(fresh))
	}
}

// TestFetchmailTLS: fetchmail over pop3s and STLS, checking the server
// certificate against the test CA (fetchmail matches DNS names only, not IP
// addresses, hence sslcommonname).
func TestFetchmailTLS(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	msgs := s.deliverShapes(t, alice)
	srv := startTLSServer(t, s)

	f := newFetchmail(t, srv.tlsAdr, fmt.Sprintf("ssl sslcertck sslcertfile %q sslcommonname localhost", s.caFile))
	sameBodies(t, "fetchmail ssl", fetchmailGot(f.fetch(t, "--keep")), msgs, fetchmailForm)

	f = newFetchmail(t, srv.addr, fmt.Sprintf("sslproto tls1.2+ sslcertck sslcertfile %q sslcommonname localhost", s.caFile))
	sameBodies(t, "fetchmail stls", fetchmailGot(f.fetch(t, "--keep")), msgs, fetchmailForm)
	if !strings.Contains(srv.stderr.String(), "tls=true") {
		t.Error("no login line with tls=true after fetchmail over TLS")
	}
	if bytes.Contains([]byte(srv.stderr.String()), []byte(alicePass)) {
		t.Error("the log contains the password")
	}
}
