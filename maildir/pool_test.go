package maildir

import (
	"fmt"
	"testing"
)

// TestSnapshotPool: sessions of a large mailbox that share a pool each
// serve exactly the snapshot on disk, whether their array is fresh or an
// earlier session's; a session that ended answers nothing from an array
// it gave back.
func TestSnapshotPool(t *testing.T) {
	const n = poolMinMessages + 10
	dir := newMaildir(t)
	for i := range n {
		put(t, dir, []string{"new", "cur"}[i%2], fmt.Sprintf("%d.p%d.host", 1700000000+i, i), fmt.Sprintf("Subject: %d\n\n%*s\n", i, i%9, ""))
	}
	openMB(t, dir, Options{testNow: skewed}).Close() // writes the record
	eager := openMB(t, dir, Options{testNow: skewed})
	var want []string
	for i := range eager.Len() {
		want = append(want, fmt.Sprintf("%s %d %s", eager.File(i), eager.Size(i), eager.UID(i)))
	}
	eager.Close()
	pool := NewSnapshotPool()
	for round := range 4 {
		opts := Options{testNow: skewed, Lazy: true, Pool: pool}
		mb := openMB(t, dir, opts)
		if !mb.fromListing || mb.Len() != n {
			t.Fatalf("round %d: from the record %v, Len %d", round, mb.fromListing, mb.Len())
		}
		for i := range mb.Len() {
			if got := fmt.Sprintf("%s %d %s", mb.File(i), mb.Size(i), mb.UID(i)); got != want[i] {
				t.Fatalf("round %d message %d: %q, want %q", round, i, got, want[i])
			}
		}
		if !mb.pooled {
			t.Fatalf("round %d: array not from the pool", round)
		}
		mb.Close()
		if mb.Size(0) != 0 || mb.UID(0) != "" {
			t.Fatalf("round %d: answers after Close: %d %q", round, mb.Size(0), mb.UID(0))
		}
	}
}
