package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pop3d/pop3d/bench/mailgen"
)

// sessionTimeout bounds every single session, so that a hung server fails
// the run instead of hanging it.
const sessionTimeout = 2 * time.Minute

// interleave runs fn for every server in turn (A B A B), rounds times after
// one unmeasured warm-up round when warmUp is set, and returns the samples
// per server.
func (b *bench) interleave(ctx context.Context, what string, rounds int, warmUp bool, fn func(ctx context.Context, s *server, warm bool) ([]float64, error)) ([][]float64, error) {
	res := make([][]float64, len(b.servers))
	r0 := 0
	if warmUp {
		r0 = -1
	}
	for r := r0; r < rounds; r++ {
		for i, s := range b.servers {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			v, err := fn(ctx, s, r < 0)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				b.problem("%s on %s: %v", what, s.name, err)
				continue
			}
			if r >= 0 {
				res[i] = append(res[i], v...)
			}
		}
	}
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func median(v []float64) float64 { return percentile(v, 50) }

func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if p == 50 && len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func medians(samples [][]float64) []float64 {
	out := make([]float64, len(samples))
	for i, v := range samples {
		out[i] = median(v)
	}
	return out
}

func wireTotal(m []mailgen.Message) int64 {
	var n int64
	for _, msg := range m {
		n += msg.WireSize
	}
	return n
}

// checkStat compares a STAT answer with the generated mailbox.
func checkStat(m []mailgen.Message, n int, octets int64) error {
	if n != len(m) || octets != wireTotal(m) {
		return fmt.Errorf("STAT %d %d, the Maildir holds %d messages of %d octets", n, octets, len(m), wireTotal(m))
	}
	return nil
}

// checkList compares LIST sizes and UIDLs with the generated mailbox: every
// UIDL must be a generated unique name (both servers use the base name) with
// the size of that message.
func checkList(m []mailgen.Message, sizes []int64, ids []string) error {
	if len(sizes) != len(m)+1 || len(ids) != len(m)+1 {
		return fmt.Errorf("LIST has %d and UIDL %d messages, the Maildir %d", len(sizes)-1, len(ids)-1, len(m))
	}
	byID := make(map[string]int64, len(m))
	for _, msg := range m {
		byID[msg.Unique] = msg.WireSize
	}
	seen := make(map[string]bool, len(m))
	for i := 1; i < len(ids); i++ {
		want, ok := byID[ids[i]]
		if !ok {
			return fmt.Errorf("UIDL %d %q is not a message's unique name", i, ids[i])
		}
		if seen[ids[i]] {
			return fmt.Errorf("UIDL %q appears twice", ids[i])
		}
		seen[ids[i]] = true
		if sizes[i] != want {
			return fmt.Errorf("LIST %d (%s) says %d octets, the message has %d", i, ids[i], sizes[i], want)
		}
	}
	return nil
}

// copyAs gives root/dst a fresh hard-linked copy of the pristine Maildir src.
func (b *bench) copyAs(root, src, dst string) error {
	if err := os.RemoveAll(filepath.Join(root, dst)); err != nil {
		return err
	}
	out, err := exec.Command("cp", "-al", "--", filepath.Join(b.data.dir, src), filepath.Join(root, dst)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("cp -al: %v: %s", err, out)
	}
	return nil
}

func sessionCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, sessionTimeout)
}

// loginStat: connect, USER/PASS, STAT, QUIT; first logins on a fresh copy
// of the Maildir (no index, no size cache), then repeat logins.
func (b *bench) loginStat(ctx context.Context) error {
	for k, n := range b.cfg.sizes {
		m := b.data.load(bigUser(n))
		// Every round copies this Maildir and pop3d goes first: without
		// this, files the kernel had dropped from its cache were read
		// from disk by pop3d alone and served to Dovecot from memory.
		if err := warmFiles(filepath.Join(b.data.dir, bigUser(n)), m); err != nil {
			return err
		}
		first := "first" + fmt.Sprint(n)
		// loginStat1 is one timed session of user on s; STAT must match m.
		loginStat1 := func(ctx context.Context, s *server, user string) ([]float64, error) {
			ctx, cancel := sessionCtx(ctx)
			defer cancel()
			d, err := session(ctx, s.addr, user, password, func(c *client) error {
				cnt, octets, err := c.stat()
				if err != nil {
					return err
				}
				return checkStat(m, cnt, octets)
			})
			return []float64{ms(d)}, err
		}
		res, err := b.interleave(ctx, "login-stat first "+first, b.cfg.firstRounds[k], false, func(ctx context.Context, s *server, warm bool) ([]float64, error) {
			if err := b.copyAs(s.root, bigUser(n), first); err != nil {
				return nil, err
			}
			return loginStat1(ctx, s, first)
		})
		if err != nil {
			return err
		}
		b.addRow(row{name: fmt.Sprintf("login-stat %s first", kilo(n)), unit: "ms", vals: medians(res), lowerBetter: true, need: firstNeed(n)})
		b.progressRow()
		for _, s := range b.servers {
			_ = os.RemoveAll(filepath.Join(s.root, first))
		}

		res, err = b.interleave(ctx, "login-stat repeat "+bigUser(n), b.cfg.repeatRounds[k], true, func(ctx context.Context, s *server, warm bool) ([]float64, error) {
			return loginStat1(ctx, s, bigUser(n))
		})
		if err != nil {
			return err
		}
		b.addRow(row{name: fmt.Sprintf("login-stat %s repeat", kilo(n)), unit: "ms", vals: medians(res), lowerBetter: true, need: repeatNeed(n)})
		b.progressRow()
	}
	return nil
}

// warmFiles reads every message file of the Maildir dir into the page
// cache.
func warmFiles(dir string, m []mailgen.Message) error {
	buf := make([]byte, 64<<10)
	for _, msg := range m {
		f, err := os.Open(filepath.Join(dir, msg.Name))
		if err != nil {
			return err
		}
		for err == nil {
			_, err = f.Read(buf)
		}
		f.Close()
		if err != io.EOF {
			return err
		}
	}
	return nil
}

func firstNeed(n int) float64 {
	if n >= 100000 {
		return 3
	}
	return 0
}

// repeatNeed is issue 15's target for a repeat login: from the listing
// record, new/ and cur/ are not read.
func repeatNeed(n int) float64 { return needBySize(n, 15, 10) }

// listNeed is the target for a repeat login with a full LIST and UIDL.
func listNeed(n int) float64 { return needBySize(n, 6, 2) }

// needBySize is big for mailboxes of 100k messages or more, mid for 10k or
// more, and no target below.
func needBySize(n int, big, mid float64) float64 {
	switch {
	case n >= 100000:
		return big
	case n >= 10000:
		return mid
	}
	return 0
}

func kilo(n int) string {
	if n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// listUIDL: a repeat login with a full LIST and UIDL; the warm-up round
// checks every size and unique-id against the generated files.
func (b *bench) listUIDL(ctx context.Context) error {
	for k, n := range b.cfg.sizes {
		m := b.data.load(bigUser(n))
		res, err := b.interleave(ctx, "list-uidl "+bigUser(n), b.cfg.listRounds[k], true, func(ctx context.Context, s *server, warm bool) ([]float64, error) {
			ctx, cancel := sessionCtx(ctx)
			defer cancel()
			var sizes []int64
			var ids []string
			d, err := session(ctx, s.addr, bigUser(n), password, func(c *client) error {
				var err error
				if sizes, err = c.list(); err != nil {
					return err
				}
				ids, err = c.uidl()
				return err
			})
			if err == nil && warm {
				err = checkList(m, sizes, ids)
			}
			return []float64{ms(d)}, err
		})
		if err != nil {
			return err
		}
		b.addRow(row{name: fmt.Sprintf("list-uidl %s", kilo(n)), unit: "ms", vals: medians(res), lowerBetter: true, need: listNeed(n)})
		b.progressRow()
	}
	return nil
}

// retrAll: RETR every message of the retr mailbox (pipelined when the
// server offers PIPELINING), MB/s of octets received; and the same files
// cat'ed into a loopback socket, the limit.
func (b *bench) retrAll(ctx context.Context) error {
	m := b.data.load("retr")
	total := wireTotal(m)
	b.notes = append(b.notes, fmt.Sprintf("retr-all: %d messages, %.1f MB wire (%.1f MB on disk); MB = 10^6 bytes.", len(m), float64(total)/1e6, float64(diskTotal(m))/1e6))
	crcs, err := wireCRCs(filepath.Join(b.data.dir, "retr"), m)
	if err != nil {
		return err
	}
	var sums map[string][]byte
	if b.cfg.verifyContent {
		sums = map[string][]byte{}
		for _, msg := range m {
			raw, err := os.ReadFile(filepath.Join(b.data.dir, "retr", msg.Name))
			if err != nil {
				return err
			}
			h := sha256.Sum256(mailgen.Wire(raw))
			sums[msg.Unique] = h[:]
		}
	}
	// The client CPU (this process) and the server's (its process tree)
	// during the timed RETRs, in seconds per GB received.
	cpuC := make([][]float64, len(b.servers))
	cpuS := make([][]float64, len(b.servers))
	idx := map[*server]int{}
	for i, s := range b.servers {
		idx[s] = i
	}
	retr := func(ctx context.Context, s *server, warm bool) ([]float64, error) {
		v, cc, cs, err := b.retrOnce(ctx, s, warm, m, total, crcs, sums, nil)
		if err == nil && !warm {
			cpuC[idx[s]] = append(cpuC[idx[s]], cc)
			cpuS[idx[s]] = append(cpuS[idx[s]], cs)
		}
		return v, err
	}
	b.notes = append(b.notes, "retr-all limits: cat(1) via xargs into a socket (GNU cat maps and unmaps a fresh 128 KiB buffer per file, slow on this VM), and a read/write loop with one reused buffer, in the bench process; the target uses the faster.")
	// The limits run in the same rounds as the servers (A B cat copy A B cat
	// copy), so that load from elsewhere on the machine hits all alike.
	limits := []struct {
		name string
		fn   func(context.Context, string, []mailgen.Message) (float64, error)
	}{
		{"retr-all limit: cat(1) into a socket", catRate1},
		{"retr-all limit: read/write copy into a socket", copyRate1},
	}
	res := make([][]float64, len(b.servers))
	lres := make([][]float64, len(limits))
	for r := -1; r < b.cfg.retrRounds; r++ {
		for i, s := range b.servers {
			v, err := retr(ctx, s, r < 0)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				b.problem("retr-all on %s: %v", s.name, err)
				continue
			}
			if r >= 0 {
				res[i] = append(res[i], v...)
			}
		}
		for i, l := range limits {
			v, err := l.fn(ctx, b.data.dir, m)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				b.problem("%s: %v", l.name, err)
				continue
			}
			if r >= 0 {
				lres[i] = append(lres[i], v)
			}
		}
	}
	r := row{name: "retr-all", unit: "MB/s", vals: medians(res), need: 2}
	var limitRows []row
	for i, l := range limits {
		if len(lres[i]) > 0 {
			v := median(lres[i])
			r.cat = max(r.cat, v)
			limitRows = append(limitRows, row{name: l.name, unit: "MB/s", vals: fill(len(b.servers), v), info: true})
		}
	}
	b.addRow(r)
	for _, lr := range limitRows {
		b.addRow(lr)
	}
	b.notes = append(b.notes, "retr-all CPU: client and server share this machine's cores, so MB/s is bounded by client CPU + server CPU per GB; a client that does more per byte (a SHA-256 of every message, a slower parser) lowers pop3d's MB/s far more than Dovecot's, which is bound by its own CPU. The server CPU per GB is the figure no client changes; the client here reads, unstuffs and CRC-32C-checks every message, as a fast real client does.")
	b.addRow(row{name: "retr-all client CPU (reads, unstuffs, CRC-checks)", unit: "s/GB", vals: medians(cpuC), lowerBetter: true, info: true})
	b.addRow(row{name: "retr-all server CPU", unit: "s/GB", vals: medians(cpuS), lowerBetter: true, info: true})
	b.progressRow()
	return nil
}

// copyRate1 is the limit without cat's per-file overhead (GNU cat maps and
// unmaps a fresh buffer for every file, which is slow on this VM): read each
// file into one reused buffer and write it to a loopback TCP socket that
// another goroutine drains; MB/s of file bytes.
func copyRate1(ctx context.Context, dir string, m []mailgen.Message) (float64, error) {
	conn, srv, err := loopback()
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	defer srv.Close()
	start := time.Now()
	wait := drain(srv)
	buf := make([]byte, 128<<10)
	var werr error
	for _, msg := range m {
		if werr = ctx.Err(); werr != nil {
			break
		}
		f, err := os.Open(filepath.Join(dir, "retr", msg.Name))
		if err != nil {
			werr = err
			break
		}
		// The wrappers hide sendfile/splice: the limit is a copy through
		// user space, as a POP3 server that converts line endings must do.
		_, werr = io.CopyBuffer(struct{ io.Writer }{conn}, struct{ io.Reader }{f}, buf)
		f.Close()
		if werr != nil {
			break
		}
	}
	conn.CloseWrite()
	n, rerr := wait()
	el := time.Since(start)
	if werr != nil {
		return 0, werr
	}
	return fileRate("copied", n, rerr, m, el)
}

// loopback returns both ends of a fresh loopback TCP connection.
func loopback() (client *net.TCPConn, srv net.Conn, err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer l.Close()
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	srv, err = l.Accept()
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn.(*net.TCPConn), srv, nil
}

// drain reads srv to EOF in the background; wait returns the bytes read.
func drain(srv net.Conn) (wait func() (int64, error)) {
	var n int64
	var err error
	done := make(chan struct{})
	go func() {
		n, err = io.CopyBuffer(struct{ io.Writer }{io.Discard}, struct{ io.Reader }{srv}, make([]byte, 256<<10))
		close(done)
	}()
	return func() (int64, error) {
		<-done
		return n, err
	}
}

// fileRate checks that n, the bytes drained (with the drain's error rerr),
// are exactly the files of m, and gives MB/s of them over el.
func fileRate(verb string, n int64, rerr error, m []mailgen.Message, el time.Duration) (float64, error) {
	if rerr != nil {
		return 0, rerr
	}
	if n != diskTotal(m) {
		return 0, fmt.Errorf("%s %d bytes, files hold %d", verb, n, diskTotal(m))
	}
	return float64(n) / 1e6 / el.Seconds(), nil
}

func fill(n int, v float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func diskTotal(m []mailgen.Message) int64 {
	var n int64
	for _, msg := range m {
		n += msg.DiskSize
	}
	return n
}

// catRate1 runs cat(1) on the mailbox's files with its stdout a loopback TCP
// socket that we drain, and returns MB/s of file bytes.
func catRate1(ctx context.Context, dir string, m []mailgen.Message) (float64, error) {
	conn, srv, err := loopback()
	if err != nil {
		return 0, err
	}
	defer srv.Close()
	f, err := conn.File()
	conn.Close()
	if err != nil {
		return 0, err
	}
	var list strings.Builder
	for _, msg := range m {
		list.WriteString(filepath.Join(dir, "retr", msg.Name))
		list.WriteByte(0)
	}
	cmd := exec.CommandContext(ctx, "xargs", "-0", "cat", "--")
	cmd.Stdin = strings.NewReader(list.String())
	cmd.Stdout = f
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		f.Close()
		return 0, err
	}
	f.Close() // cat holds the only copy: EOF when it exits
	wait := drain(srv)
	werr := cmd.Wait()
	n, rerr := wait()
	el := time.Since(start)
	if werr != nil {
		return 0, fmt.Errorf("cat: %v: %s", werr, stderr.String())
	}
	return fileRate("cat sent", n, rerr, m, el)
}

// concurrent: N clients over the conc users, each session login + UIDL +
// RETR of every message (20) + QUIT, for a fixed time; sessions/s and
// latency percentiles.
func (b *bench) concurrent(ctx context.Context) error {
	b.notes = append(b.notes, fmt.Sprintf("concurrent: closed loop, no think time, %d users of %d messages; every session logs in, UIDL, RETRs all %d, QUITs. By Little's law p50 is about clients / (sessions/s), so p99 < 1 s at 200 clients needs well over 200 sessions/s.", b.cfg.concUsers, b.cfg.concMsgs, b.cfg.concMsgs))
	for _, n := range b.cfg.concClients {
		if b.cfg.concUsers%n != 0 {
			return fmt.Errorf("%d clients do not divide %d users", n, b.cfg.concUsers)
		}
		lat := make([][]float64, len(b.servers))
		errs := make([]int, len(b.servers))
		idx := map[*server]int{}
		for i, s := range b.servers {
			idx[s] = i
		}
		res, err := b.interleave(ctx, fmt.Sprintf("concurrent %d", n), b.cfg.concRounds, true, func(ctx context.Context, s *server, warm bool) ([]float64, error) {
			dur := b.cfg.concDur
			if warm {
				dur = min(dur/2, time.Second)
			}
			rate, l, e, err := b.concRun(ctx, s, n, dur)
			if !warm {
				lat[idx[s]] = append(lat[idx[s]], l...)
				errs[idx[s]] += e
			}
			return []float64{rate}, err
		})
		if err != nil {
			return err
		}
		name := fmt.Sprintf("concurrent %d", n)
		need := 0.0
		var p99abs func(float64) (bool, string)
		if n >= 200 {
			need = 2
			p99abs = func(v float64) (bool, string) { return v < 1000, "< 1 s" }
		}
		b.addRow(row{name: name + " sessions/s", unit: "sess/s", vals: medians(res), need: need})
		p50 := make([]float64, len(b.servers))
		p99 := make([]float64, len(b.servers))
		ev := make([]float64, len(b.servers))
		for i := range b.servers {
			p50[i] = percentile(lat[i], 50)
			p99[i] = percentile(lat[i], 99)
			ev[i] = float64(errs[i])
		}
		b.addRow(row{name: name + " p50", unit: "ms", vals: p50, lowerBetter: true, info: true})
		b.addRow(row{name: name + " p99", unit: "ms", vals: p99, lowerBetter: true, abs: p99abs, info: p99abs == nil})
		b.addRow(row{name: name + " errors", unit: "", vals: ev, lowerBetter: true,
			abs: func(v float64) (bool, string) { return v == 0, "0" }})
		b.progressRow()
		for i, e := range errs {
			if e > 0 {
				b.problem("concurrent %d: %d failed sessions on %s", n, e, b.servers[i].name)
			}
		}
	}
	return nil
}

func (b *bench) concRun(ctx context.Context, s *server, n int, dur time.Duration) (rate float64, lat []float64, errCount int, err error) {
	return b.concRunVia(ctx, s, n, dur, func(int) func(context.Context) (*client, error) {
		return func(ctx context.Context) (*client, error) { return dial(ctx, s.addr) }
	})
}

// concRunVia is concRun with client c's connections made by dialFor(c).
func (b *bench) concRunVia(ctx context.Context, s *server, n int, dur time.Duration, dialFor func(c int) func(context.Context) (*client, error)) (rate float64, lat []float64, errCount int, err error) {
	start := time.Now()
	deadline := start.Add(dur)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	var done int
	for c := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; time.Now().Before(deadline) && ctx.Err() == nil; k++ {
				// Client c owns users c, c+n, c+2n...: no two sessions share a mailbox.
				u := c + (k%(b.cfg.concUsers/n))*n
				user := concUser(u)
				m := b.data.load(user)
				byID := make(map[string]int64, len(m))
				for _, msg := range m {
					byID[msg.Unique] = msg.WireSize
				}
				sctx, cancel := sessionCtx(ctx)
				d, err := sessionVia(sctx, dialFor(c), user, password, func(cl *client) error {
					ids, err := cl.uidl()
					if err != nil {
						return err
					}
					if len(ids)-1 != len(m) {
						return fmt.Errorf("%s: UIDL lists %d messages, want %d", user, len(ids)-1, len(m))
					}
					for i := 1; i <= min(b.cfg.concMsgs, len(ids)-1); i++ {
						got, _, err := cl.retr(i, false)
						if err != nil {
							return err
						}
						if want, ok := byID[ids[i]]; !ok || got != want {
							return fmt.Errorf("%s RETR %d (%s): %d octets, want %d", user, i, ids[i], got, want)
						}
					}
					return nil
				})
				cancel()
				mu.Lock()
				if err != nil {
					errCount++
					if firstErr == nil {
						firstErr = err
					}
				} else {
					done++
					lat = append(lat, ms(d))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if firstErr != nil {
		b.progress("  %s concurrent %d: %d errors, first: %v", s.name, n, errCount, firstErr)
	}
	if ctx.Err() != nil {
		return 0, nil, errCount, ctx.Err()
	}
	return float64(done) / el.Seconds(), lat, errCount, nil
}

// idle: log in idleConns users and keep the connections open; the server's
// memory (PSS summed over its process tree) before and after.
func (b *bench) idle(ctx context.Context) error {
	n := b.cfg.idleConns
	perConn := make([]float64, len(b.servers))
	for i, s := range b.servers {
		time.Sleep(500 * time.Millisecond)
		before, procs0, err := treeMemory(s.pid())
		if err != nil {
			return err
		}
		conns := make([]*client, n)
		ictx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		err = parallel(32, n, func(k int) error {
			c, err := dial(ictx, s.addr)
			if err != nil {
				return err
			}
			conns[k] = c
			if err := c.login(idleUser(k), password); err != nil {
				return fmt.Errorf("%s: %w", idleUser(k), err)
			}
			_, _, err = c.stat()
			return err
		})
		if err == nil {
			time.Sleep(time.Second)
			after, procs1, merr := treeMemory(s.pid())
			if merr != nil {
				err = merr
			} else {
				perConn[i] = float64(after-before) / float64(n)
				b.progress("  %s: %d KiB in %d processes before, %d KiB in %d processes with %d idle sessions: %.1f KiB each",
					s.name, before, procs0, after, procs1, n, perConn[i])
				b.notes = append(b.notes, fmt.Sprintf("idle %s: PSS %d KiB (%d processes) before, %d KiB (%d processes) with %d logged-in idle connections.",
					s.name, before, procs0, after, procs1, n))
			}
		}
		var wg sync.WaitGroup
		for _, c := range conns {
			if c == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = c.quit()
				c.Close()
			}()
		}
		wg.Wait()
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			b.problem("idle on %s: %v", s.name, err)
			perConn[i] = math.NaN()
		}
	}
	b.addRow(row{name: fmt.Sprintf("idle %d: memory per connection", n), unit: "KiB", vals: perConn, lowerBetter: true,
		abs: func(v float64) (bool, string) { return v < 32, "< 32 KiB" }})
	b.progressRow()
	return nil
}

// deleQuit: on a fresh copy of the dele mailbox, log in (not timed), then
// DELE every message and QUIT: time to QUIT's +OK. Afterwards the Maildir
// must be empty.
func (b *bench) deleQuit(ctx context.Context) error {
	src := bigUser(b.cfg.dele)
	m := b.data.load(src)
	res, err := b.interleave(ctx, "dele-quit", b.cfg.deleRounds, true, func(ctx context.Context, s *server, warm bool) ([]float64, error) {
		if err := b.copyAs(s.root, src, "dele"); err != nil {
			return nil, err
		}
		ctx, cancel := sessionCtx(ctx)
		defer cancel()
		c, err := dial(ctx, s.addr)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		if err := c.capa(); err != nil {
			return nil, err
		}
		if err := c.login("dele", password); err != nil {
			return nil, err
		}
		cnt, octets, err := c.stat()
		if err != nil {
			return nil, err
		}
		if err := checkStat(m, cnt, octets); err != nil {
			return nil, err
		}
		start := time.Now()
		if err := c.deleAll(cnt); err != nil {
			return nil, err
		}
		if err := c.quit(); err != nil {
			return nil, err
		}
		el := time.Since(start)
		left, err := countMessages(filepath.Join(s.root, "dele"))
		if err != nil {
			return nil, err
		}
		if left != 0 {
			return nil, fmt.Errorf("%d messages left after DELE of all and QUIT", left)
		}
		return []float64{ms(el)}, nil
	})
	if err != nil {
		return err
	}
	b.addRow(row{name: fmt.Sprintf("dele-quit %s", kilo(b.cfg.dele)), unit: "ms", vals: medians(res), lowerBetter: true, need: 1})
	b.progressRow()
	for _, s := range b.servers {
		_ = os.RemoveAll(filepath.Join(s.root, "dele"))
	}
	return nil
}

// bcrypt: logins/s with bcrypt cost 10 passwords, 2x as many clients as
// cores, and how many cores the server used meanwhile.
func (b *bench) bcrypt(ctx context.Context) error {
	clients := min(b.cfg.bcryptUsers, 8)
	rates := make([]float64, len(b.servers))
	cores := make([]float64, len(b.servers))
	for i, s := range b.servers {
		cpu0 := treeCPU(s.pid())
		start := time.Now()
		deadline := start.Add(b.cfg.bcryptDur)
		var mu sync.Mutex
		var done, failed int
		var firstErr error
		var wg sync.WaitGroup
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) && ctx.Err() == nil {
					sctx, cancel := sessionCtx(ctx)
					_, err := session(sctx, s.addr, bcryptUser(c), password, nil)
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
			}()
		}
		wg.Wait()
		el := time.Since(start)
		cpu := treeCPU(s.pid()) - cpu0
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if failed > 0 {
			b.problem("bcrypt on %s: %d failed logins, first: %v", s.name, failed, firstErr)
		}
		rates[i] = float64(done) / el.Seconds()
		cores[i] = cpu.Seconds() / el.Seconds()
		b.progress("  %s: %d bcrypt logins in %.1fs, %.2f cores busy", s.name, done, el.Seconds(), cores[i])
	}
	b.addRow(row{name: fmt.Sprintf("bcrypt-10 logins/s (%d clients)", clients), unit: "login/s", vals: rates, info: true})
	b.addRow(row{name: "bcrypt-10 server CPU cores busy", unit: "cores", vals: cores, info: true, lowerBetter: true})
	b.progressRow()
	return nil
}
