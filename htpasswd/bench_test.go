package htpasswd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bigFile writes a password file of n users with real-looking hashes of
// several schemes (as big as real ones: bcrypt and sha512-crypt dominate).
func bigFile(b *testing.B, n int) string {
	b.Helper()
	hashes := []string{
		hBcrypt5,
		fallbackDummy,
		hSha512,
		"$y$j9T$RjwoPfk24uhHTECOg9wRG1$5p2SpkTk/wx4l4Jmi7yyFvd2eROTQypVeu6b9rThD7.",
		hApr1,
		hSSHA256,
	}
	var sb strings.Builder
	sb.WriteString("# generated for a benchmark\n")
	for i := range n {
		if i%10 == 9 {
			fmt.Fprintf(&sb, "user%06d@example.org:%s:5000:5000::/var/mail/vhosts/example.org/user%06d::\n", i, hashes[i%len(hashes)], i)
		} else {
			fmt.Fprintf(&sb, "user%06d@example.org:%s\n", i, hashes[i%len(hashes)])
		}
	}
	p := filepath.Join(b.TempDir(), "passwd")
	if err := os.WriteFile(p, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkLoad100k measures Open on a 100,000-user file; MB-retained is
// the live heap the loaded file costs.
func BenchmarkLoad100k(b *testing.B) {
	p := bigFile(b, 100_000)
	fi, _ := os.Stat(p)
	b.SetBytes(fi.Size())
	logger := slog.New(slog.DiscardHandler)
	var f *File
	var err error
	b.ReportAllocs()
	// CPU time as well as wall time: on a shared machine the wall time
	// includes waiting for a core.
	start := processCPU()
	for b.Loop() {
		if f, err = Open(p, logger); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cpu := processCPU() - start
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
	if n := len(f.cur.Load().t.users); n != 100_000 {
		b.Fatalf("%d users loaded", n)
	}
	var before, after runtime.MemStats
	f = nil
	runtime.GC()
	runtime.ReadMemStats(&before)
	f, _ = Open(p, logger)
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MB-retained")
	runtime.KeepAlive(f)
}

// BenchmarkLookup measures the part of Authenticate that is not the hash:
// the change check (one stat) and the map lookup, with a cheap scheme.
func BenchmarkLookup(b *testing.B) {
	p := bigFile(b, 100_000)
	f, err := Open(p, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("map", func(b *testing.B) {
		t := f.cur.Load().t
		for i := 0; b.Loop(); i++ {
			if _, ok := t.lookup(fmt.Sprintf("user%06d@example.org", i%100_000)); !ok {
				b.Fatal("missing")
			}
		}
	})
	b.Run("stat+map", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			f.refresh()
			if _, ok := f.cur.Load().t.lookup(fmt.Sprintf("user%06d@example.org", i%100_000)); !ok {
				b.Fatal("missing")
			}
		}
	})
}

// BenchmarkVerify measures one verification per committed vector of the
// password "Tr0ub4dor&3" (one per command).
func BenchmarkVerify(b *testing.B) {
	for _, v := range readVectors(b, "vectors.txt") {
		if v.pass != pw {
			continue
		}
		ver, _, err := parseHash(v.hash)
		if err != nil {
			b.Fatal(err)
		}
		name := strings.TrimSuffix(v.cmd, " 'Tr0ub4dor&3'")
		name = strings.TrimSuffix(name, " -p")
		b.Run(name, func(b *testing.B) {
			// The process's CPU time too: the machine is shared, and
			// wall time there includes waiting for a core. (Not the
			// thread's: argon2 hashes on goroutines of its own.)
			start := processCPU()
			for b.Loop() {
				if !ver.verify([]byte(pw)) {
					b.Fatal("refused")
				}
			}
			b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU returns the CPU time used by the process, all threads.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAuthenticate measures whole logins on a bcrypt-cost-5 file:
// known user, wrong password and unknown user should cost the same.
func BenchmarkAuthenticate(b *testing.B) {
	p := filepath.Join(b.TempDir(), "passwd")
	if err := os.WriteFile(p, []byte("alice:"+hBcrypt5+"\nbob:"+hBcrypt5+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	f, err := Open(p, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct{ name, user, pass string }{
		{"known", "alice", pw},
		{"wrong-password", "alice", "wrong"},
		{"unknown-user", "nobody", pw},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				f.Authenticate(ctx, c.user, c.pass)
			}
		})
	}
}
