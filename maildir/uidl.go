package maildir

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"

	"golang.org/x/sys/unix"
)

// The UIDL scheme: the unique-id each message of a snapshot gets, by
// precedence.
//
//  1. The UIDL pop3d served before for the message (uidlrecord.go), else
//     the one the old server served (legacy.go: Dovecot's dovecot-uidlist,
//     Courier's courierpop3dsizelist or name form): applyUIDLs.
//  2. Otherwise pop3d's own: the unique name (the file name before ':'),
//     or 40 hex digits derived from it when it is not 1-70 octets of
//     0x21..0x7E (UID, uidOK, derivedUID); the second of two files sharing
//     a unique name gets one derived from its directory and name (dedupe).
//  3. No two messages share one (uidcollide.go).

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
	m.ensure()
	if s, ok := m.uidls.src[i]; ok {
		return s
	}
	return SrcPOP3d
}

// File is where message i was listed, "new/NAME" or "cur/NAME" ("" for an
// index out of range).
func (m *Mailbox) File(i int) string {
	m.ensure()
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

// dedupe handles the same unique name listed more than once. The same inode
// twice is one message seen during a rename by another program: keep one
// (cur/ sorts first). Different inodes are different messages that share a
// unique name (a broken delivery): keep both, the later with an id derived
// from its directory and file name, so that unique ids stay unique.
func (m *Mailbox) dedupe(msgs []message) []message {
	out := msgs[:0]
	// Equal unique names are adjacent unless their time came from mtimes.
	var byName map[string]int
	for _, x := range msgs {
		if len(out) > 0 {
			p := &out[len(out)-1]
			if p.ts == x.ts && m.uniq(p) == m.uniq(&x) {
				if p.ino == x.ino {
					m.addAlias(len(out)-1, &x)
					continue
				}
				x.uid, x.dup = m.addID(derivedUID(dupKey(x.dir, m.name(&x)))), true
			}
		}
		if !x.hasTS && x.uid < 0 {
			if byName == nil {
				byName = make(map[string]int)
			}
			if k, ok := byName[m.uniq(&x)]; ok {
				if out[k].ino == x.ino {
					m.addAlias(k, &x)
					continue
				}
				x.uid, x.dup = m.addID(derivedUID(dupKey(x.dir, m.name(&x)))), true
			} else {
				byName[m.uniq(&x)] = len(out)
			}
		}
		out = append(out, x)
	}
	clear(msgs[len(out):])
	return out
}

// addAlias remembers a second name of message i's file (a hard link left by
// a move caught midway), so that deleting the message removes both.
func (m *Mailbox) addAlias(i int, x *message) {
	if m.alias == nil {
		m.alias = make(map[int]location)
	}
	m.alias[i] = location{dir: x.dir, name: m.name(x)}
}

// addID stores a derived unique-id and returns its index for message.uid.
func (m *Mailbox) addID(id string) int32 {
	m.derived = append(m.derived, id)
	return int32(len(m.derived) - 1)
}

// maxUIDLen is RFC 1939's limit for a unique-id listing.
const maxUIDLen = 70

// uidOK reports whether the unique name can serve as the POP3 unique-id
// as it is: 1 to 70 octets in 0x21..0x7E.
func uidOK(uniq string) bool {
	if len(uniq) == 0 || len(uniq) > maxUIDLen {
		return false
	}
	// Eight bytes at a time (it runs for every line of a UIDL answer): a
	// word has a byte below 0x21 when subtracting 0x21 from each byte
	// borrows into a byte whose top bit was clear, and one above 0x7E when
	// adding 1 sets a top bit (or it was set).
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(uniq); i += 8 {
		x := binary.LittleEndian.Uint64([]byte(uniq[i : i+8]))
		if ((x-0x21*ones)&^x|(x+ones)|x)&highs != 0 {
			return false
		}
	}
	for ; i < len(uniq); i++ {
		if uniq[i] < 0x21 || uniq[i] > 0x7e {
			return false
		}
	}
	return true
}

// derivedUID is the stable unique-id for a unique name that cannot be one
// itself: 40 hex digits of SHA-256 of the key (the unique name, or the whole
// file name when the unique name is empty).
func derivedUID(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:20])
}

// UID is the unique-id of message i: its unique name, or an id derived from
// it when the name is not 1-70 octets of 0x21-0x7E. "" for an index out of
// range.
func (m *Mailbox) UID(i int) string {
	m.ensure()
	if !m.valid(i) {
		return ""
	}
	x := &m.msgs[i]
	if x.uid >= 0 {
		return m.derived[x.uid]
	}
	u := m.uniq(x)
	if uidOK(u) {
		return u
	}
	// Derived on demand: such names are rare, and checking all at login
	// cost 5% of it.
	if u == "" {
		return derivedUID(m.name(x)) // a name starting with ':'
	}
	return derivedUID(u)
}
