package maildir

import (
	"cmp"
	"slices"
	"strings"
)

// sortMessages orders msgs by delivery time, unique name, cur/ before new/,
// file name. Times and indexes are packed into uint64s and radix-sorted by
// time (a comparison sort was a sixth of a 100k login); only runs of equal
// times (rare) then need the full comparison. The messages are then
// permuted in place.
func (m *Mailbox) sortMessages(msgs []message) []message {
	const idxBits = 27 // 134M messages
	full := func(a, b *message) int {
		if c := cmp.Compare(a.ts, b.ts); c != 0 {
			return c
		}
		if c := strings.Compare(m.uniq(a), m.uniq(b)); c != 0 {
			return c
		}
		if c := cmp.Compare(b.dir, a.dir); c != 0 { // cur/ first
			return c
		}
		return strings.Compare(m.name(a), m.name(b))
	}
	keys := make([]uint64, len(msgs))
	packed := len(msgs) < 1<<idxBits
	for i := range msgs {
		ts := msgs[i].ts
		if ts < 0 || ts >= 1<<(64-idxBits) {
			packed = false
			break
		}
		keys[i] = uint64(ts)<<idxBits | uint64(i)
	}
	mask := uint64(1<<idxBits - 1)
	if !packed {
		mask = ^uint64(0)
	}
	idx := func(k uint64) int { return int(k & mask) }
	if packed {
		radixSortTS(keys, idxBits)
		for lo := 0; lo < len(keys); {
			hi := lo + 1
			for hi < len(keys) && keys[hi]>>idxBits == keys[lo]>>idxBits {
				hi++
			}
			if hi-lo > 1 {
				slices.SortFunc(keys[lo:hi], func(a, b uint64) int { return full(&msgs[idx(a)], &msgs[idx(b)]) })
			}
			lo = hi
		}
	} else {
		for i := range keys {
			keys[i] = uint64(i)
		}
		slices.SortFunc(keys, func(a, b uint64) int { return full(&msgs[a], &msgs[b]) })
	}
	// Apply the permutation in place, cycle by cycle (a second array of
	// messages would be 5-6 MB of fresh memory at 100k).
	const done = 1<<64 - 1
	for i := range keys {
		if keys[i] == done {
			continue
		}
		tmp := msgs[i]
		j := i
		for {
			k := idx(keys[j])
			keys[j] = done
			if k == i {
				msgs[j] = tmp
				break
			}
			msgs[j] = msgs[k]
			j = k
		}
	}
	return msgs
}

// radixSortTS sorts keys by their bits above low, stably (least significant
// digit first, 8 bits a pass, skipping digits that are the same in every
// key: delivery times of one mailbox span a few years, so this is 3-4
// passes).
func radixSortTS(keys []uint64, low uint) {
	if len(keys) < 2 {
		return
	}
	lo, hi := keys[0]>>low, keys[0]>>low
	for _, k := range keys {
		lo, hi = min(lo, k>>low), max(hi, k>>low)
	}
	span := hi - lo
	tmp := make([]uint64, len(keys))
	src, dst := keys, tmp
	for shift := uint(0); shift < 64 && span>>shift != 0; shift += 8 {
		var count [257]int
		for _, k := range src {
			count[((k>>low-lo)>>shift)&0xff+1]++
		}
		if count[((src[0]>>low-lo)>>shift)&0xff+1] == len(src) {
			continue // every key has this digit
		}
		for i := 1; i < 257; i++ {
			count[i] += count[i-1]
		}
		for _, k := range src {
			d := ((k>>low - lo) >> shift) & 0xff
			dst[count[d]] = k
			count[d]++
		}
		src, dst = dst, src
	}
	if &src[0] != &keys[0] {
		copy(keys, src)
	}
}
