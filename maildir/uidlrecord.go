package maildir

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// The UIDL record, pop3d-uidl at the top of the Maildir, holds every UIDL
// pop3d served that is not its own name-derived one (legacy UIDLs, and its
// own ones moved aside from a legacy one), so that they stay after the old
// server's files are removed or rewritten:
//
//	"pop3d-uidl 1\n"
//	<unique name> <source> <uidl>\n   (fields %XX-escaped)
//
// It is written whole (temporary file, fsync, rename), so a reader sees
// the old or the new file. A damaged line is skipped and the rest used;
// the record is then rewritten from what the snapshot found.
const (
	uidlRecordName  = "pop3d-uidl"
	uidlRecordTmp   = "pop3d-uidl.tmp"
	uidlRecordMagic = "pop3d-uidl 1\n"
)

// recordedUIDL is one entry.
type recordedUIDL struct {
	uidl, src string
}

// errRecordDamaged marks a record read only in part.
var errRecordDamaged = errors.New("damaged")

// readUIDLRecord reads the record of the Maildir open as rootfd. A missing
// file gives unix.ENOENT.
func readUIDLRecord(rootfd int) (map[string]recordedUIDL, error) {
	b, err := readSmallFile(rootfd, uidlRecordName, maxLegacyFile)
	if err != nil {
		return nil, err
	}
	return parseUIDLRecord(b)
}

// parseUIDLRecord reads a record; with an error, the map holds the lines
// that were sound.
func parseUIDLRecord(b []byte) (map[string]recordedUIDL, error) {
	if !bytes.HasPrefix(b, []byte(uidlRecordMagic)) {
		return nil, fmt.Errorf("%w: bad header", errRecordDamaged)
	}
	out := make(map[string]recordedUIDL)
	bad := 0
	for rest := b[len(uidlRecordMagic):]; len(rest) > 0; {
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			bad++
			break
		}
		f := strings.Split(string(rest[:nl]), " ")
		rest = rest[nl+1:]
		if len(f) != 3 {
			bad++
			continue
		}
		name, e1 := unescapeField(f[0])
		src, e2 := unescapeField(f[1])
		uidl, e3 := unescapeField(f[2])
		if e1 != nil || e2 != nil || e3 != nil || name == "" || uidl == "" || !knownSrc(src) {
			bad++
			continue
		}
		out[name] = recordedUIDL{uidl: uidl, src: src}
	}
	if bad > 0 {
		return out, fmt.Errorf("%w: %d bad line(s)", errRecordDamaged, bad)
	}
	return out, nil
}

func knownSrc(s string) bool {
	return s == SrcDovecotP || s == SrcDovecotFormat || s == SrcCourier || s == SrcPOP3d
}

// formatUIDLRecord is the file for the entries.
func formatUIDLRecord(ents map[string]recordedUIDL) []byte {
	var b bytes.Buffer
	b.WriteString(uidlRecordMagic)
	for _, name := range sortedKeys(ents) {
		e := ents[name]
		b.WriteString(escapeField(name))
		b.WriteByte(' ')
		b.WriteString(escapeField(e.src))
		b.WriteByte(' ')
		b.WriteString(escapeField(e.uidl))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func sortedKeys(m map[string]recordedUIDL) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// escapeField writes bytes outside 0x21..0x7E and '%' as %XX.
func escapeField(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c >= 0x7f || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func unescapeField(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", errors.New("bad escape")
		}
		var c byte
		for _, h := range []byte(s[i+1 : i+3]) {
			switch {
			case h >= '0' && h <= '9':
				c = c<<4 | (h - '0')
			case h >= 'A' && h <= 'F':
				c = c<<4 | (h - 'A' + 10)
			default:
				return "", errors.New("bad escape")
			}
		}
		b.WriteByte(c)
		i += 2
	}
	return b.String(), nil
}

// saveUIDLRecord writes the record for this snapshot when it differs from
// old (or old was damaged). Failing is logged: the legacy files still give
// the same UIDLs while they exist.
func (m *Mailbox) saveUIDLRecord(rootfd int, old map[string]recordedUIDL, damaged bool) {
	ents := make(map[string]recordedUIDL, len(m.uidls.src))
	for i, src := range m.uidls.src {
		ents[m.uniq(&m.msgs[i])] = recordedUIDL{uidl: m.UID(i), src: src}
	}
	if !damaged && sameRecord(ents, old) {
		return
	}
	if len(ents) == 0 && old == nil && !damaged {
		return
	}
	if err := writeFileAt(rootfd, uidlRecordTmp, uidlRecordName, formatUIDLRecord(ents)); err != nil {
		m.log.Warn("UIDL record not saved", "file", uidlRecordName, "err", err)
	}
}

// writeFileAt replaces name in the directory open as dirfd atomically and
// durably: see replaceFileAt.
func writeFileAt(dirfd int, tmp, name string, data []byte) error {
	return replaceFileAt(dirfd, tmp, name, data, true)
}

// replaceFileAt replaces name in the directory open as dirfd atomically: a
// temporary file tmp (created without following a symlink, never through a
// FIFO), fsync when sync is set, rename. Records that carry their own
// checksum and validity skip the fsync. Callers hold the mailbox lock, so
// tmp is theirs.
func replaceFileAt(dirfd int, tmp, name string, data []byte, sync bool) error {
	return replaceFileWith(dirfd, tmp, name, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}, sync)
}

// replaceFileWith is replaceFileAt for contents that write writes.
func replaceFileWith(dirfd int, tmp, name string, write func(io.Writer) error, sync bool) error {
	// A leftover of a crash, or something planted: never written through.
	_ = unix.Unlinkat(dirfd, tmp, 0)
	fd, err := openatRetry(dirfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	err = write(fdWriter(fd))
	if err == nil && sync {
		err = unix.Fsync(fd)
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(dirfd, tmp, dirfd, name)
	}
	if err != nil {
		_ = unix.Unlinkat(dirfd, tmp, 0)
	}
	return err
}

// fdWriter writes to a file descriptor, all of p or an error, retrying on
// EINTR.
type fdWriter int

func (f fdWriter) Write(p []byte) (int, error) {
	total := 0
	for total < len(p) {
		n, err := unix.Write(int(f), p[total:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

func sameRecord(a, b map[string]recordedUIDL) bool {
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
