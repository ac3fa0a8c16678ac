package maildir

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// A login from the listing record (Options.Lazy) reads only the record's
// header: the count and the total size are there, so a session that only
// asks STAT (a mail checker, a client finding nothing new) never reads the
// messages. The rest is read, checksummed and checked by Load, which the
// engine calls before the first command that needs a message; every method
// that needs one loads too, so nothing sees a half-open snapshot. Between
// the two the record stays open and the mailbox locked: no pop3d writes it
// in place (a new record is renamed over it).
//
// The header is the first 112 bytes of the file, written before the rest
// in one block: a record damaged after a crash (it is written without
// fsync) keeps a header that is right or fails its magic, so STAT is never
// told a count the snapshot did not have. A body that fails at Load ends
// that one session (ErrSnapshot) and the record is removed, so the next
// login lists the directories.

// loadListing replaces the listing of new/ and cur/ by the record when it
// is fresh for the stamps cur taken at now: read whole, or with
// Options.Lazy only its header (see above). It reports whether it did.
func (m *Mailbox) loadListing(cur [2]dirStamp, now int64, dirSizes int64) bool {
	r, err := openListing(m.root, listingName, listingLimit(dirSizes), func(st listStamp) bool {
		return listingFresh(st, cur, now)
	})
	if err != nil {
		if !errors.Is(err, unix.ENOENT) && !errors.Is(err, errStale) {
			m.log.Debug("listing record ignored", "err", err)
		}
		return false
	}
	if m.opts.Lazy {
		m.lazy = r
		return true
	}
	defer unix.Close(r.fd)
	rec, err := r.load(m.opts.Pool)
	if err != nil {
		m.log.Debug("listing record ignored", "err", err)
		return false
	}
	m.names, m.msgs, m.derived, m.alias, m.pooled = rec.names, rec.msgs, rec.derived, rec.alias, rec.pooled
	return true
}

// ErrSnapshot is what Load returns when the messages of the snapshot
// announced at login cannot be read from the listing record (damaged, or
// changed by something other than pop3d): the session cannot serve what it
// announced. Nothing is changed in the Maildir, and the record is removed.
var ErrSnapshot = errors.New("maildir: snapshot not readable from the listing record")

// Load reads the messages of a snapshot opened from the listing record
// with Options.Lazy; it does nothing for one already read. After an error
// the mailbox holds no messages (Size is 0, UID and File are "", Open and
// Commit fail); the caller should end the session.
func (m *Mailbox) Load() error {
	if m.loaded.Load() {
		return m.loadErr
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.loaded.Load() {
		return m.loadErr
	}
	m.loadErr = m.loadLazy()
	if m.loadErr != nil {
		m.log.Error("snapshot not readable from the listing record; removed", "err", m.loadErr)
		m.dropListing()
	}
	m.loaded.Store(true)
	return m.loadErr
}

// loadLazy reads the record the login opened. Callers hold m.mu.
func (m *Mailbox) loadLazy() error {
	r := m.lazy
	if r == nil {
		return nil
	}
	m.lazy = nil
	defer unix.Close(r.fd)
	var st unix.Stat_t
	if err := unix.Fstat(r.fd, &st); err != nil {
		return fmt.Errorf("%w: %v", ErrSnapshot, err)
	}
	// Not the ctime: it changes when the name is unlinked or renamed over,
	// which leaves this open file as it was. Whatever else reaches the
	// bytes must still pass the checksum, the checks and the count and
	// total announced.
	if st.Size != r.st.Size || st.Mtim != r.st.Mtim {
		return fmt.Errorf("%w: written to in place", ErrSnapshot)
	}
	rec, err := r.load(m.opts.Pool)
	if err == nil && len(rec.msgs) != m.count {
		err = fmt.Errorf("%w: %d messages, %d announced", errListing, len(rec.msgs), m.count)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSnapshot, err)
	}
	m.names, m.msgs, m.derived, m.alias, m.pooled = rec.names, rec.msgs, rec.derived, rec.alias, rec.pooled
	// What Open does after a snapshot, deferred with it.
	m.applyUIDLs(m.root)
	return nil
}

// closeLazy closes the record of a lazy snapshot whose messages were
// never read, reporting whether there was one. Callers hold m.mu.
func (m *Mailbox) closeLazy() bool {
	if m.lazy == nil {
		return false
	}
	unix.Close(m.lazy.fd)
	m.lazy = nil
	return true
}

// ensure loads a lazy snapshot before a method that needs its messages.
// Callers must not hold m.mu.
func (m *Mailbox) ensure() {
	if !m.loaded.Load() {
		_ = m.Load()
	}
}

// Total is the sum of the wire sizes of all messages (STAT's octets), up
// to the largest int64; for a lazy snapshot it comes from the record's
// header without reading the messages.
func (m *Mailbox) Total() int64 {
	if !m.loaded.Load() {
		m.mu.Lock()
		r := m.lazy
		m.mu.Unlock()
		if r != nil {
			return r.total
		}
	}
	if m.loadErr != nil {
		return 0
	}
	return wireTotal(m.msgs)
}
