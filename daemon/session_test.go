package daemon_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pop3d/pop3d/daemon"
)

func TestPipelining(t *testing.T) {
	b := aliceBackend()
	ts := startServer(t, b, daemon.ModePlain, nil)
	c := ts.login(t, "alice", "secret")
	s1, s2, s3 := sizeOf(msg1), sizeOf(msg2), sizeOf(msg3)
	before := ts.lis.writes.Load()
	c.send("STAT\r\nLIST\r\nUIDL 2\r\nRETR 1\r\nTOP 2 0\r\nNOOP\r\nDELE 3\r\nSTAT\r\nRSET\r\nCAPA\r\nBOGUS\r\nLIST 3")
	c.expect(fmt.Sprintf("+OK 3 %d", s1+s2+s3))
	if got := c.multi(); len(got) != 4 {
		t.Fatalf("LIST: %q", got)
	}
	c.expect("+OK 2 uid-alice-2")
	c.expect(fmt.Sprintf("+OK %d octets", s1))
	if got, want := string(c.body()), string(stuff(wire(msg1))); got != want {
		t.Fatalf("RETR: %q, want %q", got, want)
	}
	c.expect("+OK top of message follows")
	if got := c.multi(); strings.Join(got, "|") != "Subject: two|" {
		t.Fatalf("TOP: %q", got)
	}
	c.expect("+OK")
	c.expect("+OK message 3 deleted")
	c.expect(fmt.Sprintf("+OK 2 %d", s1+s2))
	c.expect(fmt.Sprintf("+OK maildrop has 3 messages (%d octets)", s1+s2+s3))
	if got := c.multi(); len(got) != len(capaTrans)-1 {
		t.Fatalf("CAPA: %q", got)
	}
	c.expect("-ERR unknown command")
	c.expect(fmt.Sprintf("+OK 3 %d", s3))
	// Twelve answers, and the server wrote them in one go (two at most, if
	// the kernel split the commands).
	if w := ts.lis.writes.Load() - before; w > 2 {
		t.Errorf("%d writes for one batch of pipelined commands", w)
	}
}

// TestFlushBeforeBlocking: a command followed by part of the next one is
// answered without waiting for the rest.
func TestFlushBeforeBlocking(t *testing.T) {
	ts := startServer(t, aliceBackend(), daemon.ModePlain, nil)
	c := ts.dial(t)
	c.NetConn().Write([]byte("CAPA\r\nQU"))
	if got := c.multi(); len(got) != len(capaAuth)-1 {
		t.Fatalf("CAPA: %q", got)
	}
	c.NetConn().Write([]byte("IT\r\n"))
	c.expect("+OK bye")
	c.expectClosed()
	ts.waitLog(t, "msg=disconnect remote_ip=127.0.0.1 user=\"\" bytes_sent=")
}

func TestBareLFCommands(t *testing.T) {
	ts := startServer(t, aliceBackend(), daemon.ModePlain, nil)
	c := ts.dial(t)
	c.NetConn().Write([]byte("USER alice\nPASS secret\nSTAT\n"))
	c.expect("+OK")
	if l := c.line(); !strings.HasPrefix(l, "+OK maildrop has 3") {
		t.Fatalf("PASS: %q", l)
	}
	c.expect(fmt.Sprintf("+OK 3 %d", sizeOf(msg1)+sizeOf(msg2)+sizeOf(msg3)))
}

func TestLogLines(t *testing.T) {
	ts := startServer(t, aliceBackend(), daemon.ModePlain, nil)
	c := ts.login(t, "alice", "secret")
	c.cmd("RETR 1", fmt.Sprintf("+OK %d octets", sizeOf(msg1)))
	c.body()
	c.cmd("DELE 2", "+OK message 2 deleted")
	c.cmd("QUIT", "+OK bye (1 messages deleted)")
	c.expectClosed()
	for _, want := range []string{
		"level=INFO msg=connect remote=127.0.0.1:",
		" listener=pop3\n",
		"level=INFO msg=login remote_ip=127.0.0.1 user=alice mech=USER tls=false messages=3 octets=",
		"level=INFO msg=update remote_ip=127.0.0.1 user=alice retrieved=1 deleted=1\n",
		"level=INFO msg=disconnect remote_ip=127.0.0.1 user=alice bytes_sent=",
	} {
		ts.waitLog(t, want)
	}
	c = ts.dial(t)
	c.cmd("USER mallory", "+OK")
	c.cmd("PASS guess", "-ERR [AUTH] authentication failed")
	ts.waitLog(t, `level=WARN msg="login failed" remote_ip=127.0.0.1 user=mallory mech=USER reason="bad credentials"`)

	// Only bad credentials count as "login failed" (fail2ban's line).
	c.cmd("USER carol", "+OK")
	c.cmd("PASS pw", "-ERR [IN-USE] mailbox locked by another session")
	c.cmd("USER dave", "+OK")
	c.cmd("PASS pw", "-ERR [SYS/TEMP] internal error")
	ts.waitLog(t, `level=INFO msg="login refused" remote_ip=127.0.0.1 user=carol mech=USER reason="mailbox in use"`)
	ts.waitLog(t, `level=ERROR msg="login error" remote_ip=127.0.0.1 user=dave mech=USER reason="internal error" err="disk on fire"`)
	if n := strings.Count(ts.logs.String(), `msg="login failed"`); n != 1 {
		t.Errorf("%d login failed lines, want 1", n)
	}
}

// idleConnMemory opens n logged-in connections that then sit idle and
// returns the growth of heap and stack in use per connection, client side
// included. With useTLS the listener is implicit TLS.
func idleConnMemory(t testing.TB, n int, useTLS bool) float64 {
	b := newMemBackend()
	b.addUser("u", "p", memMessage{data: []byte("Subject: x\n\nhello\n")})
	cfg := testConfig()
	cfg.MaxConnections, cfg.MaxConnectionsPerIP = 0, 0
	mode := daemon.ModePlain
	dial := func(addr string) (net.Conn, error) { return net.Dial("tcp", addr) }
	if useTLS {
		ca, r, _, _ := tlsSetup(t)
		withTLS(r)(&cfg)
		mode = daemon.ModeTLS
		ccfg := clientConfig(ca)
		ccfg.ClientSessionCache = nil
		dial = func(addr string) (net.Conn, error) { return tls.Dial("tcp", addr, ccfg) }
	}
	srv := daemon.New(b, cfg, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l, mode)
	defer srv.Shutdown(t.Context())

	measure := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse + m.StackInuse
	}
	// One connection first, so that pools and lazily built globals exist.
	warm, err := dial(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	loginRaw(t, warm)
	defer warm.Close()
	m0 := measure()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := dial(l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		loginRaw(t, c)
	}
	time.Sleep(100 * time.Millisecond) // let every session block in its read
	m1 := measure()
	return float64(int64(m1)-int64(m0)) / float64(n)
}

// loginRaw logs in without any client-side buffer that would count
// against the server.
func loginRaw(t testing.TB, c net.Conn) {
	c.SetDeadline(time.Now().Add(ioTimeout))
	var buf [128]byte
	readLine := func() string {
		var s []byte
		for !strings.HasSuffix(string(s), "\r\n") {
			n, err := c.Read(buf[:])
			if err != nil {
				t.Fatal(err)
			}
			s = append(s, buf[:n]...)
		}
		return string(s)
	}
	readLine()
	c.Write([]byte("USER u\r\nPASS p\r\n"))
	got := readLine()
	if !strings.Contains(got, "+OK maildrop") {
		got += readLine()
	}
	if !strings.Contains(got, "+OK maildrop has 1 messages") {
		t.Fatalf("login: %q", got)
	}
	c.SetDeadline(time.Time{})
}

// TestIdleConnectionMemory holds the engine to < 32 KiB per idle logged-in
// connection. The race detector multiplies memory use, so it only reports
// there.
func TestIdleConnectionMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1000 connections")
	}
	per := idleConnMemory(t, 1000, false)
	t.Logf("%.0f bytes of heap+stack per idle logged-in connection (both ends)", per)
	if !raceEnabled && per > 32<<10 {
		t.Errorf("%.0f bytes per idle connection, want < 32 KiB", per)
	}
}

// BenchmarkIdleConnectionMemory reports heap+stack per idle logged-in
// connection, both ends of the loopback connection counted.
func BenchmarkIdleConnectionMemory(b *testing.B) {
	for _, useTLS := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "tls"}[useTLS], func(b *testing.B) {
			for b.Loop() {
				b.ReportMetric(idleConnMemory(b, 1000, useTLS), "bytes/conn")
			}
		})
	}
}
