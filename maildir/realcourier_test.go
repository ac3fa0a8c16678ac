package maildir

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// courierRoot is where scripts/test-deps unpacks courier-pop and
// courier-base: installing them would start system services and conflict
// with dovecot-pop3d, while their programs run fine from there.
const courierRoot = "/opt/pop3d-test/courier"

// courierPOP3 is Courier's POP3 server after login: it serves the Maildir
// named by its argument on stdin/stdout.
func courierPOP3(t testing.TB) string {
	t.Helper()
	p := filepath.Join(courierRoot, "usr/lib/courier/courier/courierpop3d")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s missing: run scripts/test-deps as root", p)
		}
		t.Skipf("%s missing (run scripts/test-deps as root)", p)
	}
	return p
}

// courierSession runs Courier's pop3d on the Maildir at dir.
func courierSession(t testing.TB, dir string, cmds ...string) string {
	t.Helper()
	cmd := exec.Command(courierPOP3(t), dir)
	cmd.Dir = filepath.Dir(dir)
	cmd.Env = []string{"AUTHENTICATED=u", "TCPREMOTEIP=127.0.0.1", "PATH=/usr/bin:/bin"}
	cmd.Stdin = strings.NewReader(strings.Join(append(cmds, "QUIT"), "\r\n") + "\r\n")
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("courierpop3d: %v\n%s\n%s", err, out, errb.String())
	}
	t.Logf("courier log: %s", errb.String())
	return strings.TrimPrefix(string(out), "+OK logged in.\r\n")
}

// TestCourierFormsAgainstCourier is the oracle for courierpop3dsizelist:
// the real Courier pop3d serves a crafted Maildir, and pop3d's reading of
// the same sizelist gives the same UIDL for every message it lists.
func TestCourierFormsAgainstCourier(t *testing.T) {
	courierPOP3(t)
	for _, version := range []string{"3", "2"} {
		t.Run("v"+version, func(t *testing.T) {
			dir := newMaildir(t)
			msgs := map[string]string{ // subject -> path
				"uidv":      "cur/1700000001.M1P1.host:2,S",
				"nouidv":    "cur/1700000002.M2P2.host:2,RS",
				"name":      "cur/1700000003.M+3'\"P3.host:2,",
				"new":       "new/1700000004.M4P4.host",
				"nocolon":   "cur/1700000005.M5P5.host",
				"high":      "cur/1700000006.M6P6.host,S=30:2,S",
				"unlisted":  "new/1700000009.M9P9.host",
				"colonless": "new/1700000010.M10.host",
			}
			for subj, p := range msgs {
				d, n := filepath.Split(p)
				put(t, dir, strings.TrimSuffix(d, "/"), n, "Subject: "+subj+"\n\nbody\n")
			}
			utf := ""
			if version == "3" {
				utf = ":0"
			}
			list := "/" + version + " 9000 1700000000\n" +
				"1700000001.M1P1.host:2, 30 5:1699999999" + utf + "\n" +
				"1700000002.M2P2.host:2,S 30 6:0" + utf + "\n" +
				"1700000003.M+3'\"P3.host:2,S 30 0:1699999999" + utf + "\n" +
				"1700000004.M4P4.host:2, 30 8:1700000000" + utf + "\n" +
				"1700000005.M5P5.host 30 9:1700000000" + utf + "\n" +
				"1700000006.M6P6.host,S=30:2, 30 4294967299:3000000000" + utf + "\n" +
				"1700000007.gone.host:2, 30 10:1700000000" + utf + "\n" +
				"1700000010.M10.host 30 11:1700000000" + utf + "\n" +
				"garbage line\n"
			if err := os.WriteFile(filepath.Join(dir, courierSizeListName), []byte(list), 0o600); err != nil {
				t.Fatal(err)
			}
			sl, err := parseCourierSizeList([]byte(list))
			if sl == nil {
				t.Fatal(err)
			}
			cmds := []string{"UIDL"}
			for i := 1; i <= len(msgs); i++ {
				cmds = append(cmds, fmt.Sprintf("TOP %d 0", i))
			}
			out := courierSession(t, dir, cmds...)
			uidls, subjects, err := pop3UIDLs(t, out)
			if err != nil || len(uidls) != len(msgs) {
				t.Fatalf("courier: %v, %d UIDLs\n%s", err, len(uidls), out)
			}
			compared := 0
			for k, got := range uidls {
				p, ok := msgs[subjects[k]]
				if !ok {
					t.Fatalf("message %d: unknown subject %q", k, subjects[k])
				}
				d, name := filepath.Split(p)
				rec, listed := sl.recs[courierFileKey(name, d == "new/")]
				if !listed {
					if strings.HasPrefix(got, "UID") && strings.HasSuffix(got, "-1700000000") {
						t.Logf("%s: not listed, Courier gave it %s", subjects[k], got)
						continue
					}
					t.Errorf("%s: pop3d finds no record, Courier served %q", subjects[k], got)
					continue
				}
				if want := rec.uidl(baseName(name)); got != want {
					t.Errorf("%s (%s): Courier %q, pop3d %q", subjects[k], name, got, want)
				}
				compared++
			}
			if compared != 6 {
				t.Fatalf("compared %d UIDLs, want 6", compared)
			}
		})
	}
}
