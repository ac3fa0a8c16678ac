package maildir

import (
	"bufio"
	"context"
	"fmt"
	"github.com/pop3d/pop3d/internal/wireform"
	"golang.org/x/sys/unix"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

const benchN = 100_000

// benchMaildir returns a Maildir of benchN messages as Postfix writes them
// (no ,W=, so sizes come from the cache or the files), 1-8 KiB each, 2/3 in
// cur/ and 1/3 in new/. It is built once and kept under os.TempDir, since
// building it takes a while; a marker file says it is complete.
func benchMaildir(b *testing.B) string {
	b.Helper()
	root := filepath.Join(os.TempDir(), "pop3d-maildir-bench-100k-v1")
	dir := filepath.Join(root, "Maildir")
	marker := filepath.Join(root, "complete")
	if _, err := os.Stat(marker); err == nil {
		return dir
	}
	os.RemoveAll(root)
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("building %d-message Maildir in %s", benchN, dir)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			buf := make([]byte, 0, 9000)
			for i := w; i < benchN; i += 4 {
				buf = buf[:0]
				buf = fmt.Appendf(buf, "Return-Path: <sender%d@example.org>\nDelivered-To: bob@example.com\n"+
					"Received: from mx.example.org by mail.example.com\n\tfor <bob@example.com>; Mon, 1 Jan 2024 00:00:00 +0000\n"+
					"Message-ID: <%d@example.org>\nSubject: message %d\nFrom: sender%d@example.org\nTo: bob@example.com\n\n", i, i, i, i)
				target := 1024 + rng.IntN(7*1024)
				for len(buf) < target {
					n := 20 + rng.IntN(56)
					for range n {
						buf = append(buf, byte('a'+rng.IntN(26)))
					}
					buf = append(buf, '\n')
				}
				name := fmt.Sprintf("%d.V801I%xM%d.mail.example.com", 1600000000+i*60, i, rng.IntN(1000000))
				sub := "cur"
				if i%3 == 0 {
					sub = "new"
				} else {
					name += ":2,S"
				}
				if err := os.WriteFile(filepath.Join(dir, sub, name), buf, 0o600); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		b.Fatal(err)
	}
	return dir
}

// cpuTime is the user+system CPU time of this process so far. The
// benchmarks report it next to wall time because the machine they were tuned
// on was shared: wall time there measured the neighbours as much as us.
func cpuTime() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports CPU milliseconds per iteration since start.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

func benchOpen(b *testing.B, dir string) *Mailbox {
	mb, err := Open(context.Background(), dir, Options{Logger: testLogger(b)})
	if err != nil {
		b.Fatal(err)
	}
	return mb
}

// benchSTAT logs in to dir and totals the sizes, as STAT does.
func benchSTAT(b *testing.B, dir string) *Mailbox {
	b.Helper()
	mb := benchOpen(b, dir)
	var total int64
	for i := range mb.Len() {
		total += mb.Size(i)
	}
	if mb.Len() != benchN || total == 0 {
		b.Fatalf("Len %d total %d", mb.Len(), total)
	}
	return mb
}

// BenchmarkOpenSTAT is a repeat login + STAT at 100k messages (cache warm).
func BenchmarkOpenSTAT(b *testing.B) {
	dir := benchMaildir(b)
	benchOpen(b, dir).Close() // make sure the cache exists
	b.ResetTimer()
	cpu := cpuTime()
	defer reportCPU(b, cpu)
	for b.Loop() {
		benchSTAT(b, dir).Close()
	}
}

// BenchmarkOpenSTATRecord is BenchmarkOpenSTAT from the listing record
// (listcache.go): new/ and cur/ unchanged, their stamps older than the
// racy margin, so no directory is read.
func BenchmarkOpenSTATRecord(b *testing.B) {
	dir := benchMaildir(b)
	time.Sleep(racyMargin + 100*time.Millisecond) // the stamps must not be racy
	benchOpen(b, dir).Close()                     // lists and writes the record
	b.ResetTimer()
	cpu := cpuTime()
	defer reportCPU(b, cpu)
	for b.Loop() {
		mb := benchSTAT(b, dir)
		if !mb.fromListing {
			b.Fatal("the record was not used")
		}
		mb.Close()
	}
}

// BenchmarkOpenUIDLLIST is a repeat login + STAT + full UIDL + full LIST at
// 100k messages, formatted as the engine would.
func BenchmarkOpenUIDLLIST(b *testing.B) {
	dir := benchMaildir(b)
	benchOpen(b, dir).Close()
	w := bufio.NewWriterSize(io.Discard, 64<<10)
	b.ResetTimer()
	cpu := cpuTime()
	defer reportCPU(b, cpu)
	for b.Loop() {
		mb := benchSTAT(b, dir)
		var line []byte
		for i := range mb.Len() {
			line = strconv.AppendInt(line[:0], int64(i+1), 10)
			line = append(line, ' ')
			line = append(line, mb.UID(i)...)
			line = append(line, '\r', '\n')
			w.Write(line)
		}
		for i := range mb.Len() {
			line = strconv.AppendInt(line[:0], int64(i+1), 10)
			line = append(line, ' ')
			line = strconv.AppendInt(line, mb.Size(i), 10)
			line = append(line, '\r', '\n')
			w.Write(line)
		}
		w.Flush()
		mb.Close()
	}
}

// BenchmarkFirstOpen is a login with no size cache: every file is read.
func BenchmarkFirstOpen(b *testing.B) {
	dir := benchMaildir(b)
	var bytes int64
	var elapsed, cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		os.Remove(filepath.Join(dir, cacheName))
		b.StartTimer()
		start, c0 := time.Now(), cpuTime()
		mb := benchOpen(b, dir)
		elapsed += time.Since(start)
		cpu += cpuTime() - c0
		b.StopTimer()
		for i := range mb.msgs {
			bytes += mb.msgs[i].dsize
		}
		mb.Close() // writes the cache, not timed
		b.StartTimer()
	}
	b.ReportMetric(float64(bytes)/1e6/elapsed.Seconds(), "MB/s")
	b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// BenchmarkSnapshotMemory reports the heap a 100k-message snapshot keeps.
func BenchmarkSnapshotMemory(b *testing.B) {
	dir := benchMaildir(b)
	benchOpen(b, dir).Close()
	var ms runtime.MemStats
	var kept uint64
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		mb := benchOpen(b, dir)
		runtime.GC()
		runtime.ReadMemStats(&ms)
		kept = ms.HeapAlloc - before
		runtime.KeepAlive(mb)
		mb.Close()
	}
	b.ReportMetric(float64(kept), "bytes/snapshot")
}

// BenchmarkWireSize is the size computation alone over an in-memory message.
func BenchmarkWireSize(b *testing.B) {
	msg := make([]byte, 0, 1<<20)
	for len(msg) < cap(msg)-100 {
		msg = append(msg, "A line of a typical e-mail message, about seventy octets long....\n"...)
	}
	var w wireform.Counter
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		w = wireform.Counter{}
		w.Count(msg)
	}
	if w.Size() == 0 {
		b.Fatal("zero")
	}
}

// BenchmarkGetdentsFloor is the floor for a login: the bare getdents64 calls
// that list new/ and cur/ of the 100k Maildir, nothing else. Compare the
// login benchmarks with it when the machine is busy.
func BenchmarkGetdentsFloor(b *testing.B) {
	dir := benchMaildir(b)
	buf := make([]byte, 256<<10)
	cpu := cpuTime()
	defer reportCPU(b, cpu)
	for b.Loop() {
		for _, sub := range subdirs {
			fd, err := unix.Open(filepath.Join(dir, sub), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			for {
				n, err := unix.Getdents(fd, buf)
				if err != nil {
					b.Fatal(err)
				}
				if n <= 0 {
					break
				}
			}
			unix.Close(fd)
		}
	}
}
