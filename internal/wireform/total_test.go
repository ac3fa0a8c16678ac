package wireform

import (
	"math"
	"testing"
)

func TestAddSize(t *testing.T) {
	for _, tc := range []struct{ total, size, want int64 }{
		{0, 5, 5},
		{5, -3, 5},
		{5, 0, 5},
		{math.MaxInt64 - 1, 1, math.MaxInt64},
		{math.MaxInt64 - 1, 2, math.MaxInt64},
		{math.MaxInt64, math.MaxInt64, math.MaxInt64},
	} {
		if got := AddSize(tc.total, tc.size); got != tc.want {
			t.Errorf("AddSize(%d, %d) = %d, want %d", tc.total, tc.size, got, tc.want)
		}
	}
}
