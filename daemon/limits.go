package daemon

// Protocol limits. RFC 2449 caps a command line at 255 octets; clients
// sometimes exceed it a little (long user names, AUTH initial responses), so
// the bound is twice that, line ending included.
const (
	maxLineLen        = 512
	maxAuthLineLen    = 8 << 10 // one SASL response line
	maxBadBeforeLogin = 3       // bad commands before the connection is closed
	maxBadAfterLogin  = 20      // consecutive bad commands, once logged in
	// maxRefusedBeforeLogin bounds the login attempts refused without
	// counting as bad commands (credentials without TLS, unknown SASL
	// mechanisms): a client may probe a few, but not loop until the idle
	// timeout.
	maxRefusedBeforeLogin = 10
)

// bitset is a set of message indexes.
type bitset []uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }

func (b bitset) has(i int) bool { return b[i/64]&(1<<(uint(i)%64)) != 0 }
func (b bitset) add(i int)      { b[i/64] |= 1 << (uint(i) % 64) }
func (b bitset) reset() {
	for i := range b {
		b[i] = 0
	}
}
