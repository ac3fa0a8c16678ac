package maildir

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// needTool returns the path of an external program, or skips the test (fails
// it under CI=true) when it is missing.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found: apt-get install -y %s", name, pkg)
	}
	t.Skipf("%s not found (apt-get install -y %s)", name, pkg)
	return ""
}

// Messages of every shape, delivered by real MDAs.
var mdaMessages = []string{
	"Subject: lf\n\nbody\n",
	"Subject: none\n\nno final newline",
	"Subject: crlf\r\n\r\nbody\r\n.dot\r\n",
	"Subject: cr\n\nbare\rcr\n",
}

// checkDelivered opens dir and checks that every file gives its exact wire
// size and a valid unique id, whatever name the MDA chose.
func checkDelivered(t *testing.T, dir string, n int) {
	t.Helper()
	mb := openMB(t, dir, Options{})
	defer mb.Close()
	if mb.Len() != n {
		t.Fatalf("Len = %d, want %d", mb.Len(), n)
	}
	for i := range mb.Len() {
		body := readMsg(t, mb, i)
		if want := int64(len(wireForm([]byte(body)))); mb.Size(i) != want {
			t.Errorf("message %d (%s): Size %d, want %d", i, mb.name(&mb.msgs[i]), mb.Size(i), want)
		}
		if !uidOK(mb.UID(i)) {
			t.Errorf("message %d: bad UID %q", i, mb.UID(i))
		}
		t.Logf("%s -> UID %s", mb.name(&mb.msgs[i]), mb.UID(i))
	}
}

func TestProcmailDelivery(t *testing.T) {
	procmail := needTool(t, "procmail", "procmail")
	dir := newMaildir(t)
	rc := filepath.Join(filepath.Dir(dir), "procmailrc")
	os.WriteFile(rc, []byte(fmt.Sprintf("MAILDIR=%s\nDEFAULT=%s/\nLOGFILE=%s.log\n", dir, dir, rc)), 0o600)
	for _, m := range mdaMessages {
		cmd := exec.Command(procmail, "-m", rc)
		cmd.Stdin = strings.NewReader(m)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("procmail: %v: %s", err, out)
		}
	}
	checkDelivered(t, dir, len(mdaMessages))
}

func TestMaildropDelivery(t *testing.T) {
	maildrop := needTool(t, "maildrop", "maildrop")
	dir := newMaildir(t)
	rc := filepath.Join(filepath.Dir(dir), "mailfilter")
	os.WriteFile(rc, []byte(fmt.Sprintf("DEFAULT=%q\n", dir)), 0o600)
	for _, m := range mdaMessages {
		cmd := exec.Command(maildrop, rc)
		cmd.Stdin = strings.NewReader(m)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("maildrop: %v: %s", err, out)
		}
	}
	checkDelivered(t, dir, len(mdaMessages))
}

// asNobody runs a program as uid/gid 65534 (Dovecot's LDA refuses to guess
// a user when run as root without its auth service).
func asNobody(t *testing.T, home, stdin string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = []string{"HOME=" + home, "USER=nobody", "PATH=/usr/bin:/bin"}
	cmd.Stdin = strings.NewReader(stdin)
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v: %s", name, args, err, out)
	}
	return string(out)
}

// TestDovecotCoexistence delivers with dovecot-lda (names with ,S= and ,W=),
// serves the Maildir, and has Dovecot look at it again: our files must not
// show as folders, and Dovecot's own files must be left as they were.
func TestDovecotCoexistence(t *testing.T) {
	lda := "/usr/lib/dovecot/dovecot-lda"
	if _, err := os.Stat(lda); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: %v: apt-get install -y dovecot-core", lda, err)
		}
		t.Skipf("%s: %v (apt-get install -y dovecot-core)", lda, err)
	}
	doveadm := needTool(t, "doveadm", "dovecot-core")
	if os.Geteuid() != 0 && os.Geteuid() != 65534 {
		t.Skip("needs root (to run Dovecot as nobody)")
	}
	home := t.TempDir()
	for p := home; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
		os.Chmod(p, 0o755)
	}
	os.Chown(home, 65534, 65534)
	dir := filepath.Join(home, "Maildir")
	conf := filepath.Join(home, "dovecot.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("mail_location = maildir:%s\nlog_path = %s/dovecot.log\nssl = no\n", dir, home)), 0o644)
	for _, m := range mdaMessages {
		asNobody(t, home, m, lda, "-c", conf, "-f", "sender@example.com")
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "new"))
	for _, e := range ents {
		if !strings.Contains(e.Name(), ",W=") {
			t.Errorf("dovecot-lda name without ,W=: %s", e.Name())
		}
	}
	if os.Geteuid() == 0 {
		// Serve it as the owner would (the files are nobody's, 0600).
		filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error { return os.Chown(p, 0, 0) })
	}
	before := tree(t, dir, true)
	checkDelivered(t, dir, len(mdaMessages))
	if after := tree(t, dir, true); !mapsEqual(before, after) {
		t.Fatalf("serving changed Dovecot's files:\n%q\n%q", keys(before), keys(after))
	}
	for _, own := range []string{cacheName, lockName} {
		if _, err := os.Stat(filepath.Join(dir, own)); err != nil {
			t.Fatalf("%s: %v", own, err)
		}
	}
	if os.Geteuid() == 0 {
		filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error { return os.Chown(p, 65534, 65534) })
	}
	cache, _ := os.ReadFile(filepath.Join(dir, cacheName))
	asNobody(t, home, "", doveadm, "-c", conf, "force-resync", "INBOX")
	list := asNobody(t, home, "", doveadm, "-c", conf, "mailbox", "list")
	if got := strings.Fields(list); !slices.Equal(got, []string{"INBOX"}) {
		t.Errorf("doveadm mailbox list = %q, want only INBOX", got)
	}
	status := asNobody(t, home, "", doveadm, "-c", conf, "mailbox", "status", "messages", "INBOX")
	if !strings.Contains(status, fmt.Sprintf("messages=%d", len(mdaMessages))) {
		t.Errorf("doveadm status: %q", status)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, cacheName)); string(after) != string(cache) {
		t.Errorf("Dovecot changed %s", cacheName)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
