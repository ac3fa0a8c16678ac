package htpasswd

import (
	"bytes"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
)

// BenchmarkMemory1M loads a 1,000,000-user file (the size of the largest
// real files, ~72 MB) and reloads it, reporting the live heap after each
// step and the process's resident and peak resident memory: a reload must
// not keep two parsed copies alive.
//
//	go test -run x -bench Memory1M -benchtime 1x ./htpasswd
func BenchmarkMemory1M(b *testing.B) {
	p := bigFile(b, 1_000_000)
	logger := slog.New(slog.DiscardHandler)
	// Not the memory bigFile used to write the file.
	debug.FreeOSMemory()
	resetPeak()
	for b.Loop() {
		heap0, rss0, _ := memNow()
		b.ReportMetric(rss0, "MB-rss-before")
		f, err := Open(p, logger)
		if err != nil {
			b.Fatal(err)
		}
		heap1, rss1, hwm1 := memNow()
		resetPeak()
		if err := f.Reload(); err != nil {
			b.Fatal(err)
		}
		heap2, rss2, hwm2 := memNow()
		b.ReportMetric(heap1-heap0, "MB-heap-loaded")
		b.ReportMetric(rss1, "MB-rss-loaded")
		b.ReportMetric(hwm1, "MB-peak-loaded")
		b.ReportMetric(heap2-heap0, "MB-heap-reloaded")
		b.ReportMetric(rss2, "MB-rss-reloaded")
		b.ReportMetric(hwm2, "MB-peak-reloaded")
		runtime.KeepAlive(f)
	}
}

// memNow returns the live heap after a GC, and VmRSS and VmHWM, in MB.
func memNow() (heap, rss, hwm float64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heap = float64(ms.HeapAlloc) / (1 << 20)
	status, _ := os.ReadFile("/proc/self/status")
	for _, line := range bytes.Split(status, []byte("\n")) {
		for _, k := range []struct {
			name string
			dst  *float64
		}{{"VmRSS:", &rss}, {"VmHWM:", &hwm}} {
			if rest, ok := bytes.CutPrefix(line, []byte(k.name)); ok {
				kb, _ := strconv.Atoi(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(rest), []byte("kB")))))
				*k.dst = float64(kb) / 1024
			}
		}
	}
	return heap, rss, hwm
}

// resetPeak resets VmHWM to the current RSS (Linux 4.0+), so that each
// step's peak is its own.
func resetPeak() {
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}
