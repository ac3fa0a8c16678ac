package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pop3d/pop3d/internal/pop3test"
)

// TestTmpCleanupLogin: a login removes files left in tmp/ for more than 36
// hours and says how many on its login line (tmp_removed, only when some
// were); files still young stay; tmp_cleanup = no removes nothing.
func TestTmpCleanupLogin(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.deliverShapes(t, alice)
	tmp := filepath.Join(s.maildir(alice), "tmp")
	put := func(name string, age time.Duration) string {
		p := filepath.Join(tmp, name)
		writeFile(t, p, []byte("half a delivery\n"), 0o600)
		mt := time.Now().Add(-age)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
		return p
	}
	logins := func(srv *server) []logLine {
		var out []logLine
		for _, l := range srv.logLines() {
			if l["msg"] == "login" {
				out = append(out, l)
			}
		}
		return out
	}
	login := func(srv *server, n int) logLine {
		t.Helper()
		p := pop3test.Dial(t, srv.addr)
		p.Login(alice, alicePass)
		p.Quit()
		if _, ok := srv.waitLog(func(logLine) bool { return len(logins(srv)) >= n }, 5*time.Second); !ok {
			t.Fatalf("no login line %d:\n%s", n, srv.stderr.String())
		}
		return logins(srv)[n-1]
	}

	// tmp_cleanup = no: nothing removed, nothing said.
	old1 := put("1700000000.stale1.host", 40*time.Hour)
	srv := startServer(t, s, "-tmp-cleanup=false")
	if l := login(srv, 1); l["tmp_removed"] != "" {
		t.Errorf("tmp_cleanup = no: login line has tmp_removed=%s", l["tmp_removed"])
	}
	if _, err := os.Stat(old1); err != nil {
		t.Errorf("tmp_cleanup = no removed %s: %v", old1, err)
	}
	srv.stop()

	old2 := put("1700000001.stale2.host", 37*time.Hour)
	young := put("1700000002.writing.host", 35*time.Hour)
	srv = startServer(t, s)
	l := login(srv, 1)
	want(t, l, "tmp_removed", "2")
	want(t, l, "user", alice)
	for _, p := range []string{old1, old2} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still there after login: %v", p, err)
		}
	}
	if _, err := os.Stat(young); err != nil {
		t.Errorf("a 35-hour-old file in tmp/ was removed: %v", err)
	}
	if l := login(srv, 2); l["tmp_removed"] != "" {
		t.Errorf("nothing left to remove, but the login line has tmp_removed=%s", l["tmp_removed"])
	}
}
