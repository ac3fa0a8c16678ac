package maildir

import "sync"

// SnapshotPool keeps the message arrays of large snapshots read from
// listing records, for the sessions that come after. Without it each such
// login took fresh memory from the kernel: at 100k messages 6.4 MB, a page
// fault every 4 KiB, and between the polls of a client the runtime had
// given the memory back, so the next poll paid them all again. An array is
// given back when its session ends (Close or Commit) and the mailbox no
// longer answers from it; arrays not taken again go with the garbage
// collector (sync.Pool). Only arrays are pooled, never the names: strings
// of those are handed out (UID) and must not change under their holder.
type SnapshotPool struct {
	p sync.Pool
}

// poolMinMessages: smaller arrays are not worth keeping.
const poolMinMessages = 4096

// NewSnapshotPool returns an empty pool, for Options.Pool of every session.
func NewSnapshotPool() *SnapshotPool { return &SnapshotPool{} }

// get returns an array of n messages, its contents left over from an
// earlier session (the caller overwrites all of them), and whether it is
// the pool's to have back.
func (p *SnapshotPool) get(n int) ([]message, bool) {
	if p == nil || n < poolMinMessages {
		return make([]message, n), false
	}
	for {
		v, _ := p.p.Get().(*[]message)
		if v == nil {
			return make([]message, n, n+n/8), true
		}
		if cap(*v) >= n && cap(*v) <= 2*n {
			return (*v)[:n], true
		}
		// The wrong size for this mailbox: left to the collector (another
		// size is seldom wanted twice in a row).
	}
}

// put gives an array from get back.
func (p *SnapshotPool) put(msgs []message) {
	if p != nil && msgs != nil {
		p.p.Put(&msgs)
	}
}
