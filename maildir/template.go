package maildir

import (
	"fmt"
	"path/filepath"
	"strings"
)

// ExpandTemplate expands %u (the whole user name), %n (the part before the
// last '@'), %d (the part after it, empty when there is no '@') and %% in tmpl
// for user and returns the cleaned path.
//
// A user name that could escape the template's directory gives ErrBadUser:
// empty, ".", "..", containing '/', NUL or other control characters, or with
// a local part or domain that is empty (when '@' is present), "." or "..".
// As a second line of defence the result must lie strictly below the fixed
// directory the template starts with.
func ExpandTemplate(tmpl, user string) (string, error) {
	if err := checkUser(user); err != nil {
		return "", err
	}
	local, domain := user, ""
	if at := strings.LastIndexByte(user, '@'); at >= 0 {
		local, domain = user[:at], user[at+1:]
	}
	var b strings.Builder
	b.Grow(len(tmpl) + 2*len(user))
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(tmpl) {
			return "", fmt.Errorf("maildir template %q: trailing %%", tmpl)
		}
		i++
		switch tmpl[i] {
		case 'u':
			b.WriteString(user)
		case 'n':
			b.WriteString(local)
		case 'd':
			b.WriteString(domain)
		case '%':
			b.WriteByte('%')
		default:
			return "", fmt.Errorf("maildir template %q: unknown escape %%%c", tmpl, tmpl[i])
		}
	}
	p := filepath.Clean(b.String())
	if base, ok := fixedDir(tmpl); ok {
		if !strings.HasPrefix(p, base) || len(p) == len(base) || (base != "/" && p[len(base)] != '/') {
			return "", fmt.Errorf("%w: %q leaves %s", ErrBadUser, user, base)
		}
	}
	return p, nil
}

// fixedDir returns the cleaned directory part of tmpl before its first
// escape (other than %%), and false if tmpl has no user escape at all.
func fixedDir(tmpl string) (string, bool) {
	for i := 0; i < len(tmpl); i++ {
		if tmpl[i] != '%' || i+1 >= len(tmpl) {
			continue
		}
		if tmpl[i+1] == '%' {
			i++
			continue
		}
		slash := strings.LastIndexByte(tmpl[:i], '/')
		if slash < 0 {
			return "", false
		}
		d := strings.ReplaceAll(tmpl[:slash+1], "%%", "%")
		return filepath.Clean(d), true
	}
	return "", false
}

func checkUser(user string) error {
	if user == "" || user == "." || user == ".." {
		return fmt.Errorf("%w: %q", ErrBadUser, user)
	}
	for i := 0; i < len(user); i++ {
		if c := user[i]; c < 0x20 || c == 0x7f || c == '/' {
			return fmt.Errorf("%w: %q contains %q", ErrBadUser, user, c)
		}
	}
	if at := strings.LastIndexByte(user, '@'); at >= 0 {
		for _, part := range []string{user[:at], user[at+1:]} {
			if part == "" || part == "." || part == ".." {
				return fmt.Errorf("%w: %q", ErrBadUser, user)
			}
		}
	}
	return nil
}

// CheckTemplate reports a template that is not absolute, has an unknown
// %-escape or a trailing '%', control characters, or "." or ".." path
// elements (which would let an expansion leave the template's directory).
func CheckTemplate(tmpl string) error {
	if !strings.HasPrefix(tmpl, "/") {
		return fmt.Errorf("maildir template %q: not an absolute path", tmpl)
	}
	for i := 0; i < len(tmpl); i++ {
		if tmpl[i] != '%' {
			continue
		}
		if i+1 >= len(tmpl) {
			return fmt.Errorf("maildir template %q: trailing %%", tmpl)
		}
		i++
		switch tmpl[i] {
		case 'u', 'n', 'd', '%':
		default:
			return fmt.Errorf("maildir template %q: unknown escape %%%c (known: %%u %%n %%d %%%%)", tmpl, tmpl[i])
		}
	}
	for i := 0; i < len(tmpl); i++ {
		if c := tmpl[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("maildir template %q: contains control character %q", tmpl, c)
		}
	}
	for _, el := range strings.Split(tmpl, "/") {
		if el == "." || el == ".." {
			return fmt.Errorf("maildir template %q: contains a %q element", tmpl, el)
		}
	}
	return nil
}
