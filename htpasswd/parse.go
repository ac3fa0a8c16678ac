package htpasswd

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// Problem is one finding about a password file line, "FILE:LINE: message".
// Line is 1-based; 0 means the finding is about the whole file.
type Problem struct {
	File string
	Line int
	Msg  string
	// Warning marks a finding that does not stop anyone logging in (a
	// plain-text password that works): pop3d -check prints it but does not
	// fail on it, so a Dovecot passwd-file moves over as is.
	Warning bool
}

// String formats p as "FILE:LINE: message", the form editors and grep use.
func (p Problem) String() string {
	if p.Line == 0 {
		return p.File + ": " + p.Msg
	}
	return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
}

// entry is one user of a loaded file, as lookup returns it.
type entry struct {
	hash    string // the password field as written; "" when the line was refused
	home    string // Dovecot passwd-file home, "" when none
	extra   []Field
	line    int  // where the user's first line is
	refused bool // the user's first line was bad: the user cannot log in
}

// rec is what a table keeps per user: where the user's line starts in the
// file's text and its line number, the top bit set when the line was
// refused. Hash and home are parsed again from the line at lookup (one
// login), which keeps a million-user table at a quarter of the memory a
// map of entries costs.
type rec struct {
	off  uint32
	line uint32
}

// refusedBit marks a rec whose line was refused.
const refusedBit = 1 << 31

// MaxUserLen is the longest user name pop3d accepts at login, in bytes; a
// longer name in the password file is warned about, as it can never log in.
const MaxUserLen = 255

// maxFileSize bounds a password file (rec offsets are 32 bits): 1 GiB is
// more than ten million users.
const maxFileSize = 1 << 30

// table is an immutable parsed copy of a password file.
type table struct {
	text      string // the whole file; users' lines are found in it by rec.off
	users     map[string]rec
	extraKeys map[string]bool // the keys of every user's extra fields
	// dummy is a hash of the most common scheme and cost in the file,
	// verified for unknown users so that they take as long as known ones.
	dummy string
}

// lookup returns user's entry.
func (t *table) lookup(user string) (entry, bool) {
	r, ok := t.users[user]
	if !ok {
		return entry{}, false
	}
	e := entry{line: int(r.line &^ refusedBit), refused: r.line&refusedBit != 0}
	if e.refused {
		return e, true
	}
	text := t.text[r.off:]
	if i := strings.IndexByte(text, '\n'); i >= 0 {
		text = text[:i]
	}
	// The line parsed when the table was built; it parses the same now.
	l, _, _ := parseLine(text)
	e.hash, e.home, e.extra = l.hash, l.home, l.extra
	return e, true
}

// line is one parsed non-comment line.
type line struct {
	user  string
	hash  string
	home  string
	extra []Field
}

// parseLine parses one line without its terminating LF. It reports
// skip=true for blank and comment lines. A returned error describes a bad
// line; user is set whenever the line names one, so that the caller can
// lock that user out instead of letting a later line for it win.
func parseLine(s string) (l line, skip bool, err error) {
	s = strings.TrimSuffix(s, "\r")
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	if i == len(s) || s[i] == '#' {
		return line{}, true, nil
	}
	user, rest, ok := strings.Cut(s, ":")
	if !ok {
		return line{}, false, errors.New("no ':' between user name and password hash")
	}
	if user == "" {
		return line{}, false, errors.New("empty user name")
	}
	if err := checkUserName(user); err != nil {
		return line{}, false, err
	}
	l.user = user
	// Dovecot passwd-file: user:password:uid:gid:gecos:home:shell:extra
	hash, rest, dovecot := strings.Cut(rest, ":")
	l.hash = hash
	if dovecot {
		fields := strings.SplitN(rest, ":", 5) // uid gid gecos home shell+extra
		if len(fields) >= 4 && fields[3] != "" {
			home := fields[3]
			if !filepath.IsAbs(home) {
				return l, false, fmt.Errorf("home %q is not an absolute path", home)
			}
			l.home = filepath.Clean(home)
		}
		if len(fields) == 5 {
			// The extra fields are everything after the shell, colons
			// included (as Dovecot joins them).
			if _, extra, ok := strings.Cut(fields[4], ":"); ok {
				var err error
				if l.extra, err = ParseExtra(extra); err != nil {
					return l, false, err
				}
			}
		}
	}
	if hash == "" {
		return l, false, errors.New("empty password hash")
	}
	for i := 0; i < len(hash); i++ {
		if c := hash[i]; c < 0x20 || c == 0x7f {
			return l, false, errors.New("password field contains control characters")
		}
	}
	return l, false, nil
}

// checkUserName refuses names that cannot come from a POP3 client or that
// would corrupt the file.
func checkUserName(user string) error {
	for _, r := range user {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("user name %q contains control characters", user)
		}
	}
	return nil
}

// parse reads a whole password file. Every problem is passed to report; the
// table holds the good lines and the users locked out by bad ones.
func parse(data []byte, file string, report func(Problem)) *table {
	return parseText(string(data), file, nil, report)
}

// parseText is parse on the file's text, which the table keeps (user
// names and hashes are slices of it, not a million small strings of their
// own), with a checker for the extra fields (nil: none).
func parseText(s, file string, check ExtraChecker, report func(Problem)) *table {
	t := &table{text: s, users: make(map[string]rec, strings.Count(s, "\n")+1)}
	// Cost classes seen and their counts; files hold a handful.
	type class struct {
		name  string
		count int
	}
	var classes []class
	var best int
	off := 0
	for n := 1; off < len(s); n++ {
		start := off
		text := s[off:]
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			text, off = text[:i], off+i+1
		} else {
			off = len(s)
		}
		l, skip, err := parseLine(text)
		if skip {
			continue
		}
		if l.user != "" {
			if prev, dup := t.users[l.user]; dup {
				report(Problem{File: file, Line: n, Msg: fmt.Sprintf("duplicate user %q ignored: line %d wins", l.user, prev.line&^refusedBit)})
				continue
			}
			if len(l.user) > MaxUserLen {
				report(Problem{File: file, Line: n, Msg: fmt.Sprintf("user name of %d bytes is longer than pop3d accepts at login (%d): this user can never log in", len(l.user), MaxUserLen), Warning: true})
			}
		}
		var v verifier
		var info hashInfo
		if err == nil {
			v, info, err = parseHash(l.hash)
		}
		if err == nil && check != nil && len(l.extra) > 0 {
			var warnings []string
			warnings, err = check(l.extra)
			for _, w := range warnings {
				report(Problem{File: file, Line: n, Msg: fmt.Sprintf("user %q: %s", l.user, w), Warning: true})
			}
		}
		if err != nil {
			if l.user == "" {
				report(Problem{File: file, Line: n, Msg: err.Error()})
			} else {
				report(Problem{File: file, Line: n, Msg: fmt.Sprintf("user %q cannot log in: %v", l.user, err)})
				t.users[l.user] = rec{off: uint32(start), line: uint32(n) | refusedBit}
			}
			continue
		}
		if info.plaintext {
			report(Problem{File: file, Line: n, Msg: fmt.Sprintf("user %q has a plain-text password %s; store a hash instead (pop3d passwd)", l.user, info.scheme), Warning: true})
		}
		t.users[l.user] = rec{off: uint32(start), line: uint32(n)}
		for _, f := range l.extra {
			if t.extraKeys == nil {
				t.extraKeys = make(map[string]bool)
			}
			t.extraKeys[f.Key] = true
		}
		c, i := v.class(), 0
		for i < len(classes) && classes[i].name != c {
			i++
		}
		if i == len(classes) {
			classes = append(classes, class{name: c})
		}
		if classes[i].count++; classes[i].count > best {
			best, t.dummy = classes[i].count, l.hash
		}
	}
	if len(t.users) == 0 {
		report(Problem{File: file, Msg: "no users: nobody can log in", Warning: true})
	}
	if t.dummy == "" {
		t.dummy = fallbackDummy
	}
	return t
}

// fallbackDummy is verified for unknown users when the file has no usable
// hash to imitate: bcrypt at cost 10, what `pop3d passwd` writes.
const fallbackDummy = "$2y$10$wzWGpOtRw.BmmnMC2.1Pz.kjrocD5ij02P/ky1Ticjr1RmP1JtS.W"
