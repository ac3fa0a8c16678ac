package daemon

import (
	"net/netip"
	"runtime"
	"testing"
	"time"
)

func TestPenaltyDoublesAndResets(t *testing.T) {
	p := newPenalties()
	base := 2 * time.Second
	now := time.Unix(1_000_000, 0)
	ip := netip.MustParseAddr("192.0.2.7")
	other := netip.MustParseAddr("192.0.2.8")
	want := []time.Duration{2, 4, 8, 15, 15}
	for i, w := range want {
		if got := p.fail(ip, base, now); got != w*time.Second {
			t.Fatalf("failure %d: delay %v, want %v", i+1, got, w*time.Second)
		}
	}
	if got := p.current(ip, base, now); got != 15*time.Second { // capped
		t.Errorf("current = %v", got)
	}
	if got := p.current(other, base, now); got != base {
		t.Errorf("another address pays %v", got)
	}
	p.reset(ip)
	if got := p.fail(ip, base, now); got != base {
		t.Errorf("after a success: %v, want %v", got, base)
	}
	// Quiet for longer than the TTL: forgotten.
	p.fail(ip, base, now)
	later := now.Add(penaltyTTL + time.Second)
	if got := p.current(ip, base, later); got != base {
		t.Errorf("after the TTL current = %v", got)
	}
	if got := p.fail(ip, base, later); got != base {
		t.Errorf("after the TTL fail = %v", got)
	}
}

func TestPenaltyDelay(t *testing.T) {
	tests := []struct {
		base  time.Duration
		fails uint32
		want  time.Duration
	}{
		{0, 10, 0},
		{time.Second, 1, time.Second},
		{time.Second, 4, 8 * time.Second},
		{time.Second, 5, 15 * time.Second},
		{time.Second, 1 << 31, 15 * time.Second},
		{20 * time.Second, 3, 20 * time.Second}, // a base above the cap stays
		{10 * time.Millisecond, 3, 40 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := penaltyDelay(tt.base, tt.fails); got != tt.want {
			t.Errorf("penaltyDelay(%v, %d) = %v, want %v", tt.base, tt.fails, got, tt.want)
		}
	}
}

func TestPenaltyKey(t *testing.T) {
	tests := []struct {
		a, b string
		same bool
	}{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9", true}, // one /64
		{"2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"::ffff:192.0.2.1", "192.0.2.1", true},
		{"192.0.2.1", "192.0.2.2", false},
		{"fe80::1%eth0", "fe80::1%eth1", true},
	}
	for _, tt := range tests {
		ka, _ := penaltyKey(netip.MustParseAddr(tt.a))
		kb, _ := penaltyKey(netip.MustParseAddr(tt.b))
		if (ka == kb) != tt.same {
			t.Errorf("%s vs %s: keys %v %v, same=%v", tt.a, tt.b, ka, kb, tt.same)
		}
	}
	if _, ok := penaltyKey(netip.Addr{}); ok {
		t.Error("invalid address has a key")
	}
}

// An address flood (100k addresses failing once each) neither grows the
// table nor makes a fresh address pay a penalty; an address failing
// repeatedly among the flood keeps its penalty most of the time.
func TestPenaltyFloodBounded(t *testing.T) {
	p := newPenalties()
	base := time.Second
	now := time.Unix(1_000_000, 0)
	attacker := netip.MustParseAddr("198.51.100.1")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 100_000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		p.fail(a, base, now)
		if i%1000 == 0 {
			p.fail(attacker, base, now)
		}
		now = now.Add(time.Millisecond)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 1<<20 {
		t.Errorf("heap grew by %d bytes under the flood", grown)
	}
	n := 0
	for s := range p.sets {
		for w := range p.sets[s] {
			if p.sets[s][w].fails > 0 {
				n++
			}
		}
	}
	if n > penaltySets*penaltyWays {
		t.Fatalf("%d entries", n)
	}
	if got := p.current(netip.MustParseAddr("203.0.113.5"), base, now); got != base {
		t.Errorf("fresh address pays %v", got)
	}
}

func BenchmarkPenaltyFail(b *testing.B) {
	p := newPenalties()
	now := time.Unix(1_000_000, 0)
	i := 0
	for b.Loop() {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		p.fail(a, time.Second, now)
		i++
	}
}
