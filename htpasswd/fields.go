package htpasswd

import (
	"sort"
)

// ExtraValue returns the value of the extra field key of u's password-file
// line (see ParseExtra); a bare flag reads as "yes". The first occurrence
// wins. Dovecot's userdb_ prefix is accepted too (host= and userdb_host=
// are the same field), so that lines move over unchanged.
func (u User) ExtraValue(key string) (string, bool) {
	for _, f := range u.Extra {
		if f.Key == key || f.Key == "userdb_"+key {
			if f.Bare {
				return "yes", true
			}
			return f.Value, true
		}
	}
	return "", false
}

// Lookup returns the user named name as the file has it, without checking
// any password: for tools that answer where a user lives. A user whose
// line is unusable is not found.
func (f *File) Lookup(name string) (User, bool) {
	f.refresh()
	e, ok := f.cur.Load().t.lookup(name)
	if !ok || e.refused {
		return User{}, false
	}
	return User{Name: name, Home: e.home, Extra: e.extra}, true
}

// Users returns every usable user of the file, sorted by name.
func (f *File) Users() []User {
	f.refresh()
	t := f.cur.Load().t
	out := make([]User, 0, len(t.users))
	for name := range t.users {
		if e, _ := t.lookup(name); !e.refused {
			out = append(out, User{Name: name, Home: e.home, Extra: e.extra})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
