package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/pop3d/pop3d/internal/wireform"
)

// takeoverAccount is one mailbox of the host pop3d takes over.
type takeoverAccount struct {
	user, pass string
	legacy     []string // the old server's files that must exist before the switch
	oldSrc     string   // what `pop3d uidl` must say the old messages' UIDLs came from
	msgs       []message
	early      map[string]bool // content (msgKey) of messages whose UIDL was a saved P record
	fm         *fetchmailRun
	old        map[string]string // msgKey -> UIDL the old server served
}

// TestTakeover is issue 10's switch-over, with the real programs: Dovecot
// 2.3 (default pop3_uidl_format for alice; for bob, UIDLs saved as P
// records under another format before the admin went back to the default)
// and Courier (carol) serve Maildirs and fetchmail --keep (UIDL) downloads
// everything. Then they stop and pop3d starts on the same address, the
// same Maildirs and the same password file, with no migration setting:
// every message keeps its UIDL, fetchmail fetches only the mail delivered
// after the switch, and removing the old servers' files and pop3d's cache
// changes nothing.
func TestTakeover(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: Dovecot and Courier serve the Maildirs as their owner, nobody")
	}
	requireTool(t, "fetchmail")
	t.Parallel()
	s := newSite(t)
	const carol, carolPass = "carol", "c4rol pass"
	s.addUserWithPop3d(t, carol, carolPass)
	accts := []*takeoverAccount{
		{user: alice, pass: alicePass, legacy: []string{"dovecot-uidlist", "dovecot.index*"}, oldSrc: "dovecot-format"},
		{user: bob, pass: bobPass, legacy: []string{"dovecot-uidlist", "dovecot.index*"}, oldSrc: "dovecot-format"},
		{user: carol, pass: carolPass, legacy: []string{"courierpop3dsizelist"}, oldSrc: "courier"},
	}
	bb := accts[1]
	for _, a := range accts {
		a.msgs = s.deliverShapes(t, a.user)
	}
	handToMailOwner(t, s.mailRoot)
	dovecotDefault := map[string]string{}
	bobSaving := map[string]string{"pop3_uidl_format": "%f-%u", "pop3_save_uidl": "yes"}
	old := startOldServer(t, "", map[string]oldUser{
		alice: dovecotUser(t, alicePass, s.maildir(alice), dovecotDefault),
		bob:   dovecotUser(t, bobPass, s.maildir(bob), bobSaving),
		carol: courierUser(t, carolPass, s.maildir(carol)),
	})
	addr := old.addr
	for _, a := range accts {
		a.fm = newFetchmailUser(t, addr, a.user, a.pass, "sslproto ''")
		sameBodies(t, a.user+": fetchmail --keep from the old server", fetchmailGot(a.fm.fetch(t, "--keep")), a.msgs, fetchmailForm)
	}
	// bob's admin turns pop3_save_uidl off and goes back to Dovecot's
	// default format; the saved P records keep the old UIDLs, and new mail
	// gets the default form.
	bb.early = map[string]bool{}
	for _, m := range bb.msgs {
		bb.early[msgKey(m.data)] = true
	}
	old.stop()
	bobLater := []message{
		s.deliver(t, bob, "later1", []byte("From: later1@example.org\nSubject: before the switch, default format\nMessage-ID: <later1@e2e>\n\none\n"), false),
		s.deliver(t, bob, "later2", []byte("From: later2@example.org\nSubject: before the switch, seen\nMessage-ID: <later2@e2e>\n\ntwo\n"), true),
	}
	bb.msgs = append(bb.msgs, bobLater...)
	handToMailOwner(t, s.maildir(bob))
	old = startOldServer(t, addr, map[string]oldUser{
		alice: dovecotUser(t, alicePass, s.maildir(alice), dovecotDefault),
		bob:   dovecotUser(t, bobPass, s.maildir(bob), dovecotDefault),
		carol: courierUser(t, carolPass, s.maildir(carol)),
	})
	sameBodies(t, "bob: fetchmail --keep after Dovecot's format change", fetchmailGot(bb.fm.fetch(t, "--keep")), bobLater, fetchmailForm)
	for _, a := range accts {
		if got := a.fm.fetch(t, "--keep"); len(got) != 0 {
			t.Errorf("%s: a second fetchmail --keep from the old server fetched %d messages", a.user, len(got))
		}
		a.old = serverUIDLs(t, addr, a.user, a.pass)
		if len(a.old) != len(a.msgs) {
			t.Fatalf("%s: the old server lists %d messages, want %d", a.user, len(a.old), len(a.msgs))
		}
	}
	old.stop()
	if t.Failed() {
		t.Fatalf("old servers:\n%s", old.log.String())
	}
	t.Logf("old servers' log:\n%s", old.log.String())

	// The old servers left their files; bob's uidlist holds P records for
	// the early messages only.
	legacyFiles := map[string][]byte{}
	for _, a := range accts {
		for _, g := range a.legacy {
			if !hasFile(t, s.maildir(a.user), g) {
				t.Fatalf("%s: the old server left no %s", a.user, g)
			}
		}
		for _, n := range []string{"dovecot-uidlist", "courierpop3dsizelist"} {
			if b, err := os.ReadFile(filepath.Join(s.maildir(a.user), n)); err == nil {
				legacyFiles[a.user+"/"+n] = b
			}
		}
	}
	checkBobUIDList(t, legacyFiles[bob+"/dovecot-uidlist"], len(bb.early), len(bobLater))

	// Mail delivered after the switch.
	fresh := map[string][]message{}
	for _, a := range accts {
		fresh[a.user] = []message{
			s.deliver(t, a.user, "after1", []byte("From: after1@example.org\nSubject: after the switch\nMessage-ID: <after1-"+a.user+"@e2e>\n\nnew\n"), false),
			s.deliver(t, a.user, "after2", []byte("From: after2@example.org\nSubject: after the switch, seen\nMessage-ID: <after2-"+a.user+"@e2e>\n\nnew too\n"), true),
		}
		a.msgs = append(a.msgs, fresh[a.user]...)
	}
	handToMailOwner(t, s.mailRoot)

	// What the admin sees before switching: `pop3d uidl USER`, run as the
	// mail owner.
	for _, a := range accts {
		lines := pop3dUIDL(t, s, a.user)
		if len(lines) != len(a.msgs) {
			t.Errorf("%s: pop3d uidl printed %d lines, want %d", a.user, len(lines), len(a.msgs))
		}
		for w, l := range lines {
			want, src := a.old[w], a.oldSrc
			switch {
			case want == "":
				src = "pop3d"
			case a.early[w]:
				src = "dovecot-P"
			}
			if want != "" && l.uidl != want {
				t.Errorf("%s: pop3d uidl: %s has %q, the old server served %q", a.user, l.file, l.uidl, want)
			}
			if l.src != src {
				t.Errorf("%s: pop3d uidl: %s (%s) comes from %q, want %q", a.user, l.file, subjectOf(w), l.src, src)
			}
		}
	}

	// The switch: pop3d on the old address, as the mail owner.
	srv := startServerArgs(t, []string{
		"-config", "/dev/null",
		"-passwd-file", s.passwd,
		"-maildir", s.maildirTemplate(),
		"-auth-failure-delay", "100ms",
		"-user", "nobody", "-group", "nogroup",
	}, withAddr(addr))
	served := map[string]map[string]string{}
	for _, a := range accts {
		sameBodies(t, a.user+": fetchmail --keep from pop3d", fetchmailGot(a.fm.fetch(t, "--keep")), fresh[a.user], fetchmailForm)
		now := serverUIDLs(t, srv.addr, a.user, a.pass)
		checkTakenOver(t, a, now)
		served[a.user] = now
	}
	for k, b := range legacyFiles {
		if now, err := os.ReadFile(filepath.Join(s.mailRoot, k)); err != nil || !bytes.Equal(now, b) {
			t.Errorf("pop3d changed %s (%v)", k, err)
		}
	}

	// The admin removes the old servers' files, and pop3d's cache goes too.
	for _, a := range accts {
		for _, g := range []string{"dovecot-uidlist", "dovecot.index*", "courierpop3dsizelist", "pop3d-cache"} {
			ms, _ := filepath.Glob(filepath.Join(s.maildir(a.user), g))
			for _, m := range ms {
				if err := os.Remove(m); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, a := range accts {
		if got := a.fm.fetch(t, "--keep"); len(got) != 0 {
			t.Errorf("%s: after rm of the old servers' files fetchmail --keep fetched %d messages", a.user, len(got))
		}
		now := serverUIDLs(t, srv.addr, a.user, a.pass)
		if len(now) != len(served[a.user]) {
			t.Errorf("%s: %d messages after rm, %d before", a.user, len(now), len(served[a.user]))
		}
		for w, u := range served[a.user] {
			if now[w] != u {
				t.Errorf("%s: %s: UIDL %q after rm of the old servers' files, %q before", a.user, subjectOf(w), now[w], u)
			}
		}
	}
	if l, ok := srv.waitLog(func(l logLine) bool { return l["level"] == "WARN" || l["level"] == "ERROR" }, 0); ok {
		t.Errorf("pop3d warned during the takeover: %v", l)
	}
}

// checkTakenOver compares pop3d's UIDLs with the old server's: equal for
// every old message, none of the old ones for new mail.
func checkTakenOver(t *testing.T, a *takeoverAccount, now map[string]string) {
	t.Helper()
	if len(now) != len(a.msgs) {
		t.Errorf("%s: pop3d lists %d messages, want %d", a.user, len(now), len(a.msgs))
	}
	oldSet := map[string]bool{}
	for w, u := range a.old {
		oldSet[u] = true
		if now[w] != u {
			t.Errorf("%s: %s: pop3d serves UIDL %q, the old server served %q", a.user, subjectOf(w), now[w], u)
		}
	}
	for w, u := range now {
		if _, wasOld := a.old[w]; !wasOld && oldSet[u] {
			t.Errorf("%s: new message %s got %q, an old message's UIDL", a.user, subjectOf(w), u)
		}
	}
}

// checkBobUIDList checks that Dovecot saved a P record for each of bob's
// early messages and none for the later ones.
func checkBobUIDList(t *testing.T, uidlist []byte, early, later int) {
	t.Helper()
	withP, without := 0, 0
	for _, l := range strings.Split(string(uidlist), "\n")[1:] {
		if l == "" {
			continue
		}
		if strings.Contains(l, " P") {
			withP++
		} else {
			without++
		}
	}
	if withP != early || without != later {
		t.Fatalf("bob's dovecot-uidlist: %d records with P, %d without; want %d and %d:\n%s", withP, without, early, later, uidlist)
	}
}

// uidlLine is one line of `pop3d uidl`.
type uidlLine struct {
	n         int
	uidl, src string
	size      int64
	file      string
}

// pop3dUIDL runs `pop3d uidl USER` as root, as an admin would, and returns
// its lines keyed by the content (msgKey) of the file each names. Every file
// it leaves in the Maildir must belong to the mail owner (it becomes the
// Maildir's owner first), or the daemon serving as that owner could not
// take the lock afterwards.
func pop3dUIDL(t *testing.T, s *site, user string) map[string]uidlLine {
	t.Helper()
	defer func() {
		_ = filepath.Walk(s.maildir(user), func(p string, fi os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != mailUID {
				t.Errorf("pop3d uidl run as root left %s owned by uid %d, not the mail owner %d", p, st.Uid, mailUID)
			}
			return nil
		})
	}()
	cmd := exec.Command(binPath, "uidl", "-config", "/dev/null", "-passwd-file", s.passwd, "-maildir", s.maildirTemplate(), user)
	cmd.Env = cleanEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pop3d uidl %s: %v\n%s", user, err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("pop3d uidl %s wrote to stderr:\n%s", user, stderr.String())
	}
	lines := map[string]uidlLine{}
	for i, l := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		f := strings.Fields(l)
		if len(f) != 5 {
			t.Fatalf("pop3d uidl %s: line %q", user, l)
		}
		n, err1 := strconv.Atoi(f[0])
		size, err2 := strconv.ParseInt(f[3], 10, 64)
		if err1 != nil || err2 != nil || n != i+1 {
			t.Fatalf("pop3d uidl %s: line %q", user, l)
		}
		data, err := os.ReadFile(filepath.Join(s.maildir(user), f[4]))
		if err != nil {
			t.Fatalf("pop3d uidl %s: line %q: %v", user, l, err)
		}
		if n := int64(len(wireform.Reference(data))); n != size {
			t.Errorf("pop3d uidl %s: line %q: size %d, the wire form has %d", user, l, size, n)
		}
		lines[msgKey(data)] = uidlLine{n: n, uidl: f[1], src: f[2], size: size, file: f[4]}
	}
	return lines
}
