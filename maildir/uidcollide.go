package maildir

import "strconv"

// Derived unique-ids (see derivedUID) are 40 lowercase hex digits, and so is
// a unique name a file may literally have: a user who names a file after
// the id derived for another of their messages would give two messages
// one UIDL, which RFC 1939 forbids (a client would skip or delete the wrong
// one). resolveUIDCollisions makes every id of the snapshot unique:
//
//   - a literal unique name keeps its id (it is the message's own name);
//   - a derived id that equals a literal one, or one derived earlier in the
//     snapshot's order, is derived again from its key and a counter,
//     "key\x00k" for k = 1, 2, ... until it is free.
//
// The result depends only on the messages present, never on the order in
// which a client asks, so it is the same in every session with the same
// messages. It costs a comparison per message at login unless the Maildir
// holds a file named like a derived id, the only way to collide short of a
// SHA-256 collision.
func (m *Mailbox) resolveUIDCollisions() {
	var taken map[string]struct{}
	for i := range m.msgs {
		x := &m.msgs[i]
		if x.ulen != derivedLen || x.uid >= 0 {
			continue
		}
		if u := m.uniq(x); isDerivedForm(u) {
			if taken == nil {
				taken = make(map[string]struct{})
			}
			taken[u] = struct{}{}
		}
	}
	if taken == nil {
		return
	}
	for i := range m.msgs {
		x := &m.msgs[i]
		var key string
		switch u := m.uniq(x); {
		case x.uid >= 0:
			key = dupKey(x.dir, m.name(x))
		case uidOK(u):
			continue // literal, in taken if it can collide
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
		taken[id] = struct{}{}
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
