package wireform

import "math"

// AddSize adds a message's size to a total of octets as STAT and the
// maildrop line count them: a negative size adds nothing, and the total
// stops at the largest int64 rather than wrap (sizes come from files a
// user may name or fill). The engine sums with it, and a store that
// announces a total of its own (maildir's listing record) must agree.
func AddSize(total, size int64) int64 {
	if size <= 0 {
		return total
	}
	if total > math.MaxInt64-size {
		return math.MaxInt64
	}
	return total + size
}
