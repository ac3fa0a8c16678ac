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
