package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pop3d/pop3d/internal/pop3test"
)

// The servers pop3d takes over, run for real on the test's Maildirs:
// Dovecot's pop3 (dovecot-pop3d) and Courier's courierpop3d (unpacked by
// scripts/test-deps). Both are the programs their login processes start
// after authentication, serving one Maildir on stdin/stdout; oldServer
// plays the login process on a loopback port.

const (
	dovecotPOP3Bin = "/usr/lib/dovecot/pop3"
	courierPOP3Bin = "/opt/pop3d-test/courier/usr/lib/courier/courier/courierpop3d"
	// mailUID and mailGID own the Maildirs of a taken-over host: Dovecot
	// refuses to serve mail as root, so the old servers, and pop3d after
	// them, run as nobody.
	mailUID = 65534
	mailGID = 65534
)

// requireFile skips (fails under CI=true) when a program installed by
// scripts/test-deps is missing.
func requireFile(t testing.TB, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s missing: run scripts/test-deps as root (%s)", path, pkg)
	}
	t.Skipf("%s missing (run scripts/test-deps as root: %s)", path, pkg)
}

// oldUser is one account of an oldServer: its password and the post-login
// program serving its Maildir.
type oldUser struct {
	pass string
	// greets: the program sends the reply to PASS itself (Courier does;
	// Dovecot's pop3, started without a login process, sends nothing).
	greets bool
	cmd    func() *exec.Cmd
}

// oldServer is a POP3 login process for programs that run after login:
// it answers CAPA, USER and PASS, then hands the connection to the user's
// program as its stdin and stdout, as dovecot's pop3-login and Courier's
// pop3login do.
type oldServer struct {
	t     testing.TB
	ln    net.Listener
	addr  string
	users map[string]oldUser
	log   *syncBuffer
	wg    sync.WaitGroup
}

// startOldServer listens on addr ("" for a free loopback port) until stop
// or the end of the test.
func startOldServer(t testing.TB, addr string, users map[string]oldUser) *oldServer {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &oldServer{t: t, ln: ln, addr: ln.Addr().String(), users: users, log: &syncBuffer{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c.(*net.TCPConn))
			}()
		}
	}()
	t.Cleanup(s.stop)
	return s
}

// stop closes the listener and waits for the sessions to end.
func (s *oldServer) stop() {
	s.ln.Close()
	s.wg.Wait()
}

// readLineRaw reads one line a byte at a time, so that nothing the client
// sends after it is buffered here when the connection is handed over.
func readLineRaw(c net.Conn) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for len(b) < 512 {
		if _, err := c.Read(one); err != nil {
			return "", err
		}
		if one[0] == '\n' {
			return strings.TrimSuffix(string(b), "\r"), nil
		}
		b = append(b, one[0])
	}
	return "", fmt.Errorf("line too long")
}

func (s *oldServer) serve(c *net.TCPConn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	say := func(l string) { io.WriteString(c, l+"\r\n") }
	say("+OK old server ready")
	user := ""
	for {
		line, err := readLineRaw(c)
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "CAPA":
			say("+OK\r\nTOP\r\nUSER\r\nUIDL\r\n.")
		case "USER":
			user = arg
			say("+OK")
		case "PASS":
			u, ok := s.users[user]
			if !ok || u.pass != arg {
				say("-ERR [AUTH] authentication failed")
				continue
			}
			s.handOver(c, user, u)
			return
		case "QUIT":
			say("+OK bye")
			return
		default:
			say("-ERR not logged in")
		}
	}
}

// handOver runs u's program with pipes to and from the connection (Dovecot's
// pop3 refuses a socket on stdin: it wants its login process) and waits
// for it.
func (s *oldServer) handOver(c *net.TCPConn, name string, u oldUser) {
	c.SetDeadline(time.Time{})
	if !u.greets {
		io.WriteString(c, "+OK Logged in.\r\n")
	}
	cmd := u.cmd()
	cmd.Stdout, cmd.Stderr = c, s.log
	// The copy to its stdin is ours: it ends when serve closes the
	// connection after the program exited (exec's own copy would keep
	// Wait waiting for the client).
	stdin, err := cmd.StdinPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		fmt.Fprintf(s.log, "%s: %v\n", name, err)
		return
	}
	go func() {
		io.Copy(stdin, c)
		stdin.Close()
	}()
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			cmd.Process.Kill()
		}
	}()
	err = cmd.Wait()
	close(done)
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.Success()) {
		fmt.Fprintf(s.log, "%s: %s: %v\n", name, cmd.Path, err)
	}
}

// dovecotUser serves the Maildir at dir with Dovecot's pop3 and a private
// config holding settings (pop3_uidl_format, pop3_save_uidl, ...). Dovecot
// is started as root and switches to mail_uid itself.
func dovecotUser(t testing.TB, pass, dir string, settings map[string]string) oldUser {
	t.Helper()
	requireFile(t, dovecotPOP3Bin, "dovecot-pop3d")
	cfgDir := t.TempDir()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "base_dir = %s/run\nstate_dir = %s/state\n", cfgDir, cfgDir)
	fmt.Fprintf(&cfg, "mail_location = maildir:%s\nfirst_valid_uid = 0\nfirst_valid_gid = 0\n", dir)
	fmt.Fprintf(&cfg, "mail_uid = %d\nmail_gid = %d\nssl = no\nprotocols = pop3\nlog_path = /dev/stderr\n", mailUID, mailGID)
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&cfg, "%s = %s\n", k, settings[k])
	}
	conf := filepath.Join(cfgDir, "dovecot.conf")
	writeFile(t, conf, []byte(cfg.String()), 0o644)
	return oldUser{pass: pass, cmd: func() *exec.Cmd {
		cmd := exec.Command(dovecotPOP3Bin, "-c", conf)
		cmd.Env = []string{"USER=" + filepath.Base(dir), "HOME=" + filepath.Dir(dir), "PATH=/usr/bin:/bin"}
		return cmd
	}}
}

// courierUser serves the Maildir at dir with Courier's courierpop3d,
// running as the mail owner.
func courierUser(t testing.TB, pass, dir string) oldUser {
	t.Helper()
	requireFile(t, courierPOP3Bin, "courier-pop, unpacked")
	return oldUser{pass: pass, greets: true, cmd: func() *exec.Cmd {
		cmd := exec.Command(courierPOP3Bin, dir)
		cmd.Dir = filepath.Dir(dir)
		cmd.Env = []string{"AUTHENTICATED=" + filepath.Base(dir), "TCPREMOTEIP=127.0.0.1", "PATH=/usr/bin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: mailUID, Gid: mailGID}}
		return cmd
	}}
}

// handToMailOwner gives the tree at dir to mailUID:mailGID and makes its
// parents searchable, as a mail host's Maildirs are.
func handToMailOwner(t testing.TB, dir string) {
	t.Helper()
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, mailUID, mailGID)
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

// serverUIDLs logs in at addr and returns, for each message, its UIDL keyed
// by its content (RETR, un-stuffed, msgKey), which identifies it across
// servers.
func serverUIDLs(t testing.TB, addr, user, pass string) map[string]string {
	t.Helper()
	p := pop3test.Dial(t, addr)
	p.Login(user, pass)
	uidls := p.UIDL()
	out := make(map[string]string, len(uidls))
	for n, u := range uidls {
		_, body := p.Multi(fmt.Sprintf("RETR %d", n))
		k := msgKey(body)
		if _, dup := out[k]; dup {
			t.Fatalf("two messages with the same content in %s's mailbox", user)
		}
		out[k] = u
	}
	p.Quit()
	return out
}

// msgKey identifies a message by its content as every server sends it:
// the servers differ in how they send CRs that are not before an LF, and
// in the final line end of an empty message, so CRs and final LFs are
// left out.
func msgKey(b []byte) string {
	return string(bytes.TrimRight(bytes.ReplaceAll(b, []byte("\r"), nil), "\n"))
}

// subjectOf is the Subject header of a message as msgKey has it, for
// messages.
func subjectOf(body string) string {
	for _, l := range strings.Split(body, "\n") {
		if l == "" {
			break
		}
		if s, ok := strings.CutPrefix(l, "Subject: "); ok {
			return s
		}
	}
	if len(body) > 40 {
		body = body[:40]
	}
	return fmt.Sprintf("%q", body)
}

// hasFile reports whether name exists at the top of dir (a glob).
func hasFile(t testing.TB, dir, glob string) bool {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, glob))
	if err != nil {
		t.Fatal(err)
	}
	return len(m) > 0
}
