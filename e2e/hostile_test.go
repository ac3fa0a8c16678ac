package e2e

import (
	"github.com/pop3d/pop3d/internal/pop3test"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestHostileMaildir: a user who can write into their own Maildir attacks
// the real pop3d binary (issue 13). A symlink in place of new/ or of the
// whole Maildir must not reach another user's mail or a root-only file; a
// FIFO where pop3d keeps its size cache must not hang the login or the
// QUIT; a Maildir moved away during the session is not claimed updated.
func TestHostileMaildir(t *testing.T) {
	s := newSite(t)
	s.deliverShapes(t, alice)
	bobMsg := s.deliver(t, bob, "bob's", []byte("Subject: for bob only\n\nsecret\n"), false)
	srv := startServer(t, s, "-mark-read=yes")
	bobBefore := listMaildir(t, s.maildir(bob))
	checkBob := func(t *testing.T) {
		t.Helper()
		if got := listMaildir(t, s.maildir(bob)); strings.Join(got, " ") != strings.Join(bobBefore, " ") {
			t.Errorf("bob's Maildir changed:\nbefore %v\nafter  %v", bobBefore, got)
		}
		if b, err := os.ReadFile(bobMsg.path); err != nil || string(b) != string(bobMsg.data) {
			t.Errorf("bob's message: %q %v", b, err)
		}
	}
	md := s.maildir(alice)
	swap := func(t *testing.T, name, target string) (restore func()) {
		t.Helper()
		p := filepath.Join(md, name)
		if err := os.Rename(p, p+".orig"); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return func() {
			os.Remove(p)
			if err := os.Rename(p+".orig", p); err != nil {
				t.Fatal(err)
			}
		}
	}
	refused := func(t *testing.T) {
		t.Helper()
		p := pop3test.Dial(t, srv.addr)
		p.OK("USER " + alice)
		if r := p.Cmd("PASS " + alicePass); !strings.HasPrefix(r, "-ERR [SYS/PERM]") {
			t.Errorf("login with a planted symlink: %q, want -ERR [SYS/PERM]", r)
			// What the attacker would do next.
			p.Cmd("RETR 1")
			p.Cmd("DELE 1")
			p.Cmd("QUIT")
		}
	}

	t.Run("new is a symlink to bob's new", func(t *testing.T) {
		defer swap(t, "new", filepath.Join(s.maildir(bob), "new"))()
		refused(t)
		checkBob(t)
	})

	t.Run("new is a symlink to a root-only directory", func(t *testing.T) {
		secret := filepath.Join(t.TempDir(), "secret")
		if err := os.Mkdir(secret, 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(secret, "1700000000.shadow"), []byte("root:x:0:0\n"), 0o600)
		defer swap(t, "new", secret)()
		refused(t)
		if _, err := os.Stat(filepath.Join(secret, "1700000000.shadow")); err != nil {
			t.Errorf("root-only file: %v", err)
		}
	})

	t.Run("Maildir is a symlink to another uid's Maildir", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to give bob's Maildir to another uid")
		}
		if err := os.Chown(s.maildir(bob), 12345, 12345); err != nil {
			t.Fatal(err)
		}
		defer os.Chown(s.maildir(bob), 0, 0)
		if err := os.Rename(md, md+".orig"); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(s.maildir(bob), md); err != nil {
			t.Fatal(err)
		}
		defer func() {
			os.Remove(md)
			os.Rename(md+".orig", md)
		}()
		refused(t)
		checkBob(t)
	})

	t.Run("new swapped for a symlink during the session", func(t *testing.T) {
		p := pop3test.Dial(t, srv.addr)
		p.Login(alice, alicePass)
		_, own := p.Multi("RETR 1")
		restore := swap(t, "new", filepath.Join(s.maildir(bob), "new"))
		_, again := p.Multi("RETR 1")
		if string(again) != string(own) {
			t.Errorf("RETR 1 after the swap = %q, want alice's %q", pop3test.Trunc(again), pop3test.Trunc(own))
		}
		p.OK("DELE 2")
		p.Quit()
		restore()
		checkBob(t)
	})

	t.Run("FIFOs as pop3d-cache and pop3d-cache.tmp", func(t *testing.T) {
		for _, n := range []string{"pop3d-cache", "pop3d-cache.tmp"} {
			p := filepath.Join(md, n)
			os.Remove(p)
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		// Every read has a 10 s deadline: a hang fails here.
		c := pop3test.Dial(t, srv.addr)
		c.Login(alice, alicePass)
		c.OK("STAT")
		c.OK("DELE 1")
		if r := c.Cmd("QUIT"); r != "+OK bye (1 messages deleted)" {
			t.Errorf("QUIT = %q", r)
		}
		// The next session answers as well, and the cache is a file again.
		c = pop3test.Dial(t, srv.addr)
		c.Login(alice, alicePass)
		c.Quit()
		if st, err := os.Lstat(filepath.Join(md, "pop3d-cache")); err != nil || !st.Mode().IsRegular() {
			t.Errorf("pop3d-cache after the sessions: %v %v", st.Mode(), err)
		}
	})

	t.Run("Maildir moved during the session", func(t *testing.T) {
		c := pop3test.Dial(t, srv.addr)
		c.Login(alice, alicePass)
		c.OK("DELE 1")
		if err := os.Rename(md, md+".moved"); err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(md + ".moved")
		for _, sub := range []string{"tmp", "new", "cur"} {
			os.MkdirAll(filepath.Join(md, sub), 0o700)
		}
		before := listMaildir(t, md+".moved")
		if r := c.Cmd("QUIT"); !strings.HasPrefix(r, "-ERR [SYS/TEMP]") {
			t.Errorf("QUIT after the Maildir moved = %q, want -ERR [SYS/TEMP]", r)
		}
		if after := listMaildir(t, md+".moved"); strings.Join(after, " ") != strings.Join(before, " ") {
			t.Errorf("moved Maildir changed:\nbefore %v\nafter  %v", before, after)
		}
	})
}
