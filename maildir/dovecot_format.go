package maildir

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DefaultDovecotUIDLFormat is Dovecot's default pop3_uidl_format.
const DefaultDovecotUIDLFormat = "%08Xu%08Xv"

// DovecotFormat is a parsed dovecot_uidl_format: Dovecot 2.3's
// pop3_uidl_format, expanded the way Dovecot's var_expand
// (src/lib/var-expand.c) and pop3_get_uid (src/pop3/pop3-commands.c) do:
//
//	%[-][0][width]   or   %[-]offset.[0][-]width
//	modifiers L U E X R H N M D T, applied in order
//	%u uid, %v uidvalidity (decimal strings), %m header MD5, %f base file
//	name, %g GUID; %{uid} %{uidvalidity} %{md5} %{filename} %{guid}; %%
//
// Quirks kept because Dovecot has them: X prints lowercase hex of the
// decimal value; a width without a leading 0 truncates; %{uid}, %{md5},
// %{filename} and %{guid} are empty unless the short form of the same
// variable also occurs (Dovecot fetches only what its short-key scan asks
// for, and its settings check refuses %{...} in pop3_uidl_format anyway);
// a format with no %u %v %m %f %g is refused, as Dovecot does.
type DovecotFormat struct {
	src  string
	mask uint8
}

// The variables pop3_get_uid fetches (Dovecot's enum uidl_keys).
const (
	keyV uint8 = 1 << iota
	keyU
	keyM
	keyF
	keyG
)

// ErrDovecotMD5 means the format uses %m: Dovecot has the header MD5 only
// for mbox, so on a Maildir it served no UIDL from such a format (only
// P records). pop3d then takes the UIDLs from P records alone.
var ErrDovecotMD5 = errors.New("%m (header MD5) exists only for mbox in Dovecot; on a Maildir Dovecot served UIDLs from P records only")

// ParseDovecotFormat checks a dovecot_uidl_format. An error means Dovecot
// refused the format or could not expand it (so it never served UIDLs with
// it), or pop3d cannot reproduce it (%{pid}, %{hostname}, %{env:...},
// hashes, %{if;...}). The returned error for a format with %m wraps
// ErrDovecotMD5; the format is still usable for P records.
func ParseDovecotFormat(s string) (DovecotFormat, error) {
	// Dovecot's mail_storage_settings_check: every %-key (as its
	// var_get_key sees it) must be one of v u m f g %, and one of the
	// first five must occur. %{...} is refused there.
	f := DovecotFormat{src: s}
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 >= len(s) {
			continue
		}
		i++
		switch c := dovecotKey(s[i:]); c {
		case 'v':
			f.mask |= keyV
		case 'u':
			f.mask |= keyU
		case 'm':
			f.mask |= keyM
		case 'f':
			f.mask |= keyF
		case 'g':
			f.mask |= keyG
		case '%':
		case 0:
			return f, errors.New("unknown variable at the end: Dovecot refuses this pop3_uidl_format")
		default:
			return f, fmt.Errorf("unknown variable %%%c: Dovecot refuses this pop3_uidl_format", c)
		}
	}
	if f.mask == 0 {
		return f, errors.New("no %u, %v, %m, %f or %g: Dovecot refuses this pop3_uidl_format")
	}
	// A trial expansion finds unknown variables.
	if _, err := f.expand(dovecotVars{}, true); err != nil {
		return f, err
	}
	if f.mask&keyM != 0 {
		return f, ErrDovecotMD5
	}
	return f, nil
}

// dovecotKey is Dovecot's var_get_key: the variable letter after the
// offset, width and modifiers of a %-sequence ('{' for a long key, 0 at the
// end of the string).
func dovecotKey(s string) byte {
	j := 0
	for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '-') {
		j++
	}
	if j < len(s) && s[j] == '.' {
		j++
		for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '-') {
			j++
		}
	}
	for j < len(s) && strings.IndexByte(dovecotModifiers, s[j]) >= 0 {
		j++
	}
	if j >= len(s) {
		return 0
	}
	return s[j]
}

// String is the format as configured.
func (f DovecotFormat) String() string { return f.src }

// UsesMD5 reports whether the format holds %m, which Dovecot expands only
// for mbox: on a Maildir such a format gave no UIDL, so only P records of
// dovecot-uidlist carry the UIDLs Dovecot served (see ErrDovecotMD5).
func (f DovecotFormat) UsesMD5() bool { return f.mask&keyM != 0 }

// usable reports whether Dovecot could have served UIDLs from the format on
// a Maildir.
func (f DovecotFormat) usable() bool { return f.mask != 0 && f.mask&keyM == 0 }

// dovecotVars are the values of one message.
type dovecotVars struct {
	uid, uidValidity uint32
	fileName         string // base name (Dovecot's storage id)
	guid             string // G record, else the base name
}

const dovecotModifiers = "LUEXRHNMDT"

// Expand is the UIDL Dovecot served for a message with these values.
func (f DovecotFormat) Expand(uid, uidValidity uint32, baseName, guid string) (string, error) {
	if !f.usable() {
		return "", ErrDovecotMD5
	}
	return f.expand(dovecotVars{uid: uid, uidValidity: uidValidity, fileName: baseName, guid: guid}, false)
}

// expand is var_expand with pop3_get_uid's table. check only looks for
// errors.
func (f DovecotFormat) expand(v dovecotVars, check bool) (string, error) {
	// pop3_get_uid fills only what the short-key scan asked for.
	uidStr, file, guid := "", "", ""
	if f.mask&keyU != 0 {
		uidStr = strconv.FormatUint(uint64(v.uid), 10)
	}
	if f.mask&keyF != 0 {
		file = v.fileName
	}
	if f.mask&keyG != 0 {
		guid = v.guid
		if guid == "" {
			guid = v.fileName
		}
	}
	short := func(c byte) (string, bool) {
		switch c {
		case 'v':
			return strconv.FormatUint(uint64(v.uidValidity), 10), true
		case 'u':
			return uidStr, true
		case 'm':
			return "", true // never reached on a Maildir: see ErrDovecotMD5
		case 'f':
			return file, true
		case 'g':
			return guid, true
		case '%':
			return "%", true
		}
		return "", false
	}
	long := func(k string) (string, bool) {
		switch k {
		case "uidvalidity":
			return strconv.FormatUint(uint64(v.uidValidity), 10), true
		case "uid":
			return uidStr, true
		case "md5":
			return "", true
		case "filename":
			return file, true
		case "guid":
			return guid, true
		}
		return "", false
	}

	s := f.src
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			out.WriteByte(s[i])
			continue
		}
		i++
		offset, width, zero, sign := 0, 0, false, 1
		if i < len(s) && s[i] == '-' {
			sign = -1
			i++
		}
		if i < len(s) && s[i] == '0' {
			zero = true
			i++
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			width = clampWidth(width*10 + int(s[i]-'0'))
			i++
		}
		if i < len(s) && s[i] == '.' {
			offset = sign * width
			sign = 1
			width = 0
			i++
			zero = false
			if i < len(s) && s[i] == '0' {
				zero = true
				i++
			}
			if i < len(s) && s[i] == '-' {
				sign = -1
				i++
			}
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				width = clampWidth(width*10 + int(s[i]-'0'))
				i++
			}
			width *= sign
		}
		var mods []byte
		for len(mods) < 10 && i < len(s) && strings.IndexByte(dovecotModifiers, s[i]) >= 0 {
			mods = append(mods, s[i])
			i++
		}
		if i >= len(s) {
			break
		}
		var val string
		var ok bool
		if s[i] == '{' && strings.IndexByte(s[i:], '}') >= 0 {
			end, depth, esc := i, 1, false
			for end++; end < len(s) && depth > 0; end++ {
				switch {
				case esc:
					esc = false
				case s[end] == '\\':
					esc = true
				case s[end] == '{':
					depth++
				case s[end] == '}':
					depth--
				}
			}
			if depth == 0 {
				end--
			}
			key := s[i+1 : end]
			val, ok = long(key)
			if !ok {
				return "", fmt.Errorf("variable %%{%s} is not one pop3d can reproduce (uid, uidvalidity, md5, filename, guid)", key)
			}
			i = end
		} else {
			val, ok = short(s[i])
			if !ok {
				return "", fmt.Errorf("unknown variable '%%%c': Dovecot could not expand this pop3_uidl_format", s[i])
			}
		}
		if check {
			continue
		}
		w := width
		for _, m := range mods {
			val = applyModifier(m, val, &offset, &w)
		}
		out.WriteString(cutPad(val, offset, w, zero))
	}
	return out.String(), nil
}

// clampWidth keeps a silly width from growing without bound (Dovecot's int
// would overflow; no sane format comes near).
func clampWidth(w int) int { return min(w, 1<<16) }

// cutPad applies offset and width as var_expand does.
func cutPad(val string, offset, width int, zero bool) string {
	if offset < 0 {
		if len(val) > -offset {
			val = val[len(val)+offset:]
		}
	} else {
		val = val[min(offset, len(val)):]
	}
	switch {
	case width == 0:
		return val
	case !zero:
		if width < 0 {
			width = len(val) + width
		}
		if width < 0 {
			// Dovecot's str_append_max with a negative size_t: no limit.
			return val
		}
		return val[:min(width, len(val))]
	default:
		// "%05d-like padding, no truncation."
		if len(val) < width {
			return strings.Repeat("0", width-len(val)) + val
		}
		return val
	}
}

// applyModifier is one of Dovecot's modifiers. H and N use and clear the
// width (as a modulus) and the offset (as a minimum length).
func applyModifier(m byte, s string, offset, width *int) string {
	switch m {
	case 'L':
		return asciiLower(s)
	case 'U':
		return asciiUpper(s)
	case 'E':
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			if s[i] == '"' || s[i] == '\\' || s[i] == '\'' {
				b.WriteByte('\\')
			}
			b.WriteByte(s[i])
		}
		return b.String()
	case 'X':
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || s == "" || s[0] < '0' || s[0] > '9' {
			n = 0
		}
		return strconv.FormatUint(n, 16)
	case 'R':
		b := []byte(s)
		for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
			b[i], b[j] = b[j], b[i]
		}
		return string(b)
	case 'H':
		var h uint32
		for i := 0; i < len(s); i++ {
			h = h<<4 + uint32(s[i])
			if g := h & 0xf0000000; g != 0 {
				h ^= g >> 24
				h ^= g
			}
		}
		if *width != 0 {
			h %= uint32(*width)
			*width = 0
		}
		return padHash(strconv.FormatUint(uint64(h), 16), offset)
	case 'N':
		sum := md5.Sum([]byte(s))
		var v uint64
		for _, c := range sum[:8] {
			v = v<<8 | uint64(c)
		}
		if *width != 0 {
			v %= uint64(int64(*width))
			*width = 0
		}
		return padHash(strconv.FormatUint(uint64(uint32(v)), 16), offset)
	case 'M':
		sum := md5.Sum([]byte(s))
		return hex.EncodeToString(sum[:])
	case 'D':
		return strings.ReplaceAll(s, ".", ",dc=")
	case 'T':
		return strings.TrimRight(s, " \t\n\v\f\r") // C isspace
	}
	return s
}

func padHash(h string, offset *int) string {
	if len(h) < *offset {
		h = strings.Repeat("0", *offset-len(h)) + h
	}
	*offset = 0
	return h
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
