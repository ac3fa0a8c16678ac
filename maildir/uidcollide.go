package maildir

import "strconv"

// Derived unique-ids (see derivedUID) are 40 lowercase hex digits, and so is
// a unique name a file may literally have: a user who names a file after
// the id derived for another of their messages would give two messages
// one UIDL, which RFC 1939 forbids (a client would skip or delete the wrong
// one). With legacy UIDLs (uidl.go) any form can collide. So every id of
// the snapshot is made unique, by precedence:
//
//  1. a legacy UIDL (Dovecot, Courier, pop3d's record) keeps it; applyUIDLs
//     already made those unique among themselves;
//  2. a literal unique name keeps it unless it equals one of those: then
//     it is derived from "\x00legacy-clash\x00dir/name";
//  3. a derived id (an unusable name, the second of two files sharing a
//     name, a clash of 2.) that is taken is derived again from its key and
//     a counter, "key\x00k" for k = 1, 2, ... until it is free.
//
// The result depends only on the messages (and legacy files) present,
// never on the order in which a client asks, so it is the same in every
// session with the same messages.
//
// taken holds the legacy UIDLs (nil without any). Without them the check
// costs a comparison per message at login unless the Maildir holds a file
// named like a derived id, the only way to collide short of a SHA-256
// collision.
func (m *Mailbox) resolveUIDCollisions(taken map[string]int) {
	if taken == nil {
		for i := range m.msgs {
			x := &m.msgs[i]
			if x.ulen != derivedLen || x.uid >= 0 {
				continue
			}
			if u := m.uniq(x); isDerivedForm(u) {
				if taken == nil {
					taken = make(map[string]int)
				}
				taken[u] = i
			}
		}
		if taken == nil {
			return
		}
	}
	legacy := func(i int) bool {
		_, ok := m.uidls.src[i]
		return ok
	}
	var clash map[int]bool
	for i := range m.msgs {
		x := &m.msgs[i]
		if legacy(i) || x.dup {
			continue
		}
		u := m.uniq(x)
		if !uidOK(u) {
			continue
		}
		if j, ok := taken[u]; ok && j != i {
			if clash == nil {
				clash = make(map[int]bool)
			}
			clash[i] = true
			continue
		}
		taken[u] = i
	}
	for i := range m.msgs {
		x := &m.msgs[i]
		if legacy(i) {
			continue
		}
		var key string
		switch u := m.uniq(x); {
		case clash[i]:
			key = "\x00legacy-clash\x00" + subdirs[x.dir] + "/" + m.name(x)
		case x.dup:
			key = dupKey(x.dir, m.name(x))
		case uidOK(u):
			continue // literal, in taken
		case u == "":
			key = m.name(x)
		default:
			key = u
		}
		id := derivedUID(key)
		for k := 1; ; k++ {
			if _, dup := taken[id]; !dup {
				break
			}
			id = derivedUID(key + "\x00" + strconv.Itoa(k))
		}
		taken[id] = i
		if x.uid >= 0 {
			m.derived[x.uid] = id
		} else {
			x.uid = m.addID(id)
		}
	}
}

// derivedLen is the length of a derived unique-id.
const derivedLen = 40

// isDerivedForm reports whether u looks like a derived unique-id.
func isDerivedForm(u string) bool {
	if len(u) != derivedLen {
		return false
	}
	for i := 0; i < len(u); i++ {
		if c := u[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// dupKey is what the id of the second of two messages sharing a unique name
// is derived from: its directory and file name, unique in the Maildir.
func dupKey(dir uint8, name string) string {
	return "\x00dup\x00" + subdirs[dir] + "/" + name
}
