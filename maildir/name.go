package maildir

import (
	"slices"
	"strconv"
	"strings"

	gomaildir "github.com/emersion/go-maildir"
)

// nameInfo is what a Maildir file name tells about its message.
//
// A name is "unique[:info]". Only ':' is taken as the info separator: ';' or
// '!' are used by mbsync (InfoDelimiter) and others on filesystems without
// ':' (Windows), which a Linux Maildir served by this daemon is not; a ';'
// simply stays part of the unique name, which keeps the id stable anyway.
type nameInfo struct {
	uniqLen int    // the unique name is name[:uniqLen]
	ts      int64  // delivery time in seconds from the name, when hasTS
	hasTS   bool   // the unique name starts with digits followed by '.'
	wsize   int64  // Dovecot's ,W=<n> (wire size), when hasW
	hasW    bool   //
	flags   string // the flags after ":2,", when hasInfo2
	info2   bool   // the name has a ":2," info part
}

// parseName splits a file name as written by qmail, Postfix, Dovecot,
// Courier, procmail, maildrop and others. It never fails: anything odd just
// yields less information.
func parseName(name string) nameInfo {
	var ni nameInfo
	ni.uniqLen = len(name)
	if c := strings.IndexByte(name, ':'); c >= 0 {
		ni.uniqLen = c
		if strings.HasPrefix(name[c:], ":2,") {
			ni.info2 = true
			ni.flags = name[c+3:]
		}
	}
	uniq := name[:ni.uniqLen]
	// The delivery time: qmail's convention, followed by everyone.
	d := 0
	for d < len(uniq) && d < 18 && uniq[d] >= '0' && uniq[d] <= '9' {
		d++
	}
	if d > 0 && d < len(uniq) && uniq[d] == '.' {
		ni.ts, _ = strconv.ParseInt(uniq[:d], 10, 64)
		ni.hasTS = true
	}
	// Dovecot appends ",S=<size>,W=<vsize>" to the unique name. ,S= is not
	// trusted for anything (maildrop 2.9.3 writes it one short for a
	// message without a final newline); ,W= is the CRLF size.
	for rest := uniq; ; {
		k := strings.Index(rest, ",W=")
		if k < 0 {
			break
		}
		rest = rest[k+3:]
		e := 0
		for e < len(rest) && e < 18 && rest[e] >= '0' && rest[e] <= '9' {
			e++
		}
		if e > 0 && (e == len(rest) || rest[e] == ',') {
			ni.wsize, _ = strconv.ParseInt(rest[:e], 10, 64)
			ni.hasW = true
		}
	}
	return ni
}

// seenName returns the name a message gets in cur/ once seen: the unique
// name with a ":2," info holding the old flags plus S, in ASCII order as
// the Maildir spec asks. ok is false for a name whose info is not ":2,"
// (an experimental ":1," info), which is left alone.
func seenName(name string, ni nameInfo) (string, bool) {
	if ni.uniqLen < len(name) && !ni.info2 {
		return "", false
	}
	seen := byte(gomaildir.FlagSeen)
	if strings.IndexByte(ni.flags, seen) >= 0 {
		return name, true
	}
	fl := []byte(ni.flags + string(seen))
	slices.Sort(fl)
	fl = slices.Compact(fl)
	return name[:ni.uniqLen] + ":2," + string(fl), true
}
