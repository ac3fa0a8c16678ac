package e2e

import (
	"fmt"
	"github.com/pop3d/pop3d/internal/pop3test"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPrivilegeDrop: started as root with user/group set, pop3d binds,
// reads its TLS key and password file (both root-only), then serves as that
// user with no supplementary groups.
func TestPrivilegeDrop(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	s := newSite(t)
	// nobody must reach the Maildirs: open up the temp dirs, hand over the
	// mail root. The password file and TLS key stay root-only (0600).
	for d := s.dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	msgs := s.deliverShapes(t, alice)
	if err := filepath.Walk(s.mailRoot, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, 65534, 65534)
	}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(s.passwd, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startTLSServer(t, s, "-user", "nobody", "-group", "nogroup")

	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", srv.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 0 && (f[0] == "Uid:" || f[0] == "Gid:"):
			for _, id := range f[1:] {
				if id != "65534" {
					t.Errorf("after the drop: %q, want 65534 everywhere (real, effective, saved, fs)", l)
					break
				}
			}
		case len(f) > 0 && f[0] == "Groups:":
			if len(f) > 1 && strings.Join(f[1:], " ") != "65534" {
				t.Errorf("after the drop: %q, want no supplementary groups", l)
			}
		}
	}

	p := pop3test.DialTLS(t, srv.tlsAdr, s.tlsConfig())
	p.Login(alice, alicePass)
	if st := p.OK("STAT"); !strings.HasPrefix(st, fmt.Sprintf("%d ", len(msgs))) {
		t.Errorf("STAT as nobody = %q", st)
	}
	p.OK("DELE 1")
	p.Quit()
	if _, err := os.Stat(msgs[0].path); !os.IsNotExist(err) {
		t.Errorf("DELE 1 + QUIT as nobody left %s: %v", msgs[0].path, err)
	}
	if strings.Contains(srv.stderr.String(), "running as root") {
		t.Error("pop3d warns about running as root although it dropped privileges")
	}
}
