package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"
)

// server is one POP3 server under test, started on a loopback port over its
// own copy of the Maildirs.
type server struct {
	name    string // "pop3d" or "Dovecot"
	addr    string
	tlsAddr string // implicit TLS (995)
	root    string // Maildir root: user u's Maildir is root/u
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd has exited
	log     string        // file holding the server's log output
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *server) start(ctx context.Context) error {
	logf, err := os.Create(s.log)
	if err != nil {
		return err
	}
	defer logf.Close()
	s.cmd.Stdout = logf
	s.cmd.Stderr = logf
	// Own process group, so that everything it forks can be killed at once.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	s.done = make(chan struct{})
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := dial(cctx, s.addr)
		cancel()
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("%s exited at start: %s", s.name, s.logTail())
		case <-ctx.Done():
			s.stop()
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return fmt.Errorf("%s: no greeting on %s after 30s: %v; log: %s", s.name, s.addr, err, s.logTail())
		}
	}
}

// stop ends the server: SIGTERM, then SIGKILL to its whole process group.
func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil || s.done == nil {
		return
	}
	pid := s.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
	// Dovecot's children may outlive a master that is gone.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	<-s.done
}

func (s *server) logTail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}

// pid is the server's main process; memory and CPU are summed over it and
// all its descendants.
func (s *server) pid() int { return s.cmd.Process.Pid }

func newPop3d(bin, root, passwd, logDir, cert, key string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	tport, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	taddr := fmt.Sprintf("127.0.0.1:%d", tport)
	cmd := exec.Command(bin, "-config", "/dev/null", "-passwd-file", passwd,
		"-maildir", filepath.Join(root, "%u"), "-listen", addr,
		"-listen-tls", taddr, "-tls-cert", cert, "-tls-key", key,
		"-max-connections", "0", "-max-connections-per-ip", "0",
		"-auth-failure-delay", "2s", "-log-level", "warn")
	return &server{name: "pop3d", addr: addr, tlsAddr: taddr, root: root, cmd: cmd,
		log: filepath.Join(logDir, "pop3d.log")}, nil
}

// dovecotConf is Dovecot tuned for speed as the issue asks: long-lived login
// processes (service_count = 0) and pop3 processes that are reused, some of
// each forked in advance, limits raised far above the bench's needs. Mail is
// marked seen on RETR+QUIT (pop3_no_flag_updates = no, the default), the same
// work pop3d does with mark_read = yes. UIDL is the Maildir base name (%f),
// as pop3d's. Authentication cache off (the default), like pop3d.
var dovecotConf = template.Must(template.New("conf").Parse(`# written by pop3d's bench tool
base_dir = {{.Base}}/run
state_dir = {{.Base}}/state
instance_name = pop3d-bench-{{.Port}}
protocols = pop3
listen = 127.0.0.1
# TLS only on the 995 listener's connections; plain logins allowed on 110.
ssl = yes
ssl_cert = <{{.Cert}}
ssl_key = <{{.Key}}
disable_plaintext_auth = no
auth_mechanisms = plain
log_path = {{.Base}}/dovecot.log
# pop3d runs with log_level = warn: no per-login info lines on either side.
info_log_path = /dev/null
mail_location = maildir:{{.Root}}/%u
mail_uid = {{.UID}}
mail_gid = {{.GID}}
first_valid_uid = {{.UID}}
first_valid_gid = {{.GID}}
mail_max_userip_connections = 100000
pop3_uidl_format = %f
default_process_limit = 3000
default_client_limit = 20000
passdb {
  driver = passwd-file
  args = {{.Passwd}}
}
userdb {
  driver = static
  args = uid={{.UID}} gid={{.GID}}
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = {{.Port}}
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = {{.TLSPort}}
    ssl = yes
  }
  service_count = 0
  process_min_avail = 2
  client_limit = 5000
}
service pop3 {
  service_count = 0
  process_min_avail = 2
  process_limit = 3000
}
service anvil {
  client_limit = 20000
}
service auth {
  client_limit = 20000
}
`))

// newDovecot writes a private configuration in base (never /etc/dovecot)
// and prepares "dovecot -F -c CONF".
func newDovecot(bin, base, root, passwd string, uid, gid int, cert, key string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	tport, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, err
	}
	var b strings.Builder
	err = dovecotConf.Execute(&b, map[string]any{
		"Base": base, "Root": root, "Passwd": passwd, "Port": port, "UID": uid, "GID": gid,
		"TLSPort": tport, "Cert": cert, "Key": key,
	})
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(base, "dovecot.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-F", "-c", conf)
	return &server{name: "Dovecot", addr: "127.0.0.1:" + strconv.Itoa(port), tlsAddr: "127.0.0.1:" + strconv.Itoa(tport), root: root, cmd: cmd,
		log: filepath.Join(base, "dovecot.log")}, nil
}

// procStat returns the fields of /proc/PID/stat after the command name,
// state first, or nil if the process is gone. The command name is in
// parentheses and may contain spaces, so it is cut at the last ')'.
func procStat(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// treePIDs returns pid and all its descendants.
func treePIDs(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []int{pid}
	}
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f := procStat(p)
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		children[pp] = append(children[pp], p)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// treeMemory sums PSS (kB, from smaps_rollup) over a process tree.
func treeMemory(pid int) (pssKiB int64, procs int, err error) {
	for _, p := range treePIDs(pid) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/smaps_rollup")
		if err != nil {
			continue // exited meanwhile
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "Pss:") {
				f := strings.Fields(line)
				if len(f) >= 2 {
					v, _ := strconv.ParseInt(f[1], 10, 64)
					pssKiB += v
				}
			}
		}
		procs++
	}
	if procs == 0 {
		return 0, 0, errors.New("no process to measure")
	}
	return pssKiB, procs, nil
}

// treeCPU sums user+system CPU time over a process tree, including children
// already reaped (cutime/cstime).
func treeCPU(pid int) time.Duration {
	var ticks int64
	for _, p := range treePIDs(pid) {
		f := procStat(p)
		// state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
		if len(f) < 15 {
			continue
		}
		for _, k := range []int{11, 12, 13, 14} {
			v, _ := strconv.ParseInt(f[k], 10, 64)
			ticks += v
		}
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ is 100 on Linux
}
