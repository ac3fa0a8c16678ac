package maildir

import "time"

// relocate finds message i again after its file disappeared under the
// listed name: another program renamed it (flags, new/ -> cur/). It must
// have the same unique name and inode. One fresh listing serves the misses
// of the next two seconds, so that a client fetching thousands of messages
// deleted under it does not relist the Maildir for each; force relists
// anyway (for a listing that proved out of date). Callers hold m.mu.
func (m *Mailbox) relocate(i int, force bool) (found, relisted bool) {
	if force || m.fresh == nil || time.Since(m.freshAt) > 2*time.Second {
		m.fresh, m.freshAt = m.listAll(m.fds), time.Now()
		m.relists++
		relisted = true
	}
	l, ok := m.fresh.find(m.uniq(&m.msgs[i]), m.msgs[i].ino)
	if !ok {
		return false, relisted
	}
	if m.moved == nil {
		m.moved = make(map[int]location)
	}
	m.moved[i] = l
	return true, relisted
}
