package maildir

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Dovecot keeps its UIDs in dovecot-uidlist at the top of the Maildir
// (src/lib-storage/index/maildir/maildir-uidlist.c in Dovecot 2.3). Version 3,
// written by every Dovecot since 1.1:
//
//	3 V<uidvalidity> N<nextuid> G<mailbox guid>
//	<uid> [<key><value> ...] :<file name>
//
// Extension keys are one capital letter: P is the POP3 UIDL Dovecot saved
// (pop3_save_uidl, or a migration), G the message GUID, S and W sizes, O the
// POP3 order. Version 1 (Dovecot 1.0) is "1 <uidvalidity> <nextuid>" and
// records "<uid> <file name>". The file name is matched on its base name,
// the part before ':', as Dovecot does.
const dovecotUIDListName = "dovecot-uidlist"

// maxLegacyFile bounds what a legacy file may make a login read: the files
// are the user's, so their size must not decide the allocation. 64 MiB is
// about 700k uidlist records.
const maxLegacyFile = 64 << 20

// dovecotUIDList is what pop3d needs of a dovecot-uidlist.
type dovecotUIDList struct {
	version     int
	uidValidity uint32
	nextUID     uint32
	recs        map[string]dovecotRec // by base file name
}

// dovecotRec is one message record.
type dovecotRec struct {
	uid  uint32
	pop3 string // the P extension (saved UIDL); "" with hasP: the base name
	hasP bool
	guid string // the G extension
}

// errLegacyDamaged marks a legacy file pop3d read only in part (or not at
// all); the caller logs it and goes on with what was read.
var errLegacyDamaged = errors.New("damaged")

// parseDovecotUIDList reads a dovecot-uidlist. A header Dovecot would reject
// makes the whole file unusable (nil and an error); a damaged record stops
// the reading there, like Dovecot, and the records before it are kept
// (with an error saying where). An unterminated last line is not read: it
// is a write cut short.
func parseDovecotUIDList(b []byte) (*dovecotUIDList, error) {
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		return nil, fmt.Errorf("%w: no header line", errLegacyDamaged)
	}
	l := &dovecotUIDList{}
	if err := l.parseHeader(string(b[:nl])); err != nil {
		return nil, err
	}
	l.recs = make(map[string]dovecotRec, bytes.Count(b, []byte{'\n'}))
	var prev uint32
	for lineNo, rest := 2, b[nl+1:]; len(rest) > 0; lineNo++ {
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			return l, fmt.Errorf("%w: line %d not terminated", errLegacyDamaged, lineNo)
		}
		line := string(rest[:nl])
		rest = rest[nl+1:]
		if line == "" {
			// Dovecot: "Invalid data" (uid 0).
			return l, fmt.Errorf("%w: line %d empty", errLegacyDamaged, lineNo)
		}
		r, name, err := l.parseRecord(line)
		if err == nil && r.uid <= prev {
			err = fmt.Errorf("UIDs not ordered (%d after %d)", r.uid, prev)
		}
		if err != nil {
			return l, fmt.Errorf("%w: line %d: %v", errLegacyDamaged, lineNo, err)
		}
		prev = r.uid
		// A later record for the same file replaces the earlier one,
		// as in Dovecot.
		l.recs[baseName(name)] = r
	}
	return l, nil
}

func (l *dovecotUIDList) parseHeader(h string) error {
	if len(h) < 2 || h[0] < '0' || h[0] > '9' || h[1] != ' ' {
		return fmt.Errorf("%w: invalid version number", errLegacyDamaged)
	}
	l.version = int(h[0] - '0')
	var err error
	switch l.version {
	case 1:
		f := strings.Fields(h[2:])
		if len(f) < 2 {
			return fmt.Errorf("%w: corrupted version 1 header", errLegacyDamaged)
		}
		l.uidValidity, err = parseUint32(f[0])
		if err == nil {
			l.nextUID, err = parseUint32(f[1])
		}
	case 3:
		for _, f := range strings.Split(h[2:], " ") {
			if f == "" {
				continue
			}
			switch f[0] {
			case 'V':
				l.uidValidity, err = parseUint32(f[1:])
			case 'N':
				l.nextUID, err = parseUint32(f[1:])
			}
			if err != nil {
				break
			}
		}
	default:
		return fmt.Errorf("%w: unsupported version %d", errLegacyDamaged, l.version)
	}
	if err != nil {
		return fmt.Errorf("%w: header: %v", errLegacyDamaged, err)
	}
	if l.uidValidity == 0 || l.nextUID == 0 {
		return fmt.Errorf("%w: broken header (uidvalidity %d, next uid %d)", errLegacyDamaged, l.uidValidity, l.nextUID)
	}
	return nil
}

// parseRecord reads "<uid> [ext ...] :<name>" (version 3) or "<uid> <name>".
func (l *dovecotUIDList) parseRecord(line string) (dovecotRec, string, error) {
	var r dovecotRec
	i := 0
	var uid uint64
	for i < len(line) && line[i] >= '0' && line[i] <= '9' {
		uid = uid*10 + uint64(line[i]-'0')
		if uid > 0xffffffff {
			return r, "", errors.New("UID too high")
		}
		i++
	}
	if uid == 0 || i >= len(line) || line[i] != ' ' {
		return r, "", errors.New("invalid data")
	}
	if uid == 0xffffffff {
		return r, "", errors.New("UID too high")
	}
	r.uid = uint32(uid)
	for i < len(line) && line[i] == ' ' {
		i++
	}
	line = line[i:]
	if l.version == 3 {
		for line != "" && line[0] != ':' {
			end := strings.IndexByte(line, ' ')
			if end < 0 {
				end = len(line)
			}
			f := line[:end]
			// Dovecot drops fields whose key is not A-Z and goes on.
			switch f[0] {
			case 'P':
				r.pop3, r.hasP = f[1:], true
			case 'G':
				r.guid = f[1:]
			}
			line = strings.TrimLeft(line[end:], " ")
		}
		line = strings.TrimPrefix(line, ":")
		if line == "" {
			return r, "", errors.New("invalid extended fields")
		}
	}
	if line == "" || strings.IndexByte(line, '/') >= 0 {
		return r, "", errors.New("broken file name")
	}
	return r, line, nil
}

// baseName is the part of a Maildir file name before ':'.
func baseName(name string) string {
	if c := strings.IndexByte(name, ':'); c >= 0 {
		return name[:c]
	}
	return name
}

// parseUint32 is Dovecot's str_to_uint: decimal digits only, no sign, no
// overflow.
func parseUint32(s string) (uint32, error) {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, fmt.Errorf("invalid number %q", s)
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("invalid number %q", s)
	}
	return uint32(v), nil
}

// dovecotUIDL is the UIDL Dovecot served for the message of record r whose
// base file name is base: the saved P value (an empty one standing for the
// base name), else the format expanded with the record's UID, the list's
// UIDVALIDITY and the G value or base name as GUID.
func dovecotUIDL(l *dovecotUIDList, r dovecotRec, base string, f DovecotFormat) (string, error) {
	if r.hasP {
		if r.pop3 == "" {
			return base, nil
		}
		return r.pop3, nil
	}
	return f.Expand(r.uid, l.uidValidity, base, r.guid)
}
