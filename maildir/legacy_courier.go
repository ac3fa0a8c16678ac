package maildir

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Courier's POP3 server keeps courierpop3dsizelist at the top of the Maildir
// (imap/pop3dserver.c in courier-libs):
//
//	/3 <nextuid> <uidvalidity>
//	<file name> <size> <uid>:<uidvalidity>:<utf8>
//
// Version 2 lines lack ":<utf8>". Courier serves "UID<uid>-<uidv>", or
// "UID<uid>" when the uidvalidity is 0, and for a uid of 0 its oldest form,
// the base file name with bytes outside 0x21..0x7E and ' " + written as
// +XX. Courier compares a record's name with a file's name in cur/ (after
// moving new/ to cur/ with ":2,") up to the ':' both have; a name without
// ':' matches only a name without ':' (see courierKey).
const courierSizeListName = "courierpop3dsizelist"

// courierLineMax is Courier's line buffer: longer lines are cut there.
const courierLineMax = 2048 - 20

// courierSizeList is what pop3d needs of a courierpop3dsizelist.
type courierSizeList struct {
	version     int
	nextUID     uint64
	uidValidity uint64
	recs        map[string]courierRec // by courierKey
}

// courierRec is one message record.
type courierRec struct {
	uid, uidValidity uint64
}

// uidl is the UIDL Courier serves for the record's message.
func (r courierRec) uidl(base string) string {
	switch {
	case r.uid == 0:
		return courierNameUIDL(base)
	case r.uidValidity == 0:
		return "UID" + strconv.FormatUint(r.uid, 10)
	}
	return "UID" + strconv.FormatUint(r.uid, 10) + "-" + strconv.FormatUint(r.uidValidity, 10)
}

// courierNameUIDL is Courier's filename-based UIDL ("VERSION 0").
func courierNameUIDL(base string) string {
	var b strings.Builder
	for i := 0; i < len(base); i++ {
		c := base[i]
		if c < 0x21 || c > 0x7e || c == '\'' || c == '"' || c == '+' {
			fmt.Fprintf(&b, "+%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// parseCourierSizeList reads a courierpop3dsizelist the way Courier does: a
// header it does not accept makes the file unusable (Courier rebuilds it
// with new UIDs); a record line it cannot read is skipped, as Courier skips
// it.
func parseCourierSizeList(b []byte) (*courierSizeList, error) {
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		return nil, fmt.Errorf("%w: no header line", errLegacyDamaged)
	}
	l := &courierSizeList{}
	h := string(b[:min(nl, courierLineMax)])
	f := strings.Fields(strings.TrimPrefix(h, "/"))
	if !strings.HasPrefix(h, "/") || len(f) < 2 {
		return nil, fmt.Errorf("%w: bad header", errLegacyDamaged)
	}
	v, err := strconv.Atoi(f[0])
	if err != nil || (v != 2 && v != 3) {
		return nil, fmt.Errorf("%w: unsupported version %q", errLegacyDamaged, f[0])
	}
	l.version = v
	if l.nextUID, err = strconv.ParseUint(f[1], 10, 64); err != nil {
		return nil, fmt.Errorf("%w: bad next uid %q", errLegacyDamaged, f[1])
	}
	if len(f) > 2 {
		l.uidValidity, _ = strconv.ParseUint(f[2], 10, 64)
	}
	l.recs = make(map[string]courierRec, bytes.Count(b, []byte{'\n'}))
	skipped := 0
	for rest := b[nl+1:]; len(rest) > 0; {
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			// Courier reads a last line without '\n' only up to EOF
			// and drops it.
			skipped++
			break
		}
		line := string(rest[:min(nl, courierLineMax)])
		rest = rest[nl+1:]
		name, r, ok := parseCourierRecord(line)
		if !ok {
			skipped++
			continue
		}
		k := courierKey(name)
		if _, dup := l.recs[k]; !dup {
			l.recs[k] = r
		}
	}
	if skipped > 0 {
		return l, fmt.Errorf("%w: %d line(s) skipped", errLegacyDamaged, skipped)
	}
	return l, nil
}

// parseCourierRecord splits "<name> <size> <uid>:<uidv>[:<utf8>]" at the
// last two spaces, as Courier does.
func parseCourierRecord(line string) (string, courierRec, bool) {
	var r courierRec
	p := strings.LastIndexByte(line, ' ')
	if p < 0 {
		return "", r, false
	}
	q := strings.LastIndexByte(line[:p], ' ')
	if q <= 0 {
		return "", r, false
	}
	name := line[:q]
	if _, err := strconv.ParseUint(line[q+1:p], 10, 64); err != nil {
		return "", r, false
	}
	ids := strings.Split(line[p+1:], ":")
	if len(ids) < 2 || len(ids) > 3 {
		return "", r, false
	}
	var err error
	if r.uid, err = strconv.ParseUint(ids[0], 10, 64); err != nil {
		return "", r, false
	}
	if r.uidValidity, err = strconv.ParseUint(ids[1], 10, 64); err != nil {
		return "", r, false
	}
	if len(ids) == 3 {
		if _, err := strconv.Atoi(ids[2]); err != nil {
			return "", r, false
		}
	}
	return name, r, true
}

// courierKey is what Courier's cmpmsgs compares: the base name, and whether
// there was a ':' at all.
func courierKey(name string) string {
	if c := strings.IndexByte(name, ':'); c >= 0 {
		return name[:c+1]
	}
	return name
}

// courierFileKey is courierKey of the name Courier gives a file: one in
// new/ gets ":2," when Courier moves it to cur/.
func courierFileKey(name string, inNewDir bool) string {
	if inNewDir && strings.IndexByte(name, ':') < 0 {
		return name + ":"
	}
	return courierKey(name)
}
