package maildir

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The state file, pop3d-state at the top of the Maildir, is what pop3d
// remembers about a mailbox between sessions for RFC 2449 LOGIN-DELAY and
// EXPIRE: when the user last logged in, and when each message was first
// retrieved with RETR. Every pop3d serving the Maildir (on this host or
// another over NFS) shares it; it is read and replaced only under the
// session lock. Text, so that an admin can read it:
//
//	pop3d-state 1
//	login UNIX-SECONDS
//	retr UNIX-SECONDS UNIQUE-NAME
//
// A damaged file must never lock anyone out or delete anything: a bad
// header makes the whole file ignored, a bad line is skipped, and times in
// the future (a wrong clock, a corrupted digit) count as never.
const (
	stateName    = "pop3d-state"
	stateTmpName = "pop3d-state.tmp"
	stateMagic   = "pop3d-state 1"
	maxStateSize = 64 << 20
)

// mailState is the parsed state file.
type mailState struct {
	login int64            // unix seconds; 0: none recorded
	retr  map[string]int64 // unique name -> first retrieval, unix seconds
}

// parseState parses a state file. now bounds the times accepted. The
// second result describes the damage found, if any, for the log.
func parseState(b []byte, now int64) (mailState, string) {
	first, rest, _ := bytes.Cut(b, []byte("\n"))
	st := mailState{retr: make(map[string]int64, bytes.Count(rest, []byte("\n")))}
	if string(first) != stateMagic {
		return st, "bad header"
	}
	damage := ""
	note := func(n int, why string) {
		if damage == "" {
			damage = fmt.Sprintf("line %d: %s", n, why)
		}
	}
	for n := 2; len(rest) > 0; n++ {
		var ln []byte
		ln, rest, _ = bytes.Cut(rest, []byte("\n"))
		if len(ln) == 0 {
			continue
		}
		// "login T" or "retr T NAME": the name is the rest of the line (a
		// Maildir name may hold spaces, never a newline).
		kind, tail, ok := bytes.Cut(ln, []byte(" "))
		if !ok {
			note(n, "too few fields")
			continue
		}
		num, name, hasName := bytes.Cut(tail, []byte(" "))
		t, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil || t <= 0 || t > now {
			note(n, "bad or future time")
			continue
		}
		switch {
		case string(kind) == "login" && !hasName:
			st.login = max(st.login, t)
		case string(kind) == "retr" && hasName && len(name) > 0:
			if old, ok := st.retr[string(name)]; !ok || t < old {
				st.retr[string(name)] = t
			}
		default:
			note(n, "unknown record")
		}
	}
	return st, damage
}

// format returns the file form of st.
func (st *mailState) format() []byte {
	names := make([]string, 0, len(st.retr))
	size := len(stateMagic) + 32
	for u := range st.retr {
		names = append(names, u)
		size += len(u) + 32
	}
	slices.Sort(names)
	b := make([]byte, 0, size)
	b = append(b, stateMagic+"\n"...)
	if st.login > 0 {
		b = append(b, "login "...)
		b = strconv.AppendInt(b, st.login, 10)
		b = append(b, '\n')
	}
	for _, u := range names {
		if u == "" || strings.IndexByte(u, '\n') >= 0 {
			continue // cannot be written back; never recorded from a listing
		}
		b = append(b, "retr "...)
		b = strconv.AppendInt(b, st.retr[u], 10)
		b = append(b, ' ')
		b = append(b, u...)
		b = append(b, '\n')
	}
	return b
}

// now is the mailbox's clock.
func (m *Mailbox) now() time.Time {
	if m.opts.Now != nil {
		return m.opts.Now()
	}
	return time.Now()
}

// loadState reads the state file once per session. Callers hold m.mu.
// Any problem leaves an empty state and a log line: the records are a
// convenience, never a reason to refuse a login.
func (m *Mailbox) loadState() *mailState {
	if m.state != nil {
		return m.state
	}
	st, err := m.readState()
	if err != nil && !errors.Is(err, unix.ENOENT) {
		m.log.Warn("state file ignored", "file", stateName, "err", err)
	}
	m.state = &st
	return m.state
}

func (m *Mailbox) readState() (mailState, error) {
	empty := mailState{retr: make(map[string]int64)}
	root := m.root // the Maildir as opened at login (root.go)
	if root < 0 {
		return empty, errors.New("mailbox already closed")
	}
	// O_NONBLOCK: a FIFO planted under the name must not hang the login.
	fd, err := unix.Openat(root, stateName, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return empty, err
	}
	f := os.NewFile(uintptr(fd), stateName)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return empty, err
	}
	if !fi.Mode().IsRegular() {
		return empty, errors.New("not a regular file")
	}
	if fi.Size() > maxStateSize {
		return empty, fmt.Errorf("%d bytes, more than %d", fi.Size(), maxStateSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxStateSize))
	if err != nil {
		return empty, err
	}
	st, damage := parseState(b, m.now().Unix())
	if damage != "" {
		m.log.Warn("state file damaged, bad records ignored", "file", stateName, "problem", damage)
	}
	return st, nil
}

// writeState replaces the state file atomically: a fresh temporary file
// (never one found under that name), fsync, rename, fsync of the Maildir,
// all relative to the Maildir's descriptor of the session.
func (m *Mailbox) writeState(st *mailState) error {
	root := m.root
	if root < 0 {
		return errors.New("maildir: mailbox already closed")
	}
	if err := unix.Unlinkat(root, stateTmpName, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("maildir %s: write %s: %w", m.dir, stateName, err)
	}
	fd, err := unix.Openat(root, stateTmpName,
		unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("maildir %s: write %s: %w", m.dir, stateName, err)
	}
	f := os.NewFile(uintptr(fd), stateTmpName)
	_, err = f.Write(st.format())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(root, stateTmpName, root, stateName)
	}
	if err != nil {
		unix.Unlinkat(root, stateTmpName, 0)
		return fmt.Errorf("maildir %s: write %s: %w", m.dir, stateName, err)
	}
	if err := unix.Fsync(root); err != nil {
		return fmt.Errorf("maildir %s: fsync: %w", m.dir, err)
	}
	return nil
}

// LastLogin is when the previous successful login recorded with
// RecordLogin happened, by any pop3d sharing this Maildir; false when none
// is known (never, or the record is damaged).
func (m *Mailbox) LastLogin() (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.loadState()
	if st.login == 0 {
		return time.Time{}, false
	}
	return time.Unix(st.login, 0), true
}

// RecordLogin durably records a successful login at t (RFC 2449
// LOGIN-DELAY). The file is replaced atomically; on error the old record
// stays.
func (m *Mailbox) RecordLogin(t time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done {
		return errors.New("maildir: mailbox already closed")
	}
	st := m.loadState()
	st.login = t.Unix()
	return m.writeState(st)
}

// FirstRetrieved is when message i was first retrieved with RETR in an
// earlier session that ended with UPDATE; false when it never was (as far
// as the state file knows). Recorded by Commit when Options.TrackRetrieval
// is set.
func (m *Mailbox) FirstRetrieved(i int) (time.Time, bool) {
	m.ensure()
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.valid(i) {
		return time.Time{}, false
	}
	t, ok := m.loadState().retr[m.uniq(&m.msgs[i])]
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(t, 0), true
}

// saveRetrievals is Commit's part in the state file: the messages
// retrieved and kept get their first-retrieval time (unless they have one),
// and records of messages that are gone (deleted now, or no longer in the
// Maildir) are dropped so that the file stays as small as the mailbox.
// Callers hold m.mu. Failing is logged: the next session retries.
func (m *Mailbox) saveRetrievals(deleted []bool, retrieved []int) {
	if !m.opts.TrackRetrieval {
		return
	}
	st := m.loadState()
	now := m.now().Unix()
	keep := make(map[string]int64, len(st.retr)+len(retrieved))
	for i := range m.msgs {
		if deleted[i] {
			continue
		}
		if t, ok := st.retr[m.uniq(&m.msgs[i])]; ok {
			keep[m.uniq(&m.msgs[i])] = t
		}
	}
	for _, i := range retrieved {
		if !m.valid(i) || deleted[i] {
			continue
		}
		if _, ok := keep[m.uniq(&m.msgs[i])]; !ok {
			keep[m.uniq(&m.msgs[i])] = now
		}
	}
	if sameTimes(keep, st.retr) {
		return
	}
	st.retr = keep
	if err := m.writeState(st); err != nil {
		m.log.Warn("first-retrieval times not saved", "err", err)
	}
}

func sameTimes(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
