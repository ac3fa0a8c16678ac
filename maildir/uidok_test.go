package maildir

import (
	"math/rand/v2"
	"testing"
)

// uidOKSlow is the rule uidOK implements word by word.
func uidOKSlow(u string) bool {
	if len(u) == 0 || len(u) > maxUIDLen {
		return false
	}
	for i := 0; i < len(u); i++ {
		if u[i] < 0x21 || u[i] > 0x7e {
			return false
		}
	}
	return true
}

// TestUIDOKWords: every byte value at every position of words and tails,
// and random strings, agree with the byte-by-byte rule.
func TestUIDOKWords(t *testing.T) {
	for n := 1; n <= 20; n++ {
		for pos := range n {
			for c := range 256 {
				b := make([]byte, n)
				for i := range b {
					b[i] = 'a'
				}
				b[pos] = byte(c)
				if got, want := uidOK(string(b)), uidOKSlow(string(b)); got != want {
					t.Fatalf("%q: %v, want %v", b, got, want)
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		b := make([]byte, rng.IntN(80))
		for i := range b {
			b[i] = byte(0x1c + rng.IntN(0x68)) // around both edges
			if rng.IntN(50) == 0 {
				b[i] = byte(rng.IntN(256))
			}
		}
		if got, want := uidOK(string(b)), uidOKSlow(string(b)); got != want {
			t.Fatalf("%q: %v, want %v", b, got, want)
		}
	}
}

// FuzzUIDOK: uidOK agrees with the byte-by-byte rule.
func FuzzUIDOK(f *testing.F) {
	f.Add("1700000000.M1P2.host,S=100,W=102")
	f.Add("abc\x7fdef\x20ghi")
	f.Fuzz(func(t *testing.T, u string) {
		if got, want := uidOK(u), uidOKSlow(u); got != want {
			t.Fatalf("%q: %v, want %v", u, got, want)
		}
	})
}
