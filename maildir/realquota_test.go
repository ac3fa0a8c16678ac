package maildir

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// quotaMDA is a real delivery agent that enforces a Maildir++ quota.
type quotaMDA struct {
	name string
	// setup makes the Maildir at dir with a quota of bytes and count; the
	// Maildir may only appear with the first delivery.
	setup func(t *testing.T, dir string, bytes, count int) func(msg string) bool
}

// quotaMDAs are maildrop's deliverquota (quota set by maildirmake -q) and
// Dovecot's LDA with the quota plugin (quota = maildir).
func quotaMDAs() []quotaMDA {
	return []quotaMDA{
		{"deliverquota", func(t *testing.T, dir string, bytes, count int) func(string) bool {
			maildirmake := needTool(t, "maildirmake", "maildrop")
			deliverquota := needTool(t, "deliverquota", "maildrop")
			runTool(t, maildirmake, dir)
			runTool(t, maildirmake, "-q", fmt.Sprintf("%dS,%dC", bytes, count), dir)
			return func(msg string) bool {
				cmd := exec.Command(deliverquota, dir)
				cmd.Stdin = strings.NewReader(msg)
				return accepted(t, cmd)
			}
		}},
		{"dovecot-lda", func(t *testing.T, dir string, bytes, count int) func(string) bool {
			lda := "/usr/lib/dovecot/dovecot-lda"
			if _, err := os.Stat(lda); err != nil {
				if os.Getenv("CI") == "true" {
					t.Fatalf("%s: %v: apt-get install -y dovecot-core", lda, err)
				}
				t.Skipf("%s: %v (apt-get install -y dovecot-core)", lda, err)
			}
			if os.Geteuid() != 0 && os.Geteuid() != 65534 {
				t.Skip("needs root (to run Dovecot as nobody)")
			}
			home := filepath.Dir(dir)
			for p := home; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
				os.Chmod(p, 0o755)
			}
			os.Chown(home, 65534, 65534)
			conf := filepath.Join(home, "dovecot.conf")
			cfg := fmt.Sprintf("mail_location = maildir:%s\nlog_path = %s/dovecot.log\nssl = no\n"+
				"mail_plugins = quota\nplugin {\n  quota = maildir:User quota\n  quota_rule = *:storage=%dB:messages=%d\n}\n",
				dir, home, bytes, count)
			if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			return func(msg string) bool {
				cmd := exec.Command(lda, "-c", conf, "-e", "-f", "sender@example.com")
				cmd.Env = []string{"HOME=" + home, "USER=nobody", "PATH=/usr/bin:/bin"}
				cmd.Stdin = strings.NewReader(msg)
				if os.Geteuid() == 0 {
					cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
				}
				return accepted(t, cmd)
			}
		}},
	}
}

func runTool(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %q: %v: %s", name, args, err, out)
	}
}

// accepted runs a delivery: true when delivered, false when refused for
// the quota (exit 77, EX_NOPERM); anything else fails the test.
func accepted(t *testing.T, cmd *exec.Cmd) bool {
	t.Helper()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return true
	case errors.As(err, &ee) && ee.ExitCode() == 77 && strings.Contains(strings.ToLower(string(out)), "quota"):
		return false
	}
	t.Fatalf("%s: %v: %s", cmd.Path, err, out)
	return false
}

// TestRealQuota: a real MDA fills a Maildir++ quota (bytes or count) until
// it refuses; pop3d removes some messages in UPDATE; the MDA must accept
// exactly that many again. The control removes files without pop3d: the
// MDA keeps refusing, so the MDAs trust maildirsize and it is pop3d's line
// that lets mail in.
func TestRealQuota(t *testing.T) {
	const size = 414 // every message, so that bytes and counts are exact
	msg := func(i int) string {
		m := fmt.Sprintf("Subject: quota %04d\n\n", i)
		return m + strings.Repeat("q", size-len(m)-1) + "\n"
	}
	for _, mda := range quotaMDAs() {
		for _, limit := range []struct {
			name         string
			bytes, count int
		}{
			{"bytes", 7*size + 100, 1000},
			{"count", 1 << 20, 6},
		} {
			for _, control := range []bool{false, true} {
				name := mda.name + "/" + limit.name
				if control {
					name += "/control"
				}
				t.Run(name, func(t *testing.T) {
					dir := filepath.Join(t.TempDir(), "Maildir")
					deliver := mda.setup(t, dir, limit.bytes, limit.count)
					n := 0
					for ; deliver(msg(n)); n++ {
						if n > 20 {
							t.Fatal("the MDA accepts more than the quota")
						}
					}
					if n < 4 {
						t.Fatalf("the MDA took only %d messages", n)
					}
					const k = 3
					before, err := os.ReadFile(filepath.Join(dir, maildirSizeName))
					if err != nil {
						t.Fatal(err)
					}
					if control {
						removeFiles(t, dir, k)
					} else {
						mb := openMB(t, dir, Options{})
						if mb.Len() != n {
							t.Fatalf("pop3d lists %d messages, the MDA delivered %d", mb.Len(), n)
						}
						if err := mb.Commit(t.Context(), []int{0, 2, 4}, nil); err != nil {
							t.Fatal(err)
						}
						after, _ := os.ReadFile(filepath.Join(dir, maildirSizeName))
						if want := string(before) + quotaLine(k*size, k); string(after) != want {
							t.Fatalf("maildirsize after UPDATE:\n%q\nwant\n%q", after, want)
						}
					}
					again := 0
					for ; deliver(msg(100 + again)); again++ {
						if again > 20 {
							t.Fatal("the MDA accepts more than the quota")
						}
					}
					want := k
					if control {
						want = 0
					}
					if again != want {
						ms, _ := os.ReadFile(filepath.Join(dir, maildirSizeName))
						t.Fatalf("after removing %d of %d messages the MDA took %d again, want %d; maildirsize:\n%s", k, n, again, want, ms)
					}
				})
			}
		}
	}
}

// removeFiles unlinks k messages without telling anyone.
func removeFiles(t *testing.T, dir string, k int) {
	t.Helper()
	for _, sub := range []string{"new", "cur"} {
		ents, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, e := range ents {
			if k == 0 {
				return
			}
			if err := os.Remove(filepath.Join(dir, sub, e.Name())); err != nil {
				t.Fatal(err)
			}
			k--
		}
	}
	if k > 0 {
		t.Fatal("not enough messages to remove")
	}
}
