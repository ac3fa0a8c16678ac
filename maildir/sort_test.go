package maildir

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestRadixSortTS(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		n    int
		span uint64
	}{{0, 1}, {1, 1}, {2, 1}, {100, 1}, {1000, 1 << 8}, {1000, 1 << 20}, {5000, 1 << 36}, {300, 3}} {
		const low = 27
		keys := make([]uint64, tc.n)
		for i := range keys {
			keys[i] = (1600000000+rng.Uint64N(tc.span))<<low | uint64(i)
		}
		want := slices.Clone(keys)
		slices.Sort(want) // unique keys: stable by index = full order
		radixSortTS(keys, low)
		if !slices.Equal(keys, want) {
			t.Fatalf("n=%d span=%d: not sorted stably", tc.n, tc.span)
		}
	}
}
