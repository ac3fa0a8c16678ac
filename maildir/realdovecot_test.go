package maildir

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// dovecotPOP3 is Dovecot's POP3 binary, which runs pre-authenticated on
// stdin/stdout with its own config: no listener, no system service.
const dovecotPOP3 = "/usr/lib/dovecot/pop3"

// needDovecotPOP3 skips (fails under CI=true) without dovecot-pop3d.
func needDovecotPOP3(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(dovecotPOP3); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s missing: apt-get install -y dovecot-pop3d", dovecotPOP3)
		}
		t.Skipf("%s missing (apt-get install -y dovecot-pop3d)", dovecotPOP3)
	}
}

// mailOwner is the uid and gid the real servers run as: Dovecot refuses
// root, so a test running as root hands the Maildir to nobody.
func mailOwner() (int, int) {
	if os.Getuid() == 0 {
		return 65534, 65534
	}
	return os.Getuid(), os.Getgid()
}

// giveTo makes the tree at dir owned by uid:gid and every parent directory
// up to / searchable, so that a server running as uid reaches it.
func giveTo(t testing.TB, dir string, uid, gid int) {
	t.Helper()
	if os.Getuid() != 0 {
		return
	}
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
	for p := filepath.Dir(dir); p != "/"; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, st.Mode().Perm()|0o011); err != nil {
			t.Fatal(err)
		}
	}
}

// dovecotCmd prepares Dovecot's pop3 on the Maildir at dir with the given
// extra settings, fed the commands and QUIT.
func dovecotCmd(t testing.TB, dir string, settings map[string]string, cmds ...string) *exec.Cmd {
	t.Helper()
	uid, gid := mailOwner()
	cfgDir := t.TempDir()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "base_dir = %s/run\nstate_dir = %s/state\n", cfgDir, cfgDir)
	fmt.Fprintf(&cfg, "mail_location = maildir:%s\nfirst_valid_uid = 0\nfirst_valid_gid = 0\n", dir)
	fmt.Fprintf(&cfg, "mail_uid = %d\nmail_gid = %d\nssl = no\nprotocols = pop3\nlog_path = /dev/stderr\n", uid, gid)
	for k, v := range settings {
		fmt.Fprintf(&cfg, "%s = %s\n", k, v)
	}
	conf := filepath.Join(cfgDir, "dovecot.conf")
	if err := os.WriteFile(conf, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	giveTo(t, dir, uid, gid)
	cmd := exec.Command(dovecotPOP3, "-c", conf)
	cmd.Env = []string{"USER=u", "HOME=" + filepath.Dir(dir), "PATH=/usr/bin:/bin"}
	cmd.Stdin = strings.NewReader(strings.Join(append(cmds, "QUIT"), "\r\n") + "\r\n")
	return cmd
}

// dovecotSession runs Dovecot's pop3 and returns its answers; it must end
// well.
func dovecotSession(t testing.TB, dir string, settings map[string]string, cmds ...string) string {
	t.Helper()
	cmd := dovecotCmd(t, dir, settings, cmds...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("dovecot pop3: %v\n%s\n%s", err, out.String(), errb.String())
	}
	if errb.Len() > 0 {
		t.Logf("dovecot log: %s", errb.String())
	}
	return out.String()
}

// dovecotSessionMayFail is dovecotSession for runs Dovecot may end with a
// fatal error.
func dovecotSessionMayFail(t testing.TB, dir string, settings map[string]string, cmds ...string) string {
	t.Helper()
	out, _ := dovecotCmd(t, dir, settings, cmds...).CombinedOutput()
	t.Logf("dovecot: %s", out)
	return string(out)
}

// pop3UIDLs reads a multi-line UIDL answer and the TOP answers after it
// from a raw transcript: message number -> UIDL and -> Subject.
func pop3UIDLs(t testing.TB, transcript string) (map[int]string, map[int]string, error) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(transcript))
	uidls, subjects := map[int]string{}, map[int]string{}
	state, top := "", 0
	for sc.Scan() {
		l := strings.TrimRight(sc.Text(), "\r")
		switch {
		case state == "" && l == "+OK" && len(uidls) == 0:
			state = "uidl"
		case state == "uidl" && l == ".":
			state = ""
		case state == "uidl":
			n, u, ok := strings.Cut(l, " ")
			k, err := strconv.Atoi(n)
			if !ok || err != nil {
				return nil, nil, fmt.Errorf("bad UIDL line %q", l)
			}
			uidls[k] = u
		case state == "" && strings.HasPrefix(l, "+OK") && len(uidls) > 0 && top < len(uidls):
			top++
			state = "top"
		case state == "top" && l == ".":
			state = ""
		case state == "top" && strings.HasPrefix(l, "Subject: "):
			subjects[top] = strings.TrimPrefix(l, "Subject: ")
		case strings.HasPrefix(l, "-ERR"):
			return uidls, subjects, errors.New(l)
		}
	}
	return uidls, subjects, nil
}

// dovecotFixture is a Maildir with a crafted dovecot-uidlist covering the
// edges: P records (one empty), a G record, names with ,S= ,W= and flags,
// UIDs and a UIDVALIDITY above 2^31, a record for a vanished file, and a
// message the uidlist does not list.
func dovecotFixture(t testing.TB, uidvalidity uint32) (string, map[string]string) {
	dir := newMaildir(t)
	body := func(subj string) string { return "Subject: " + subj + "\n\nbody of " + subj + "\n" }
	// ,S= and ,W= must be true: Dovecot checks them.
	sw := func(subj string) string {
		b := body(subj)
		return fmt.Sprintf(",S=%d,W=%d", len(b), len(b)+strings.Count(b, "\n"))
	}
	msgs := map[string]string{ // subject -> path under the Maildir
		"plain":    "cur/1700000001.M1P1.host:2,S",
		"sizes":    "cur/1700000002.M2P2.host" + sw("sizes") + ":2,RS",
		"ppop3":    "cur/1700000003.M3P3.host:2,",
		"pempty":   "new/1700000004.M4P4.host" + sw("pempty")[:strings.Index(sw("pempty"), ",W")],
		"guid":     "cur/1700000005.M5P5.host:2,FS",
		"high":     "cur/1700000006.M6P6.host",
		"unlisted": "new/1700000009.M9P9.host",
	}
	for subj, p := range msgs {
		d, n := filepath.Split(p)
		put(t, dir, strings.TrimSuffix(d, "/"), n, body(subj))
	}
	uidlist := fmt.Sprintf("3 V%d N4000000001 G0123456789abcdef0123456789abcdef\n", uidvalidity) +
		"1 :1700000001.M1P1.host:2,S\n" +
		"7 :" + baseName(filepath.Base(msgs["sizes"])) + "\n" +
		"8 Psaved-uidl-08 :1700000003.M3P3.host\n" +
		"9 P :" + filepath.Base(msgs["pempty"]) + "\n" +
		"10 Gfeedface0000 :1700000005.M5P5.host\n" +
		"11 :1700000007.gone.host\n" +
		"3000000000 :1700000006.M6P6.host\n"
	if err := os.WriteFile(filepath.Join(dir, dovecotUIDListName), []byte(uidlist), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, msgs
}

// TestDovecotFormatsAgainstDovecot is the oracle: for each pop3_uidl_format,
// the real Dovecot 2.3 serves UIDLs on a crafted Maildir, and pop3d's reading
// of the same dovecot-uidlist with the same format must give the same UIDL
// for every message it lists.
func TestDovecotFormatsAgainstDovecot(t *testing.T) {
	needDovecotPOP3(t)
	formats := []string{
		"%08Xu%08Xv", "%u", "%v", "%Xu", "%Xv", "%08u", "%3u", "%-3u", "%f", "%g",
		"%u-%f", "%2.5f", "%-4.2f", "%3.0f", "%.3f", "%2.-3f", "%-6.08u",
		"%Uf", "%Lg", "%Rf", "%Mu", "%Hu", "%08Hu", "%5.Hu", "%Nu", "%4Nu", "%6.Nv",
		"%Ef", "%Tf", "%Df", "%XXu", "%UXv", "%LRUf", "%010Xv",
		"%%%u", "%u%",
		"x%20u", "%016Xv%016Xu",
	}
	for _, uv := range []uint32{1234567890, 3000000001} {
		for n, format := range formats {
			// Test names become directory names, which Dovecot would
			// expand: no % in them.
			t.Run(fmt.Sprintf("V%d/%d", uv, n), func(t *testing.T) {
				t.Logf("pop3_uidl_format = %s", format)
				f, err := ParseDovecotFormat(format)
				if err != nil {
					t.Fatalf("ParseDovecotFormat: %v", err)
				}
				dir, msgs := dovecotFixture(t, uv)
				data, err := os.ReadFile(filepath.Join(dir, dovecotUIDListName))
				if err != nil {
					t.Fatal(err)
				}
				ul, err := parseDovecotUIDList(data)
				if err != nil {
					t.Fatal(err)
				}
				cmds := []string{"UIDL"}
				for i := 1; i <= len(msgs); i++ {
					cmds = append(cmds, fmt.Sprintf("TOP %d 0", i))
				}
				out := dovecotSession(t, dir, map[string]string{"pop3_uidl_format": format}, cmds...)
				uidls, subjects, err := pop3UIDLs(t, out)
				if err != nil || len(uidls) != len(msgs) {
					t.Fatalf("dovecot: %v, %d UIDLs\n%s", err, len(uidls), out)
				}
				compared := 0
				for k, got := range uidls {
					subj := subjects[k]
					p, ok := msgs[subj]
					if !ok {
						t.Fatalf("message %d: unknown subject %q", k, subj)
					}
					base := baseName(filepath.Base(p))
					rec, listed := ul.recs[base]
					if !listed {
						// Dovecot gave it the next UID; pop3d never
						// serves a Dovecot UIDL for it.
						continue
					}
					want, err := dovecotUIDL(ul, rec, base, f)
					if err != nil {
						t.Fatalf("%s: %v", subj, err)
					}
					if got != want {
						t.Errorf("%s (%s): Dovecot %q, pop3d %q", subj, base, got, want)
					}
					compared++
				}
				if compared != len(msgs)-1 {
					t.Fatalf("compared %d UIDLs, want %d", compared, len(msgs)-1)
				}
			})
		}
	}
}

// TestDovecotMD5FormatOnMaildir checks what Dovecot does with %m on a
// Maildir: no UIDL at all from the format (it has header MD5s only for
// mbox), while P records still count.
func TestDovecotMD5FormatOnMaildir(t *testing.T) {
	needDovecotPOP3(t)
	if _, err := ParseDovecotFormat("%m"); !errors.Is(err, ErrDovecotMD5) {
		t.Fatalf("ParseDovecotFormat(%%m) = %v, want ErrDovecotMD5", err)
	}
	dir, _ := dovecotFixture(t, 1234567890)
	out := dovecotSession(t, dir, map[string]string{"pop3_uidl_format": "%m"}, "UIDL")
	if _, _, err := pop3UIDLs(t, out); err == nil && strings.Contains(out, "\r\n1 ") {
		t.Fatalf("Dovecot served UIDLs with %%m on a Maildir:\n%s", out)
	}
}

// TestDovecotRefusedFormats checks formats Dovecot refuses or fails to
// expand: pop3d refuses them too.
func TestDovecotRefusedFormats(t *testing.T) {
	needDovecotPOP3(t)
	for n, format := range []string{"%{uid}", "static", "%z%u", "%{pid}%u", "%{uidvalidity}-%u", "%{uid}%v", "%u%08"} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			t.Logf("pop3_uidl_format = %s", format)
			if _, err := ParseDovecotFormat(format); err == nil {
				t.Errorf("ParseDovecotFormat(%q) accepted", format)
			}
			dir, _ := dovecotFixture(t, 1234567890)
			out := dovecotSessionMayFail(t, dir, map[string]string{"pop3_uidl_format": format}, "UIDL")
			if strings.Contains(out, "\r\n1 ") {
				t.Errorf("Dovecot served UIDLs with %q:\n%s", format, out)
			}
		})
	}
}
