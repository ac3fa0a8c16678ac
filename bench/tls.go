package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"hash/crc32"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/pop3d/pop3d/bench/mailgen"
)

// writeCert makes a self-signed ECDSA P-256 certificate for 127.0.0.1 (what
// a small site gets from Let's Encrypt) in dir and returns the files and a
// pool trusting it.
func writeCert(dir string) (cert, key string, pool *x509.CertPool, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pop3d bench"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: nil,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return "", "", nil, err
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return "", "", nil, err
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", nil, err
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return "", "", nil, err
	}
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return cert, key, pool, nil
}

// clientTLS is the configuration of one client (one device): it verifies
// the certificate, and with resume keeps its own session cache, as mail
// clients do (tickets, TLS 1.3 PSK). X25519 is pinned: Dovecot 2.3 with
// OpenSSL 3.0 cannot do the hybrid post-quantum group Go offers first, and
// the two servers must do the same key exchange.
func (b *bench) clientTLS(resume bool) *tls.Config {
	c := &tls.Config{RootCAs: b.pool, ServerName: "localhost", CurvePreferences: []tls.CurveID{tls.X25519}}
	if resume {
		c.ClientSessionCache = tls.NewLRUClientSessionCache(16)
	}
	return c
}

// wireCRCs is the CRC-32C of each message's wire form (unstuffed), index i
// for message i of m in POP3 order (index 0 unused).
func wireCRCs(dir string, m []mailgen.Message) ([]uint32, error) {
	t := crc32.MakeTable(crc32.Castagnoli)
	out := make([]uint32, len(m)+1)
	for i, msg := range m {
		raw, err := os.ReadFile(filepath.Join(dir, msg.Name))
		if err != nil {
			return nil, err
		}
		out[i+1] = crc32.Checksum(mailgen.Wire(raw), t)
	}
	return out, nil
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// retrOnce is one retr-all session on s, plain or over implicit TLS (conf
// set): LIST and UIDL checked against the files, then every message RETRed
// (pipelined when offered), each one's octets and CRC-32C checked. It returns
// MB/s and the client's and server's CPU seconds per GB received.
func (b *bench) retrOnce(ctx context.Context, s *server, warm bool, m []mailgen.Message, total int64, crcs []uint32, sums map[string][]byte, conf *tls.Config) ([]float64, float64, float64, error) {
	ctx, cancel := sessionCtx(ctx)
	defer cancel()
	var c *client
	var err error
	if conf != nil {
		c, _, _, err = dialTLS(ctx, s.tlsAddr, conf)
	} else {
		c, err = dial(ctx, s.addr)
	}
	if err != nil {
		return nil, 0, 0, err
	}
	defer c.Close()
	if err := c.capa(); err != nil {
		return nil, 0, 0, err
	}
	if err := c.login("retr", password); err != nil {
		return nil, 0, 0, err
	}
	sizes, err := c.list()
	if err != nil {
		return nil, 0, 0, err
	}
	ids, err := c.uidl()
	if err != nil {
		return nil, 0, 0, err
	}
	if err := checkList(m, sizes, ids); err != nil {
		return nil, 0, 0, err
	}
	// POP3 order is the servers' own; the CRCs are by generated order.
	byID := make(map[string]uint32, len(m))
	for i, msg := range m {
		byID[msg.Unique] = crcs[i+1]
	}
	want := make([]uint32, len(ids))
	for i := 1; i < len(ids); i++ {
		want[i] = byID[ids[i]]
	}
	if sums != nil {
		for i := 1; i < len(sizes); i++ {
			n, sum, err := c.retr(i, true)
			if err != nil {
				return nil, 0, 0, err
			}
			if n != sizes[i] || !bytes.Equal(sum, sums[ids[i]]) {
				return nil, 0, 0, fmt.Errorf("RETR %d (%s): %d octets, content differs from the file's wire form (%d octets)", i, ids[i], n, sizes[i])
			}
		}
	}
	cpuC0, cpuS0 := selfCPU(), treeCPU(s.pid())
	start := time.Now()
	got, err := c.retrAllCheck(sizes, want)
	el := time.Since(start)
	cpuC, cpuS := selfCPU()-cpuC0, treeCPU(s.pid())-cpuS0
	if err != nil {
		return nil, 0, 0, err
	}
	if got != total {
		return nil, 0, 0, fmt.Errorf("received %d octets, want %d", got, total)
	}
	if err := c.quit(); err != nil {
		return nil, 0, 0, err
	}
	if s.name == b.servers[0].name && warm {
		b.progress("  %s PIPELINING: %v", s.name, c.pipelining)
	}
	gb := float64(got) / 1e9
	return []float64{float64(got) / 1e6 / el.Seconds()}, cpuC.Seconds() / gb, cpuS.Seconds() / gb, nil
}

// retrAllTLS is retr-all over implicit TLS (995).
func (b *bench) retrAllTLS(ctx context.Context) error {
	m := b.data.load("retr")
	crcs, err := wireCRCs(filepath.Join(b.data.dir, "retr"), m)
	if err != nil {
		return err
	}
	total := wireTotal(m)
	cpuC := make([][]float64, len(b.servers))
	cpuS := make([][]float64, len(b.servers))
	res := make([][]float64, len(b.servers))
	for r := -1; r < b.cfg.retrRounds; r++ {
		for i, s := range b.servers {
			v, cc, cs, err := b.retrOnce(ctx, s, r < 0, m, total, crcs, nil, b.clientTLS(false))
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				b.problem("retr-all-tls on %s: %v", s.name, err)
				continue
			}
			if r >= 0 {
				res[i] = append(res[i], v...)
				cpuC[i] = append(cpuC[i], cc)
				cpuS[i] = append(cpuS[i], cs)
			}
		}
	}
	b.addRow(row{name: "retr-all TLS (995)", unit: "MB/s", vals: medians(res), need: 3})
	b.addRow(row{name: "retr-all TLS client CPU", unit: "s/GB", vals: medians(cpuC), lowerBetter: true, info: true})
	b.addRow(row{name: "retr-all TLS server CPU", unit: "s/GB", vals: medians(cpuS), lowerBetter: true, info: true})
	b.progressRow()
	return nil
}

// concurrentTLS is concurrent over implicit TLS, with every client keeping
// its session cache (resumption by ticket, as mail clients do) and without;
// it reports sessions/s, the share of resumed handshakes, the handshake's
// median wall time and the server CPU per login.
func (b *bench) concurrentTLS(ctx context.Context) error {
	n := b.cfg.concClients[len(b.cfg.concClients)-1]
	for _, resume := range []bool{false, true} {
		mode := "full handshakes"
		if resume {
			mode = "resumed (tickets)"
		}
		hs := make([][]float64, len(b.servers))
		resumed := make([]float64, len(b.servers))
		cpu := make([]float64, len(b.servers))
		idx := map[*server]int{}
		for i, s := range b.servers {
			idx[s] = i
		}
		res, err := b.interleave(ctx, fmt.Sprintf("concurrent-tls %d %s", n, mode), b.cfg.concRounds, true, func(ctx context.Context, s *server, warm bool) ([]float64, error) {
			dur := b.cfg.concDur
			if warm {
				dur = min(dur/2, time.Second)
			}
			confs := make([]*tls.Config, n)
			for i := range confs {
				confs[i] = b.clientTLS(resume)
			}
			if resume {
				// Each client has a ticket from its last poll: one
				// untimed handshake each first.
				err := parallel(16, n, func(i int) error {
					cl, _, _, err := dialTLS(ctx, s.tlsAddr, confs[i])
					if err != nil {
						return err
					}
					defer cl.Close()
					return cl.quit()
				})
				if err != nil {
					return nil, err
				}
			}
			var mu sync.Mutex
			var times []float64
			var nres, nall int
			dialFor := func(c int) func(context.Context) (*client, error) {
				return func(ctx context.Context) (*client, error) {
					cl, d, r, err := dialTLS(ctx, s.tlsAddr, confs[c])
					if err == nil {
						mu.Lock()
						times = append(times, ms(d))
						nall++
						if r {
							nres++
						}
						mu.Unlock()
					}
					return cl, err
				}
			}
			cpu0 := treeCPU(s.pid())
			rate, _, e, err := b.concRunVia(ctx, s, n, dur, dialFor)
			if !warm {
				i := idx[s]
				hs[i] = append(hs[i], times...)
				if nall > 0 {
					resumed[i] = float64(nres) / float64(nall) * 100
					cpu[i] = ms(treeCPU(s.pid())-cpu0) / float64(nall)
				}
				if e > 0 {
					b.problem("concurrent-tls %d %s: %d failed sessions on %s", n, mode, e, s.name)
				}
			}
			return []float64{rate}, err
		})
		if err != nil {
			return err
		}
		name := fmt.Sprintf("concurrent-tls %d %s", n, mode)
		b.addRow(row{name: name + " sessions/s", unit: "sess/s", vals: medians(res), need: 3})
		p50 := make([]float64, len(b.servers))
		for i := range hs {
			p50[i] = percentile(hs[i], 50)
		}
		b.addRow(row{name: name + " handshake p50 (client wall)", unit: "ms", vals: p50, lowerBetter: true, info: true})
		b.addRow(row{name: name + " server CPU per session", unit: "ms", vals: cpu, lowerBetter: true, info: true})
		b.addRow(row{name: name + " resumed", unit: "%", vals: resumed, info: true})
		b.progressRow()
	}
	return nil
}

// poll: polling clients as phones and desktop clients are, against bcrypt
// cost-10 passwords: 50 clients, each owning its users, every session
// login, UIDL, QUIT, back to back, each user many times. pop3d runs with
// its defaults (auth_cache_ttl = 15m); Dovecot as it ships (no auth cache).
func (b *bench) poll(ctx context.Context) error {
	users := b.cfg.bcryptUsers
	clients := min(50, users) // 50 in make bench; fewer in the smoke test
	if clients == 0 || users%clients != 0 {
		return fmt.Errorf("poll needs a multiple of %d bcrypt users, have %d", clients, users)
	}
	// A poller's first login of the day: every user once, untimed, so
	// that the rounds measure the polls that follow (on pop3d, from its
	// auth cache; Dovecot hashes every time).
	for _, s := range b.servers {
		err := parallel(8, users, func(u int) error {
			sctx, cancel := sessionCtx(ctx)
			defer cancel()
			_, err := session(sctx, s.addr, bcryptUser(u), password, nil)
			return err
		})
		if err != nil {
			return fmt.Errorf("poll first logins on %s: %w", s.name, err)
		}
	}
	res, err := b.interleave(ctx, "poll", b.cfg.concRounds, false, func(ctx context.Context, s *server, warm bool) ([]float64, error) {
		dur := b.cfg.bcryptDur
		deadline := time.Now().Add(dur)
		start := time.Now()
		var mu sync.Mutex
		var done, failed int
		var firstErr error
		var wg sync.WaitGroup
		for c := range clients {
			wg.Go(func() {
				for k := 0; time.Now().Before(deadline) && ctx.Err() == nil; k++ {
					user := bcryptUser(c + (k%(users/clients))*clients)
					sctx, cancel := sessionCtx(ctx)
					_, err := session(sctx, s.addr, user, password, func(cl *client) error {
						ids, err := cl.uidl()
						if err == nil && len(ids) != 1 {
							err = fmt.Errorf("%s: UIDL lists %d messages, want 0", user, len(ids)-1)
						}
						return err
					})
					cancel()
					mu.Lock()
					if err != nil {
						failed++
						if firstErr == nil {
							firstErr = err
						}
					} else {
						done++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if failed > 0 {
			return nil, fmt.Errorf("%d failed sessions, first: %v", failed, firstErr)
		}
		return []float64{float64(done) / time.Since(start).Seconds()}, ctx.Err()
	})
	if err != nil {
		return err
	}
	b.addRow(row{name: fmt.Sprintf("poll bcrypt-10, %d clients (login, UIDL, QUIT)", clients), unit: "sess/s", vals: medians(res), need: 10})
	b.progressRow()
	return nil
}

// tlsProfile: where the TLS time of a login goes. pop3d's TLS is Go's
// crypto/tls with the same certificate and settings, so the bench runs the
// same handshakes in its own process (server and client over loopback TCP)
// under the CPU profiler, full and resumed, writes the profile to
// bench/out/tls-handshake.pprof and puts the top functions in the notes.
func (b *bench) tlsProfile(ctx context.Context) error {
	certFile, keyFile := filepath.Join(b.work, "cert.pem"), filepath.Join(b.work, "key.pem")
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return err
	}
	srvConf := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &pair, nil }}
	l, err := tls.Listen("tcp", "127.0.0.1:0", srvConf)
	if err != nil {
		return err
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if tc, ok := c.(*tls.Conn); ok && tc.HandshakeContext(ctx) == nil {
					_, _ = c.Write([]byte("+OK\r\n"))
				}
			}()
		}
	}()
	n := 400
	if b.cfg.quick {
		n = 100
	}
	dir := b.outDir
	if dir == "" {
		dir = b.work
	}
	prof := filepath.Join(dir, "tls-handshake.pprof")
	if err := os.MkdirAll(filepath.Dir(prof), 0o755); err != nil {
		return err
	}
	f, err := os.Create(prof)
	if err != nil {
		return err
	}
	defer f.Close()
	profiling := pprof.StartCPUProfile(f) == nil
	rates := map[bool]float64{}
	for _, resume := range []bool{false, true} {
		conf := b.clientTLS(resume)
		cpu0, start := selfCPU(), time.Now()
		for range n {
			cl, _, _, err := dialTLS(ctx, l.Addr().String(), conf)
			if err != nil {
				if profiling {
					pprof.StopCPUProfile()
				}
				return err
			}
			cl.Close()
		}
		cpu := selfCPU() - cpu0
		rates[resume] = ms(cpu) / float64(n)
		b.progress("  in-process Go TLS, %d handshakes (resumed %v): %.2f ms CPU each, client and server together, %.1f ms wall", n, resume, rates[resume], ms(time.Since(start))/float64(n))
	}
	if !profiling {
		b.notes = append(b.notes, "tls-profile: the bench's own CPU profiler was busy (-cpuprofile); no profile written.")
		return nil
	}
	pprof.StopCPUProfile()
	b.notes = append(b.notes, fmt.Sprintf("tls-profile: Go crypto/tls as pop3d uses it (ECDSA P-256 certificate, X25519, TLS 1.3), client and server in one process: %.2f ms CPU per full handshake, %.2f ms per resumed one (both sides). Profile: %s; top functions:", rates[false], rates[true], prof))
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=12", prof).Output()
	if err != nil {
		b.notes = append(b.notes, "  (go tool pprof unavailable: "+err.Error()+")")
		return nil
	}
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		b.notes = append(b.notes, "  "+string(line))
	}
	return nil
}
