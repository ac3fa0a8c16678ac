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
	msgs, namesCap, err := m.listMessages()
	if err != nil {
		return err
	}
	msgs = m.sortMessages(msgs)
	msgs = m.dedupe(msgs)
	m.msgs = msgs
	m.applyCache()
	if err := m.sizeRest(ctx); err != nil {
		return err
	}
	m.resolveUIDCollisions(nil)
	m.trim(namesCap)
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
