package e2e

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Shared Maildirs on GlusterFS (pop3d.cluster(7)): a one-brick volume
// served by glusterd on its own host, mounted with FUSE by two backends,
// each a network namespace; the mount exists only in the backend's mount
// namespace, so nothing is mounted on the machine itself.
const (
	glusterIP    = "10.0.0.21"
	pingTimeout  = 5 // network.ping-timeout of the volume, seconds
	glusterUsers = 4
)

var glusterBackendIPs = []string{"10.0.0.11", "10.0.0.12"}

type glusterHost struct {
	name   string
	ns     string
	ip     string
	mnt    string // the volume's mount point, seen in the client's mount namespace
	client *proc  // the FUSE client (glusterfs -N): its mount namespace holds the mount
	pop3d  *proc
	conf   string
}

type glusterLab struct {
	top   *testing.T // owns what outlives a subtest (a restarted pop3d)
	lab   *netLab
	dir   string
	gs    string // glusterd's namespace
	cli   []string
	brick string
	hosts []*glusterHost
	pw    string
}

// newGlusterLab starts glusterd, creates and starts the volume, mounts it
// on both backends and starts pop3d on them.
func newGlusterLab(t *testing.T) *glusterLab {
	t.Helper()
	for _, tool := range []string{"glusterd", "gluster", "glusterfs", "nsenter"} {
		requireTool(t, tool)
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Fatalf("GlusterFS mounts need /dev/fuse: %v", err)
	}
	g := &glusterLab{top: t, lab: newNetLab(t), dir: shortTempDir(t)}
	g.gs = g.lab.host("gs", glusterIP)
	g.brick = filepath.Join(g.dir, "brick")
	state := filepath.Join(g.dir, "glusterd")
	for _, d := range []string{g.brick, state} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// glusterd's state, CLI socket and logs in the test's directory; the
	// pid files and logs its brick process writes to fixed paths go to
	// tmpfs mounts of its own mount namespace.
	sock := filepath.Join(g.dir, "glusterd.socket")
	vol := filepath.Join(g.dir, "glusterd.vol")
	writeText(t, vol, strings.Join([]string{
		"volume management",
		"    type mgmt/glusterd",
		"    option working-directory " + state,
		"    option glusterd-sockfile " + sock,
		"    option transport-type socket",
		"    option transport.socket.listen-port 24007",
		"    option ping-timeout 0",
		"    option event-threads 1",
		"end-volume",
	}, "\n")+"\n")
	startIn(t, g.gs, "glusterd", "sh", "-c",
		"mount -t tmpfs none /var/log/glusterfs && mount -t tmpfs none /run/gluster && exec glusterd -N -f "+vol+
			" -p "+filepath.Join(g.dir, "glusterd.pid")+" -l "+filepath.Join(g.dir, "glusterd.log"))
	g.cli = []string{"gluster", "--mode=script", "--glusterd-sock=" + sock, "--log-file=" + filepath.Join(g.dir, "cli.log")}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("glusterd did not create its CLI socket within 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	g.gluster(t, "volume", "create", "mail", glusterIP+":"+g.brick, "force")
	// A partition longer than this makes the volume drop the host's locks:
	// the client gives up on the brick after network.ping-timeout, the
	// brick on the client after its TCP keepalive or user timeout. Short
	// here, so that the test takes seconds, not the default 42.
	for _, kv := range [][2]string{
		{"network.ping-timeout", strconv.Itoa(pingTimeout)},
		{"server.keepalive-time", "2"},
		{"server.keepalive-interval", "1"},
		{"server.keepalive-count", "2"},
		{"server.tcp-user-timeout", strconv.Itoa(pingTimeout)},
	} {
		g.gluster(t, "volume", "set", "mail", kv[0], kv[1])
	}
	g.gluster(t, "volume", "start", "mail")

	var lines []string
	lines = append(lines, shaLine("shared", "pw", ""), shaLine("part", "pw", ""))
	for i := range glusterUsers {
		lines = append(lines, shaLine(fmt.Sprintf("s%d", i), "pw", ""))
	}
	g.pw = filepath.Join(g.dir, "passwd")
	writeText(t, g.pw, strings.Join(lines, "\n")+"\n")

	for i, ip := range glusterBackendIPs {
		h := &glusterHost{name: fmt.Sprintf("b%d", i+1), ip: ip}
		h.ns = g.lab.host(h.name, ip)
		h.mnt = filepath.Join(g.dir, "mnt-"+h.name)
		if err := os.MkdirAll(h.mnt, 0o755); err != nil {
			t.Fatal(err)
		}
		h.client = startIn(t, h.ns, "glusterfs "+h.name, "glusterfs", "-N", "--volfile-server="+glusterIP,
			"--volfile-id=mail", "-l", filepath.Join(g.dir, "client-"+h.name+".log"), h.mnt)
		g.hosts = append(g.hosts, h)
	}
	for _, h := range g.hosts {
		g.waitMount(t, h)
	}
	if err := g.sh(g.hosts[0], "mkdir -p "+filepath.Join(g.hosts[0].mnt, "mail")); err != nil {
		t.Fatal(err)
	}
	for _, h := range g.hosts {
		h.conf = filepath.Join(g.dir, h.name+".conf")
		writeText(t, h.conf, strings.Join([]string{
			"passwd_file = " + g.pw,
			"maildir = " + filepath.Join(h.mnt, "mail", "%u"),
			"listen = " + h.ip + ":110",
			// Clear text inside the lab: these tests are about storage.
			"allow_insecure_auth = yes",
			"auth_failure_delay = 0s",
			"max_auth_failures = 0",
		}, "\n")+"\n")
		g.startPop3d(t, h)
	}
	return g
}

// gluster runs the gluster CLI in glusterd's namespace.
func (g *glusterLab) gluster(t *testing.T, args ...string) {
	t.Helper()
	runIn(t, g.gs, 2*time.Minute, g.cli[0], append(g.cli[1:], args...)...)
}

// inMount is the argv prefix that runs a program in h's network and mount
// namespaces (where the volume is mounted).
func (h *glusterHost) inMount() []string {
	return []string{"nsenter", "-t", strconv.Itoa(h.client.cmd.Process.Pid), "-m", "-n", "--"}
}

// sh runs a shell command where h sees the volume.
func (g *glusterLab) sh(h *glusterHost, script string) error {
	argv := append(h.inMount(), "sh", "-c", script)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s on %s: %v: %s", script, h.name, err, out)
	}
	return nil
}

func (g *glusterLab) waitMount(t *testing.T, h *glusterHost) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		argv := append(h.inMount(), "stat", "-f", "-c", "%T", h.mnt)
		out, err := exec.Command(argv[0], argv[1:]...).Output()
		if err == nil && strings.Contains(string(out), "fuse") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: volume not mounted within 30 s (%s, %v):\n%s", h.name, out, err, h.client.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (g *glusterLab) startPop3d(t *testing.T, h *glusterHost) {
	t.Helper()
	h.pop3d = startArgv(t, "pop3d "+h.name, append(h.inMount(), binPath, "-config", h.conf))
	h.pop3d.waitLog(t, "pop3d started", 15*time.Second)
	waitListen(t, h.ns, h.ip+":110", 10*time.Second)
}

// soakMessage is the content of message id: its id, a body of a size that
// depends on it, and a checksum of both, so that a torn or mixed-up file
// shows.
func soakMessage(id int) string {
	body := strings.Repeat(fmt.Sprintf("line %d of message %d\n", id, id), 1+id%40)
	sum := sha256.Sum256([]byte(body))
	return fmt.Sprintf("X-Soak-Id: %d\nX-Soak-Sum: %s\nSubject: soak %d\n\n%s", id, hex.EncodeToString(sum[:]), id, body)
}

// parseSoak checks a message as a client or the brick has it (CRLF or LF)
// and returns its id.
func parseSoak(content string) (int, error) {
	c := strings.ReplaceAll(content, "\r\n", "\n")
	head, _, _ := strings.Cut(c, "\n")
	id, err := strconv.Atoi(strings.TrimPrefix(head, "X-Soak-Id: "))
	if err != nil {
		return 0, fmt.Errorf("no id in %q", clip(c))
	}
	if want := soakMessage(id); c != want {
		return id, fmt.Errorf("message %d corrupted: %q", id, clip(c))
	}
	return id, nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// deliver writes messages the way an MTA does (tmp/, then a rename into
// new/), on host h, through its mount of the volume.
func (g *glusterLab) deliver(h *glusterHost, user string, ids ...int) error {
	dir := filepath.Join(h.mnt, "mail", user)
	var b strings.Builder
	fmt.Fprintf(&b, "set -e; mkdir -p %s/tmp %s/new %s/cur; cd %s\n", dir, dir, dir, dir)
	for _, id := range ids {
		name := fmt.Sprintf("%d.M%dP1.soak", 1700000000+id, id)
		fmt.Fprintf(&b, "printf '%%s' '%s' > tmp/%s; mv tmp/%s new/%s\n", soakMessage(id), name, name, name)
	}
	return g.sh(h, b.String())
}

// brickIDs reads the ids of the messages of user from the brick, with the
// volume idle: the final word on what is stored.
func (g *glusterLab) brickIDs(t *testing.T, user string) map[int]int {
	t.Helper()
	ids := make(map[int]int)
	for _, sub := range []string{"new", "cur"} {
		dir := filepath.Join(g.brick, "mail", user, sub)
		ents, err := os.ReadDir(dir)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, e := range ents {
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			id, err := parseSoak(string(data))
			if err != nil {
				t.Errorf("brick %s/%s: %v", user, e.Name(), err)
				continue
			}
			ids[id]++
		}
	}
	return ids
}

// pop is a minimal POP3 client over a connection from the client host.
type pop struct {
	c net.Conn
	r *bufio.Reader
}

func dialPop(ns, addr string) (*pop, error) {
	c, err := dialIn(ns, addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	p := &pop{c: c, r: bufio.NewReader(c)}
	if l, err := p.line(); err != nil || !strings.HasPrefix(l, "+OK") {
		c.Close()
		return nil, fmt.Errorf("greeting %q: %v", l, err)
	}
	return p, nil
}

func (p *pop) line() (string, error) {
	l, err := p.r.ReadString('\n')
	return strings.TrimRight(l, "\r\n"), err
}

func (p *pop) cmd(line string) (string, error) {
	if _, err := p.c.Write([]byte(line + "\r\n")); err != nil {
		return "", err
	}
	return p.line()
}

// multi reads a multi-line answer's lines, dot-unstuffed.
func (p *pop) multi() ([]string, error) {
	var out []string
	for {
		l, err := p.line()
		if err != nil {
			return out, err
		}
		if l == "." {
			return out, nil
		}
		out = append(out, strings.TrimPrefix(l, "."))
	}
}

func (p *pop) login(user string) (string, error) {
	if l, err := p.cmd("USER " + user); err != nil || !strings.HasPrefix(l, "+OK") {
		return l, fmt.Errorf("USER: %q %v", l, err)
	}
	return p.cmd("PASS pw")
}

// TestGlusterSharedMaildirs runs the shared-storage design: the session
// lock across hosts, a soak with deliveries, retrievals, deletions, dropped
// connections and a killed backend, and a partition longer than the
// volume's ping-timeout.
func TestGlusterSharedMaildirs(t *testing.T) {
	g := newGlusterLab(t)
	cl := g.lab.host("cl", clientIP)
	b1, b2 := g.hosts[0], g.hosts[1]

	t.Run("IN-USE across hosts", func(t *testing.T) {
		if err := g.deliver(b1, "shared", 1, 2); err != nil {
			t.Fatal(err)
		}
		a, err := dialPop(cl, b1.ip+":110")
		if err != nil {
			t.Fatal(err)
		}
		defer a.c.Close()
		if l, err := a.login("shared"); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("login on b1: %q %v", l, err)
		}
		b, err := dialPop(cl, b2.ip+":110")
		if err != nil {
			t.Fatal(err)
		}
		defer b.c.Close()
		if l, _ := b.login("shared"); l != "-ERR [IN-USE] mailbox is in use by another session" {
			t.Errorf("login on b2 while b1 holds the lock: %q", l)
		}
		if l, _ := a.cmd("QUIT"); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("QUIT on b1: %q", l)
		}
		if l, _ := b.login("shared"); !strings.HasPrefix(l, "+OK maildrop has 2 messages") {
			t.Errorf("login on b2 after b1's QUIT: %q", l)
		}
	})

	t.Run("soak", func(t *testing.T) { g.soak(t, cl) })

	t.Run("partition longer than ping-timeout", func(t *testing.T) { g.partition(t, cl) })
}

// soakLedger is what the soak's clients learnt, for the final check.
type soakLedger struct {
	mu        sync.Mutex
	delivered map[string]map[int]bool
	deleted   map[string]map[int]bool   // DELE'd in a session whose QUIT got +OK
	maybe     map[string]map[int]bool   // DELE'd in a session whose QUIT got no answer
	uidl      map[string]map[int]string // the UIDL each message had, on any host
	sessions  int
	retrieved int
	inUse     int
	drops     int
	errs      []string
}

func (l *soakLedger) add(m map[string]map[int]bool, user string, ids ...int) {
	if m[user] == nil {
		m[user] = make(map[int]bool)
	}
	for _, id := range ids {
		m[user][id] = true
	}
}

func (l *soakLedger) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, fmt.Sprintf(format, args...))
}

func (g *glusterLab) soak(t *testing.T, cl string) {
	led := &soakLedger{delivered: map[string]map[int]bool{}, deleted: map[string]map[int]bool{},
		maybe: map[string]map[int]bool{}, uidl: map[string]map[int]string{}}
	users := make([]string, glusterUsers)
	next := 1
	for i := range users {
		users[i] = fmt.Sprintf("s%d", i)
		var ids []int
		for range 15 {
			ids = append(ids, next)
			next++
		}
		if err := g.deliver(g.hosts[i%2], users[i], ids...); err != nil {
			t.Fatal(err)
		}
		led.add(led.delivered, users[i], ids...)
	}
	const duration = 12 * time.Second
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Deliveries, alternating between the hosts' mounts.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(150 * time.Millisecond):
			}
			u := users[i%len(users)]
			led.mu.Lock()
			ids := []int{next, next + 1}
			next += 2
			led.mu.Unlock()
			if err := g.deliver(g.hosts[i%2], u, ids...); err != nil {
				led.fail("delivery: %v", err)
				return
			}
			led.mu.Lock()
			led.add(led.delivered, u, ids...)
			led.mu.Unlock()
		}
	}()
	// Clients on both backends.
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for {
				select {
				case <-stop:
					return
				default:
				}
				g.soakSession(cl, led, users[rng.IntN(len(users))], g.hosts[rng.IntN(2)], rng)
			}
		}()
	}
	// kill -9 of backend 1's pop3d in the middle, and a restart.
	time.Sleep(duration / 2)
	b1 := g.hosts[0]
	b1.pop3d.stop(syscall.SIGKILL)
	time.Sleep(500 * time.Millisecond)
	g.startPop3d(g.top, b1)
	time.Sleep(duration / 2)
	close(stop)
	wg.Wait()

	led.mu.Lock()
	defer led.mu.Unlock()
	for _, e := range led.errs {
		t.Error(e)
	}
	t.Logf("soak: %d sessions, %d messages retrieved, %d IN-USE refusals, %d dropped connections, %d delivered",
		led.sessions, led.retrieved, led.inUse, led.drops, next-1)
	for _, u := range users {
		stored := g.brickIDs(t, u)
		for id, n := range stored {
			switch {
			case n > 1:
				t.Errorf("%s: message %d stored %d times", u, id, n)
			case !led.delivered[u][id]:
				t.Errorf("%s: message %d stored but never delivered", u, id)
			case led.deleted[u][id]:
				t.Errorf("%s: message %d resurrected after a confirmed deletion", u, id)
			}
		}
		for id := range led.delivered[u] {
			if stored[id] == 0 && !led.deleted[u][id] && !led.maybe[u][id] {
				t.Errorf("%s: message %d lost", u, id)
			}
		}
	}
}

// soakSession is one client session: login, UIDL and LIST, RETR of a few
// messages (checked), DELE of some, then QUIT or a dropped connection.
func (g *glusterLab) soakSession(cl string, led *soakLedger, user string, h *glusterHost, rng *rand.Rand) {
	p, err := dialPop(cl, h.ip+":110")
	if err != nil {
		time.Sleep(50 * time.Millisecond) // the backend is being restarted
		return
	}
	defer p.c.Close()
	l, err := p.login(user)
	if err != nil || !strings.HasPrefix(l, "+OK") {
		if strings.Contains(l, "[IN-USE]") {
			led.mu.Lock()
			led.inUse++
			led.mu.Unlock()
			time.Sleep(time.Duration(rng.IntN(50)) * time.Millisecond)
		}
		return
	}
	led.mu.Lock()
	led.sessions++
	led.mu.Unlock()
	if l, err := p.cmd("UIDL"); err != nil || !strings.HasPrefix(l, "+OK") {
		return
	}
	uids, err := p.multi()
	if err != nil {
		return
	}
	uidOf := make(map[int]string)
	for _, l := range uids {
		n, uid, _ := strings.Cut(l, " ")
		k, _ := strconv.Atoi(n)
		uidOf[k] = uid
	}
	if l, err := p.cmd("LIST"); err != nil || !strings.HasPrefix(l, "+OK") {
		return
	}
	list, err := p.multi()
	if err != nil {
		return
	}
	var dele []int
	for _, entry := range list {
		if rng.IntN(3) != 0 {
			continue
		}
		var n int
		var size int64
		fmt.Sscanf(entry, "%d %d", &n, &size)
		if l, err := p.cmd(fmt.Sprintf("RETR %d", n)); err != nil || !strings.HasPrefix(l, "+OK") {
			return
		}
		lines, err := p.multi()
		if err != nil {
			return
		}
		content := strings.Join(lines, "\r\n") + "\r\n"
		if int64(len(content)) != size {
			led.fail("%s on %s: message %d is %d octets, LIST said %d", user, h.name, n, len(content), size)
		}
		id, err := parseSoak(content)
		if err != nil {
			led.fail("%s on %s: RETR %d: %v", user, h.name, n, err)
			continue
		}
		led.mu.Lock()
		led.retrieved++
		// A message keeps its UIDL whichever host serves it, and on
		// every later login (the size cache and UIDL records are shared).
		if led.uidl[user] == nil {
			led.uidl[user] = make(map[int]string)
		}
		if prev, ok := led.uidl[user][id]; ok && prev != uidOf[n] {
			led.errs = append(led.errs, fmt.Sprintf("%s on %s: message %d has UIDL %q, earlier %q", user, h.name, id, uidOf[n], prev))
		}
		led.uidl[user][id] = uidOf[n]
		led.mu.Unlock()
		if rng.IntN(2) == 0 {
			if l, err := p.cmd(fmt.Sprintf("DELE %d", n)); err != nil || !strings.HasPrefix(l, "+OK") {
				return
			}
			dele = append(dele, id)
		}
	}
	if rng.IntN(4) == 0 {
		led.mu.Lock()
		led.drops++
		led.mu.Unlock()
		return // dropped: nothing may be deleted
	}
	l, err = p.cmd("QUIT")
	led.mu.Lock()
	defer led.mu.Unlock()
	switch {
	case err == nil && strings.HasPrefix(l, "+OK"):
		led.add(led.deleted, user, dele...)
	case err != nil:
		// The backend died during UPDATE: some may be gone.
		led.add(led.maybe, user, dele...)
	default:
		// -ERR [SYS/TEMP] n messages could not be removed: some may be
		// gone (the answer says how many were not).
		led.add(led.maybe, user, dele...)
	}
}

// partition: a session on b1 marks messages deleted; b1 is cut off for
// longer than the volume's ping-timeout, so the volume drops its lock; b2
// logs the user in and deletes some of the same messages; b1 comes back and
// its session says QUIT. No message is lost, none is deleted that no
// session deleted, and none twice.
func (g *glusterLab) partition(t *testing.T, cl string) {
	b1, b2 := g.hosts[0], g.hosts[1]
	const user = "part"
	if err := g.deliver(b2, user, 9001, 9002, 9003, 9004); err != nil {
		t.Fatal(err)
	}
	a, err := dialPop(cl, b1.ip+":110")
	if err != nil {
		t.Fatal(err)
	}
	defer a.c.Close()
	if l, _ := a.login(user); !strings.HasPrefix(l, "+OK maildrop has 4 messages") {
		t.Fatalf("login on b1: %q", l)
	}
	// UIDL order is the snapshot's; find the numbers of 9001 and 9002.
	num := func(p *pop) map[string]int {
		if l, err := p.cmd("UIDL"); err != nil || !strings.HasPrefix(l, "+OK") {
			t.Fatalf("UIDL: %q %v", l, err)
		}
		lines, err := p.multi()
		if err != nil {
			t.Fatal(err)
		}
		m := make(map[string]int)
		for _, l := range lines {
			n, uid, _ := strings.Cut(l, " ")
			m[uid], _ = strconv.Atoi(n)
		}
		return m
	}
	uid := func(id int) string { return fmt.Sprintf("%d.M%dP1.soak", 1700000000+id, id) }
	na := num(a)
	for _, id := range []int{9001, 9002} {
		if l, _ := a.cmd(fmt.Sprintf("DELE %d", na[uid(id)])); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("DELE on b1: %q", l)
		}
	}
	// The partition; b1's client does not see the lock go.
	g.lab.cut(b1.name)
	partitioned := time.Now()
	var b *pop
	var l string
	for {
		if b, err = dialPop(cl, b2.ip+":110"); err != nil {
			t.Fatal(err)
		}
		l, _ = b.login(user)
		if strings.HasPrefix(l, "+OK") {
			break
		}
		b.c.Close()
		if !strings.Contains(l, "[IN-USE]") || time.Since(partitioned) > time.Duration(pingTimeout+30)*time.Second {
			t.Fatalf("login on b2 during the partition: %q", l)
		}
		time.Sleep(500 * time.Millisecond)
	}
	defer b.c.Close()
	t.Logf("b2 took the mailbox %.1f s after b1 was cut off (ping-timeout %d s)", time.Since(partitioned).Seconds(), pingTimeout)
	nb := num(b)
	for _, id := range []int{9002, 9003} {
		if l, _ := b.cmd(fmt.Sprintf("DELE %d", nb[uid(id)])); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("DELE on b2: %q", l)
		}
	}
	if l, _ := b.cmd("QUIT"); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("QUIT on b2: %q", l)
	}
	// New mail arrives before b1's session ends; it was never listed there.
	if err := g.deliver(b2, user, 9005); err != nil {
		t.Fatal(err)
	}
	g.lab.mend(b1.name)
	a.c.SetDeadline(time.Now().Add(90 * time.Second))
	l, err = a.cmd("QUIT")
	t.Logf("QUIT on b1 after the partition: %q %v", l, err)
	time.Sleep(500 * time.Millisecond)
	for _, line := range strings.Split(b1.pop3d.stderr.String(), "\n") {
		if strings.Contains(line, "user=part") && !strings.Contains(line, "msg=login ") {
			t.Logf("b1: %s", line)
		}
	}
	// Whatever b1 answered: 9001 (deleted by b1) may be gone or not (b1's
	// UPDATE may have failed), 9002 and 9003 are gone (b2's QUIT said +OK),
	// 9004 and 9005 are there, and nothing is there twice.
	time.Sleep(time.Second)
	stored := g.brickIDs(t, user)
	for id, n := range stored {
		if n != 1 {
			t.Errorf("message %d stored %d times", id, n)
		}
	}
	for _, id := range []int{9002, 9003} {
		if stored[id] > 0 {
			t.Errorf("message %d resurrected", id)
		}
	}
	for _, id := range []int{9004, 9005} {
		if stored[id] == 0 {
			t.Errorf("message %d lost", id)
		}
	}
	if strings.HasPrefix(l, "+OK") && stored[9001] > 0 {
		t.Errorf("b1 answered %q but message 9001 is still there", l)
	}
}
