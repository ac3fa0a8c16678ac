package maildir

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Options control how a Maildir is opened and updated.
type Options struct {
	Create   bool         // create a missing Maildir (tmp/ new/ cur/, 0700); else ErrNotFound
	MarkRead bool         // UPDATE: S flag + new/ -> cur/ for retrieved, kept messages
	Logger   *slog.Logger // nil: slog.Default()
	// TrackRetrieval makes Commit record when each retrieved, kept message
	// was first retrieved, in the state file (state.go), for EXPIRE.
	TrackRetrieval bool
	Now            func() time.Time // clock of the state file's records; nil: time.Now

	// Legacy says whose UIDLs a message keeps (uidl_legacy); the zero
	// value is LegacyAuto.
	Legacy Legacy
	// DovecotFormat is Dovecot's pop3_uidl_format (dovecot_uidl_format);
	// the zero value is DefaultDovecotUIDLFormat.
	DovecotFormat DovecotFormat
	// KeepTmp turns off the removal of stale files in tmp/ at login
	// (tmp_cleanup = no).
	KeepTmp bool
	// Lazy lets a login from the listing record read only the record's
	// header: Len and Total answer at once, and the messages are read by
	// Load or the first method that needs them (lazy.go).
	Lazy bool
	// Pool, when set, lends large snapshots their message arrays and has
	// them back when the session ends (pool.go).
	Pool *SnapshotPool
	// Preview opens the Maildir only to show what a session would serve
	// (pop3d uidl): the UIDL record is not written, since no client has
	// seen these UIDLs yet, and a preview with a wrong dovecot_uidl_format
	// must not pin them.
	Preview bool

	testNow  func() time.Time   // clock of listing records (listcache.go); nil: time.Now
	testHook func(point string) // called at points of the login (tests)
	// testListingAll records snapshots of any size (tests of the record
	// use a few messages).
	testListingAll bool
}

// The two directories a snapshot lists, by index.
const (
	inNew = 0
	inCur = 1
)

var subdirs = [2]string{"new", "cur"}

// sizeSrc says where a message's wire size came from.
type sizeSrc uint8

const (
	srcNone     sizeSrc = iota // not known (yet)
	srcW                       // Dovecot's ,W= in the name
	srcCache                   // the size cache
	srcComputed                // read the file in this session
	srcStale                   // announced, but the file changed on disk since: not cached
)

// message is one entry of the snapshot. It is kept small (no strings of its
// own: the names of all messages share one string) because a snapshot may
// hold hundreds of thousands.
type message struct {
	ts    int64  // delivery time (seconds), the first sort key
	ino   uint64 // inode, from getdents
	h     uint64 // nameHash of the unique name (the cache key)
	size  int64  // wire size
	dsize int64  // on-disk size
	mtime int64  // on-disk mtime in ns, 0 when not known (learnt at Open)
	off   uint32 // name is Mailbox.names[off : off+nlen]
	nlen  uint16
	ulen  uint16 // unique name is the first ulen bytes of the name
	uid   int32  // -1: UID from the unique name; else index into Mailbox.derived (duplicates)
	dir   uint8  // inNew or inCur
	src   sizeSrc
	hasTS bool // ts came from the name, not the mtime
	dup   bool // shares its unique name with an earlier message: uid derived from dupKey
}

// location is where a message renamed by another program was found again.
type location struct {
	dir  uint8
	name string
}

// Mailbox is one locked Maildir for one POP3 session: the snapshot taken by
// Open and the means to read and update its messages. Its methods are safe
// for concurrent use, though a session uses it from one goroutine.
type Mailbox struct {
	dir     string
	opts    Options
	log     *slog.Logger
	lk      *lock
	root    int    // the Maildir, opened once at login (see root.go)
	fds     [2]int // new/ and cur/, opened relative to root; used until the end
	rootDev uint64 // the root's identity, to notice at UPDATE that it moved
	rootIno uint64
	names   string
	msgs    []message
	derived []string

	mu      sync.Mutex
	moved   map[int]location // messages found again under another name
	alias   map[int]location // second names of the same file (see dedupe)
	fresh   listing          // recent listing for relocate
	freshAt time.Time
	uidls   uidlState     // UIDLs not derived from names (uidl.go)
	tmpGone int           // stale files removed from tmp/ at Open
	relists int           // listings taken by relocate (for tests)
	corr    map[int]int64 // sizes corrected by CorrectSize
	dirty   bool          // the size cache needs rewriting
	// fromListing: the snapshot came from the listing record, new/ and
	// cur/ were not read. listingBad: a size in the record is wrong
	// (CorrectSize, a file changed in place), so it goes at the end.
	fromListing, listingBad bool
	done                    bool // committed or closed
	// count is Len, fixed at Open. lazy is the listing record of a lazy
	// login whose messages are not read yet; loaded is set once they are
	// (or never needed reading), loadErr if that failed (lazy.go).
	count   int
	lazy    *openRecord
	loaded  atomic.Bool
	loadErr error
	pooled  bool       // msgs is Options.Pool's, given back by releaseMsgs
	state   *mailState // the state file, read on first use
}

// Open locks the Maildir at dir for one POP3 session and snapshots new/ and
// cur/. A missing Maildir is created when opts.Create is set and otherwise
// gives ErrNotFound; a path that is not a Maildir (or reaches one only
// through a symlink pop3d does not follow, see root.go) gives ErrNotMaildir;
// permission problems satisfy errors.Is(err, fs.ErrPermission); a Maildir
// held by another session gives ErrLocked.
func Open(ctx context.Context, dir string, opts Options) (*Mailbox, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	m := &Mailbox{dir: dir, opts: opts, log: log.With("maildir", dir), root: -1, fds: [2]int{-1, -1}}
	if err := m.openMaildir(); err != nil {
		m.closeDirs()
		return nil, err
	}
	lk, err := acquireLock(m.root, dir)
	if err != nil {
		m.closeDirs()
		return nil, err
	}
	m.lk = lk
	if err := m.snapshot(ctx); err != nil {
		lk.release()
		m.closeDirs()
		return nil, err
	}
	m.count = len(m.msgs)
	if m.lazy != nil {
		m.count = m.lazy.n.msgs
	} else {
		m.applyUIDLs(m.root)
		m.loaded.Store(true)
	}
	if !opts.KeepTmp {
		n, err := cleanTmp(m.root, m.now())
		if err != nil {
			m.log.Warn("tmp/ not cleaned", "err", err)
		}
		if n > 0 {
			// The daemon puts the count on its login line (TmpRemoved).
			m.log.Debug("removed stale files from tmp/", "count", n)
		}
		m.tmpGone = n
	}
	return m, nil
}

// TmpRemoved is the number of stale files Open removed from tmp/.
func (m *Mailbox) TmpRemoved() int { return m.tmpGone }

// errNoSubdir marks a Maildir without cur/ or new/, which Create fixes.
var errNoSubdir = errors.New("missing")

// openMaildir opens the Maildir root, new/ and cur/ for the session (see
// root.go), creating what is missing when Options.Create is set, and
// records the root's identity for Commit. tmp/ is created but not opened:
// this package never writes there.
func (m *Mailbox) openMaildir() error {
	root, err := openRoot(unix.AT_FDCWD, m.dir, m.dir)
	if errors.Is(err, ErrNotFound) && m.opts.Create {
		var parent int
		parent, err = createRoot(m.dir)
		if err == nil {
			root, err = openRoot(parent, filepath.Base(m.dir), m.dir)
			unix.Close(parent)
			if err == nil {
				err = createSubdirs(root, m.dir)
				if err != nil {
					unix.Close(root)
				}
			}
		}
	}
	if err != nil {
		return err
	}
	m.root = root
	var st unix.Stat_t
	if err := unix.Fstat(root, &st); err != nil {
		return fmt.Errorf("maildir %s: %w", m.dir, err)
	}
	m.rootDev, m.rootIno = st.Dev, st.Ino
	for d, sub := range subdirs {
		fd, err := openSub(root, sub, m.dir)
		if errors.Is(err, errNoSubdir) && m.opts.Create {
			if err = createSubdirs(root, m.dir); err == nil {
				fd, err = openSub(root, sub, m.dir)
			}
		}
		if err != nil {
			return err
		}
		m.fds[d] = fd
	}
	return nil
}

// closeDirs closes the descriptors openMaildir opened.
func (m *Mailbox) closeDirs() {
	for d, fd := range m.fds {
		if fd >= 0 {
			unix.Close(fd)
			m.fds[d] = -1
		}
	}
	if m.root >= 0 {
		unix.Close(m.root)
		m.root = -1
	}
}

func (m *Mailbox) name(x *message) string        { return m.names[x.off : x.off+uint32(x.nlen)] }
func (m *Mailbox) uniq(x *message) string        { return m.names[x.off : x.off+uint32(x.ulen)] }
func (m *Mailbox) valid(i int) bool              { return i >= 0 && i < len(m.msgs) }
func (m *Mailbox) path(d uint8, n string) string { return m.dir + "/" + subdirs[d] + "/" + n }

// where returns the current directory and name of message i. Callers hold
// m.mu.
func (m *Mailbox) where(i int) (uint8, string) {
	if l, ok := m.moved[i]; ok {
		return l.dir, l.name
	}
	x := &m.msgs[i]
	return x.dir, m.name(x)
}

// Len is the number of messages in the snapshot.
func (m *Mailbox) Len() int { return m.count }

// Size is the wire size of message i (0 for an index out of range). It is
// the same for the whole session, even after CorrectSize.
func (m *Mailbox) Size(i int) int64 {
	m.ensure()
	if !m.valid(i) {
		return 0
	}
	return m.msgs[i].size
}

// Open returns the raw file of message i for streaming. A message whose file
// was renamed by another program is found again by its unique name; one that
// vanished gives an error wrapping ErrMessageGone; other failures wrap the
// cause.
func (m *Mailbox) Open(i int) (io.ReadCloser, error) {
	m.ensure()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done {
		return nil, errors.New("maildir: mailbox closed")
	}
	if !m.valid(i) {
		return nil, fmt.Errorf("maildir %s: no message %d", m.dir, i)
	}
	d, n := m.where(i)
	f, err := m.openMessage(d, n)
	if errors.Is(err, fs.ErrNotExist) {
		// Renamed by another program? A recent listing first. Every
		// listing is younger than the snapshot, so a message missing from
		// it is gone: relisting for each would make a client fetching
		// thousands of messages deleted under it relist the Maildir
		// thousands of times. Only a listing that shows the message under a
		// name it has left since (renamed again) is worth renewing.
		found, relisted := m.relocate(i, false)
		if found {
			d, n = m.where(i)
			f, err = m.openMessage(d, n)
			if errors.Is(err, fs.ErrNotExist) && !relisted {
				if found, _ = m.relocate(i, true); found {
					d, n = m.where(i)
					f, err = m.openMessage(d, n)
				}
			}
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("maildir %s: message %s: %w", m.dir, m.UID(i), ErrMessageGone)
	}
	if err != nil {
		return nil, fmt.Errorf("maildir %s: message %s: %w", m.dir, m.UID(i), err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(f.fd, &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("maildir %s: message %s: %w", m.dir, m.UID(i), err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return nil, fmt.Errorf("maildir %s: message %s: not a regular file", m.dir, m.UID(i))
	}
	x := &m.msgs[i]
	mt := st.Mtim.Nano()
	if x.dsize != st.Size || (x.mtime != 0 && x.mtime != mt) {
		// Rewritten in place, against the Maildir rules: the size we
		// announced may be wrong; the engine counts and calls CorrectSize.
		m.log.Warn("message changed on disk since its size was computed", "uid", m.UID(i),
			"file", n, "size", st.Size, "was", x.dsize)
		// Its cache entry goes: the wire size is now unknown, and pairing
		// the new size and mtime with the old wire size would hide the
		// change from later sessions. CorrectSize after a complete RETR
		// saves the right one.
		x.src = srcStale
		m.dirty = true
		m.listingBad = true
	}
	// A learnt mtime is saved if the cache is written anyway; it is a
	// second check only, not worth a rewrite. The new size and mtime are
	// what a corrected size is saved with.
	x.dsize, x.mtime = st.Size, mt
	f.left = st.Size
	return f, nil
}

// openMessage opens the file n of directory d for reading, relative to the
// directory opened at login. Symbolic links are not followed: a user able
// to write into the Maildir must not be able to read other files of the
// daemon's user through POP3.
func (m *Mailbox) openMessage(d uint8, n string) (*messageFile, error) {
	p := m.path(d, n)
	fd, err := openatRetry(m.fds[d], n, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	return &messageFile{fd: fd, name: p}, nil
}

// messageFile is an open message, read up to the size it had when opened.
// A bare file descriptor rather than an *os.File: RETR is the hot path,
// and os.File costs a poller registration (refused for regular files), a
// finalizer and, with a known size, the final read that returns 0, all of
// which showed in profiles of retrieving many small messages.
type messageFile struct {
	fd   int
	name string
	left int64 // bytes still to read; Read reports EOF at 0
}

func (f *messageFile) Read(p []byte) (int, error) {
	if f.fd < 0 {
		return 0, fs.ErrClosed
	}
	if f.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > f.left {
		p = p[:f.left]
	}
	for {
		n, err := unix.Read(f.fd, p)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, &fs.PathError{Op: "read", Path: f.name, Err: err}
		}
		if n == 0 {
			// Truncated since it was opened: what there is is the message;
			// the engine notices the size and corrects it.
			f.left = 0
			return 0, io.EOF
		}
		f.left -= int64(n)
		return n, nil
	}
}

func (f *messageFile) Close() error {
	if f.fd < 0 {
		return fs.ErrClosed
	}
	err := unix.Close(f.fd)
	f.fd = -1
	if err != nil {
		return &fs.PathError{Op: "close", Path: f.name, Err: err}
	}
	return nil
}

// CorrectSize records that RETR of message i sent octets octets, not
// Size(i): the cache is fixed for later sessions (a lying ,W= or a file
// changed in place). This session keeps announcing the old size so that
// STAT and LIST stay consistent within it.
func (m *Mailbox) CorrectSize(i int, octets int64) {
	m.ensure()
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.valid(i) || octets < 0 {
		return
	}
	if m.msgs[i].size == octets {
		if _, ok := m.corr[i]; !ok {
			return
		}
	}
	m.log.Warn("message size differs from the announced size; cache corrected",
		"uid", m.UID(i), "announced", m.msgs[i].size, "sent", octets)
	if m.corr == nil {
		m.corr = make(map[int]int64)
	}
	m.corr[i] = octets
	m.dirty = true
	m.listingBad = true
}

// Close releases the mailbox without changing any message. The size cache
// is written if this session learnt new sizes. Close after Commit or Close
// does nothing.
func (m *Mailbox) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done {
		return nil
	}
	m.done = true
	m.closeLazy()
	if m.dirty {
		m.saveCache(nil)
	}
	defer m.releaseMsgs()
	if m.listingBad {
		m.dropListing()
	}
	err := m.lk.release()
	m.closeDirs()
	return err
}

// releaseMsgs gives the snapshot's message array back to Options.Pool when
// it came from there; the mailbox then holds no messages (Size is 0, UID
// ""), as nothing may answer from an array another session may be using.
// Callers hold m.mu.
func (m *Mailbox) releaseMsgs() {
	if m.pooled {
		m.opts.Pool.put(m.msgs)
		m.pooled, m.msgs = false, nil
	}
}

// saveCache writes the size cache for the snapshot minus the deleted
// messages. Failing is logged only: the cache is an optimisation.
func (m *Mailbox) saveCache(deleted []bool) {
	ents := make([]cacheEntry, 0, len(m.msgs))
	for i := range m.msgs {
		x := &m.msgs[i]
		if deleted != nil && deleted[i] {
			continue
		}
		size, corrected := m.corr[i]
		if !corrected {
			if x.src != srcCache && x.src != srcComputed {
				continue
			}
			size = x.size
		}
		ents = append(ents, cacheEntry{ts: x.ts, ino: x.ino, h: x.h,
			dsize: x.dsize, mtime: x.mtime, wsize: size})
	}
	// The snapshot is in time order already; only equal times need the
	// hash order.
	slices.SortStableFunc(ents, func(a, b cacheEntry) int {
		if c := cmp.Compare(a.ts, b.ts); c != 0 {
			return c
		}
		return cmp.Compare(a.h, b.h)
	})
	if err := writeCache(m.root, m.dir, ents); err != nil {
		m.log.Warn("size cache not saved", "err", err)
	}
}
