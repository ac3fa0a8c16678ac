package maildir

import (
	"errors"
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

// Legacy says which old server's UIDLs a Maildir keeps (uidl_legacy).
type Legacy uint8

// The uidl_legacy values. The zero value is LegacyAuto.
const (
	LegacyAuto    Legacy = iota // dovecot-uidlist or courierpop3dsizelist, whichever is newer
	LegacyDovecot               // dovecot-uidlist only
	LegacyCourier               // courierpop3dsizelist only (and Courier's name form without one)
	LegacyNone                  // pop3d's own UIDLs only
)

// ParseLegacy reads a uidl_legacy value.
func ParseLegacy(s string) (Legacy, error) {
	switch s {
	case "auto":
		return LegacyAuto, nil
	case "dovecot":
		return LegacyDovecot, nil
	case "courier":
		return LegacyCourier, nil
	case "none":
		return LegacyNone, nil
	}
	return 0, fmt.Errorf("want auto, dovecot, courier or none, not %q", s)
}

func (l Legacy) String() string {
	return [...]string{"auto", "dovecot", "courier", "none"}[l]
}

// Where a message's UIDL came from (Mailbox.UIDSource).
const (
	SrcDovecotP      = "dovecot-P"      // a P record in dovecot-uidlist
	SrcDovecotFormat = "dovecot-format" // dovecot_uidl_format over dovecot-uidlist
	SrcCourier       = "courier"        // courierpop3dsizelist, or Courier's name form
	SrcPOP3d         = "pop3d"          // pop3d's own
)

// uidlState is the UIDL scheme of one snapshot: messages whose UIDL is not
// pop3d's own have it in Mailbox.derived (message.uid) and their source
// here.
type uidlState struct {
	src map[int]string
}

// applyUIDLs gives each message the UIDL it must keep: the one pop3d served
// before (its record), else the one the old server served (legacy files),
// else pop3d's own, which is changed when it equals a UIDL of another
// message. The record is then brought up to date. Nothing here fails the
// login: an unreadable or damaged file is logged and left out.
func (m *Mailbox) applyUIDLs(rootfd int) {
	rec, recErr := readUIDLRecord(rootfd)
	if recErr != nil && !errors.Is(recErr, unix.ENOENT) {
		m.log.Warn("UIDL record damaged; rebuilt from the legacy files and names on disk", "file", uidlRecordName, "err", recErr)
	}
	var dove *dovecotUIDList
	var cour *courierSizeList
	courierNames := false
	mode := m.opts.Legacy
	if mode == LegacyAuto {
		mode = m.pickLegacy(rootfd)
	}
	switch mode {
	case LegacyDovecot:
		dove = m.readDovecot(rootfd)
	case LegacyCourier:
		cour = m.readCourier(rootfd)
		courierNames = cour == nil && m.opts.Legacy == LegacyCourier
	}
	if rec == nil && dove == nil && cour == nil && !courierNames {
		return // the common case: nothing but pop3d's own names
	}
	format := m.opts.DovecotFormat
	if format.src == "" {
		format, _ = ParseDovecotFormat(DefaultDovecotUIDLFormat)
	}

	m.uidls.src = make(map[int]string)
	taken := make(map[string]int, len(m.msgs))
	set := func(i int, uidl, src string) bool {
		if !legacyUIDLOK(uidl) {
			// The files are the Maildir owner's to write: a space or CRLF
			// in a UIDL would inject lines into the UIDL answer.
			m.log.Warn("legacy UIDL not usable, pop3d's own used", "file", m.name(&m.msgs[i]))
			return false
		}
		if _, dup := taken[uidl]; dup {
			m.log.Warn("legacy UIDL shared by two messages; the later gets pop3d's own", "uidl", uidl, "file", m.name(&m.msgs[i]))
			return false
		}
		taken[uidl] = i
		m.msgs[i].uid = int32(len(m.derived))
		m.derived = append(m.derived, uidl)
		m.uidls.src[i] = src
		return true
	}
	for i := range m.msgs {
		x := &m.msgs[i]
		base, name := m.uniq(x), m.name(x)
		if r, ok := rec[base]; ok && set(i, r.uidl, r.src) {
			continue
		}
		if dove != nil {
			if r, ok := dove.recs[base]; ok {
				if u, err := dovecotUIDL(dove, r, base, format); err == nil {
					src := SrcDovecotFormat
					if r.hasP {
						src = SrcDovecotP
					}
					if set(i, u, src) {
						continue
					}
				}
			}
		}
		if cour != nil {
			if r, ok := cour.recs[courierFileKey(name, x.dir == inNew)]; ok && set(i, r.uidl(base), SrcCourier) {
				continue
			}
		}
		if courierNames && set(i, courierNameUIDL(base), SrcCourier) {
			continue
		}
	}
	// pop3d's own UIDLs never equal one of the above, nor each other.
	m.resolveUIDCollisions(taken)
	if !m.opts.Preview {
		m.saveUIDLRecord(rootfd, rec, recErr != nil && !errors.Is(recErr, unix.ENOENT))
	}
}

// UIDSource says where the UIDL of message i came from: SrcDovecotP,
// SrcDovecotFormat, SrcCourier or SrcPOP3d.
func (m *Mailbox) UIDSource(i int) string {
	if s, ok := m.uidls.src[i]; ok {
		return s
	}
	return SrcPOP3d
}

// pickLegacy is uidl_legacy = auto: the legacy file present, the newer of
// the two when both are.
func (m *Mailbox) pickLegacy(rootfd int) Legacy {
	var d, c unix.Stat_t
	de := unix.Fstatat(rootfd, dovecotUIDListName, &d, unix.AT_SYMLINK_NOFOLLOW)
	ce := unix.Fstatat(rootfd, courierSizeListName, &c, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case de == nil && ce == nil:
		if c.Mtim.Nano() > d.Mtim.Nano() {
			return LegacyCourier
		}
		return LegacyDovecot
	case de == nil:
		return LegacyDovecot
	case ce == nil:
		return LegacyCourier
	}
	return LegacyNone
}

func (m *Mailbox) readDovecot(rootfd int) *dovecotUIDList {
	b, err := readSmallFile(rootfd, dovecotUIDListName, maxLegacyFile)
	if err != nil {
		if !errors.Is(err, unix.ENOENT) {
			m.log.Warn("legacy UIDLs not read", "file", dovecotUIDListName, "err", err)
		}
		return nil
	}
	l, err := parseDovecotUIDList(b)
	if err != nil {
		m.log.Warn("legacy UIDL file damaged; what it lists before the damage is used", "file", dovecotUIDListName, "err", err)
	}
	return l
}

func (m *Mailbox) readCourier(rootfd int) *courierSizeList {
	b, err := readSmallFile(rootfd, courierSizeListName, maxLegacyFile)
	if err != nil {
		if !errors.Is(err, unix.ENOENT) {
			m.log.Warn("legacy UIDLs not read", "file", courierSizeListName, "err", err)
		}
		return nil
	}
	l, err := parseCourierSizeList(b)
	if err != nil {
		m.log.Warn("legacy UIDL file damaged; lines Courier would skip are skipped", "file", courierSizeListName, "err", err)
	}
	return l
}

// readSmallFile reads a file at the top of the Maildir open as rootfd:
// never through a symlink, never blocking on a FIFO, only a regular file of
// at most limit bytes.
func readSmallFile(rootfd int, name string, limit int64) ([]byte, error) {
	fd, err := unix.Openat(rootfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, errors.New("not a regular file")
	}
	if st.Size > limit {
		return nil, fmt.Errorf("%d bytes, more than %d", st.Size, limit)
	}
	b := make([]byte, st.Size)
	n, err := io.ReadFull(fdReader(fd), b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	return b[:n], nil
}

// File is where message i was listed, "new/NAME" or "cur/NAME" ("" for an
// index out of range).
func (m *Mailbox) File(i int) string {
	if !m.valid(i) {
		return ""
	}
	return subdirs[m.msgs[i].dir] + "/" + m.name(&m.msgs[i])
}

// legacyUIDLOK accepts a legacy UIDL of 1 to 255 octets in 0x21..0x7E: RFC
// 1939's character range (a space or control character would break the
// UIDL answer), with the length some old servers exceeded.
func legacyUIDLOK(u string) bool {
	if u == "" || len(u) > 255 {
		return false
	}
	for i := 0; i < len(u); i++ {
		if u[i] < 0x21 || u[i] > 0x7e {
			return false
		}
	}
	return true
}
