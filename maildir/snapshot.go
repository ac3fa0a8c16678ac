package maildir

import (
	"context"
	"slices"
	"strings"
)

// snapshot lists new/ and cur/, orders the messages, gives each a unique id
// and a wire size (from ,W=, the cache, or by reading the file).
//
// new/ is listed before cur/: a message moved from new/ to cur/ by another
// reader while we list is then seen twice (and deduplicated by inode), never
// missed.
func (m *Mailbox) snapshot(ctx context.Context) error {
	fds := m.fds
	// The clock before the stamps, the stamps before the listing: see
	// listcache.go for why this order makes a change during or right after
	// the listing show at the next login.
	now := m.listNow()
	stamps, local, stamped := statDirs(fds)
	// A capacity hint from the directories' sizes (on ext4 and XFS about
	// 40-70 bytes per entry), so that appends rarely copy.
	sizes := [2]int64{dirSize(fds[0]), dirSize(fds[1])}
	if local && stamped && m.loadListing(stamps, now, sizes[0]+sizes[1]) {
		m.fromListing = true
		return nil
	}
	m.hook("stamped")
	msgs, namesCap, err := m.listMessages(sizes)
	if err != nil {
		return err
	}
	msgs = m.sortMessages(msgs)
	msgs = m.dedupe(msgs)
	m.msgs = msgs
	m.applyCache()
	complete, err := m.sizeRest(ctx) // every listed message is in the snapshot
	if err != nil {
		return err
	}
	m.resolveUIDCollisions(nil)
	m.trim(namesCap)
	if local && stamped && complete && (len(m.msgs) >= listingMinMessages || m.opts.testListingAll) {
		// Recorded only when the directories did not change while they
		// were listed and the stamps are not racy already.
		stamp := listStamp{at: now, dirs: stamps}
		if again, _, ok := statDirs(fds); ok && listingFresh(stamp, again, now) {
			m.saveListing(stamp)
			m.hook("saved")
		}
	}
	return nil
}

// trim gives back what the capacity hints over-estimated: the snapshot
// lives as long as the session, and for the many small mailboxes of a busy
// server the hint (a directory's size is at least one block) was most of
// each idle session's memory.
//
// Only a gross over-estimate is worth the copy (a directory that once held
// many more entries keeps its size): on a large mailbox a moderate one costs
// less memory than the copy costs time.
func (m *Mailbox) trim(namesCap int) {
	if cap(m.msgs) > 2*len(m.msgs)+16 {
		m.msgs = slices.Clone(m.msgs)
	}
	if n := len(m.names); namesCap > 2*n+1024 {
		m.names = strings.Clone(m.names)
	}
}
