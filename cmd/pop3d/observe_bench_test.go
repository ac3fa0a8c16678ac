package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pop3d/pop3d/daemon"
)

// What the observers cost the engine: the same in-process server with
// Config.Observer nil and with the metrics and the session registry, as
// pop3d runs with metrics_listen and control_socket set. The backend is in
// memory and checks no password hash, so that the observers' share of a
// login is not hidden behind bcrypt.

type benchBackend struct{}

func (benchBackend) Login(_ context.Context, user, pass string, _ daemon.ConnInfo) (daemon.Mailbox, error) {
	if pass != "p" {
		return nil, daemon.ErrAuth
	}
	return benchMailbox{}, nil
}

type benchMailbox struct{}

func (benchMailbox) Len() int       { return 1 }
func (benchMailbox) Size(int) int64 { return 12 }
func (benchMailbox) UID(int) string { return "uid1" }
func (benchMailbox) Open(int) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("Subject: x\n")), nil
}
func (benchMailbox) Commit(context.Context, []int, []int) error { return nil }
func (benchMailbox) Close() error                               { return nil }

// benchServer serves benchBackend on loopback with observers on or off and
// a text logger to io.Discard (the per-session logger is built either way).
func benchServer(b *testing.B, observed bool) string {
	cfg := daemon.DefaultConfig()
	cfg.MaxConnections, cfg.MaxConnectionsPerIP = 0, 0
	if observed {
		m := newMetrics()
		cfg.Observer = engineObserver(observers{m, newRegistry()})
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := daemon.New(benchBackend{}, cfg, logger)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(l, daemon.ModePlain)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return l.Addr().String()
}

// benchLogin connects and logs in, reading with a small buffer of its own.
func benchLogin(b *testing.B, addr string) net.Conn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var buf [256]byte
	got := ""
	read := func(want string) {
		for !strings.Contains(got, want) {
			n, err := c.Read(buf[:])
			if err != nil {
				b.Fatalf("reading %q: %v (got %q)", want, err, got)
			}
			got += string(buf[:n])
		}
	}
	read("ready\r\n")
	c.Write([]byte("USER u\r\nPASS p\r\n"))
	read("+OK maildrop has 1 messages")
	c.SetDeadline(time.Time{})
	return c
}

func heapStack() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// BenchmarkObserverIdleMemory reports heap+stack per idle logged-in
// connection (both ends of the loopback connection counted).
func BenchmarkObserverIdleMemory(b *testing.B) {
	const n = 1000
	for _, observed := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "metrics+registry"}[observed], func(b *testing.B) {
			for b.Loop() {
				addr := benchServer(b, observed)
				warm := benchLogin(b, addr)
				m0 := heapStack()
				conns := make([]net.Conn, 0, n)
				for range n {
					conns = append(conns, benchLogin(b, addr))
				}
				time.Sleep(100 * time.Millisecond)
				m1 := heapStack()
				b.ReportMetric(float64(int64(m1)-int64(m0))/n, "bytes/conn")
				for _, c := range conns {
					c.Close()
				}
				warm.Close()
			}
		})
	}
}

// BenchmarkObserverLogin is one whole session: connect, greeting, USER,
// PASS, RETR, QUIT.
func BenchmarkObserverLogin(b *testing.B) {
	for _, observed := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "metrics+registry"}[observed], func(b *testing.B) {
			addr := benchServer(b, observed)
			cpu0 := cpuTime()
			for b.Loop() {
				c := benchLogin(b, addr)
				c.Write([]byte("RETR 1\r\nQUIT\r\n"))
				r := bufio.NewReader(c)
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						b.Fatal(err)
					}
					if strings.HasPrefix(l, "+OK bye") {
						break
					}
				}
				c.Close()
			}
			// Process CPU time (server and client): less disturbed than wall
			// time by other load on the machine.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkObserverEvents is the observers' own work for one session:
// the events of connect, login, three commands, UPDATE and disconnect.
func BenchmarkObserverEvents(b *testing.B) {
	o := engineObserver(observers{newMetrics(), newRegistry()})
	h := &daemon.Session{ID: "0000000000000001", Start: time.Now()}
	for b.Loop() {
		o.Connect(h)
		o.Command(h, daemon.Command{Name: "USER", OK: true, Octets: 30})
		o.Login(h, daemon.Login{Mech: "USER", Result: daemon.LoginSuccess, User: "alice", Messages: 10, Duration: time.Millisecond})
		o.Command(h, daemon.Command{Name: "PASS", OK: true, Octets: 40})
		o.Command(h, daemon.Command{Name: "RETR", OK: true, Octets: 5000})
		o.Update(h, daemon.Update{Deleted: 1, Duration: time.Millisecond})
		o.Command(h, daemon.Command{Name: "QUIT", OK: true, Octets: 20})
		o.Disconnect(h, daemon.Disconnect{How: daemon.EndQuit, Octets: 10})
	}
}
