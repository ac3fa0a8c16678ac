package maildir

import (
	"errors"
	"io"
	"strings"

	"golang.org/x/sys/unix"
)

// listMessages lists new/ and then cur/ (of sizes bytes, dirSize) into
// one arena of names (m.names) and returns their messages, unordered, and
// the arena's capacity. What the directory entries tell is used; only
// names without a delivery time and filesystems without d_type cost a
// stat.
func (m *Mailbox) listMessages(sizes [2]int64) ([]message, int, error) {
	fds := m.fds
	hint := snapshotHint(sizes[0] + sizes[1])
	var arena strings.Builder
	arena.Grow(int(max(hint, 4<<10)))
	msgs := make([]message, 0, hint/64+16)
	for d, fd := range fds {
		err := readDir(fd, sizes[d], &arena, func(ino uint64, typ uint8, off, nlen int) {
			// The builder was grown ahead: String does not copy.
			name := arena.String()[off : off+nlen]
			if typ != unix.DT_REG && typ != unix.DT_UNKNOWN {
				m.log.Debug("not a regular file, ignored", "file", subdirs[d]+"/"+name)
				return
			}
			ni := parseName(name)
			x := message{ino: ino, off: uint32(off), nlen: uint16(nlen), ulen: uint16(ni.uniqLen), uid: -1,
				dir: uint8(d), ts: ni.ts, hasTS: ni.hasTS, h: nameHash(name[:ni.uniqLen])}
			if !ni.hasTS || typ == unix.DT_UNKNOWN {
				// The only stats of a snapshot: names without a delivery
				// time (ordered by mtime) and filesystems without d_type.
				var st unix.Stat_t
				if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
					if !errors.Is(err, unix.ENOENT) {
						m.log.Warn("cannot stat message, ignored", "file", subdirs[d]+"/"+name, "err", err)
					}
					return
				}
				if st.Mode&unix.S_IFMT != unix.S_IFREG {
					return
				}
				if !ni.hasTS {
					x.ts = st.Mtim.Sec
				}
				x.dsize, x.mtime = st.Size, st.Mtim.Nano()
			}
			if ni.hasW {
				x.size, x.src = ni.wsize, srcW
			}
			msgs = append(msgs, x)
		})
		if err != nil {
			return nil, 0, wrapPath(m.dir, subdirs[d], err)
		}
		m.hook("listed-" + subdirs[d])
	}
	m.names = arena.String()
	return msgs, arena.Cap(), nil
}

// snapshotHint is the capacity hint, in bytes of names, for directories
// of dirSizes bytes in all. It is capped (about 8 MiB, enough for 100k
// messages) because an ext4 directory never shrinks: one that once held
// a million entries would otherwise make every login allocate 64 MiB of
// names and as much of messages. A larger mailbox grows by appending.
func snapshotHint(dirSizes int64) int64 {
	return min(max(dirSizes, 0), maxHint)
}

const maxHint = 8 << 20

// listing is where every file in new/ and cur/ is now, by unique name and
// inode: two messages may share a unique name (a broken delivery), and each
// must be found again.
type listing map[listKey]location

type listKey struct {
	u   string
	ino uint64
}

// find returns the place of the file with unique name u and inode ino.
func (l listing) find(u string, ino uint64) (location, bool) {
	p, ok := l[listKey{u, ino}]
	return p, ok
}

// listAll lists new/ and cur/ afresh.
func (m *Mailbox) listAll(fds [2]int) listing {
	l := make(listing)
	for d, fd := range fds {
		// The descriptors from login were listed before (the snapshot, or
		// an earlier relisting): start from the beginning.
		if _, err := unix.Seek(fd, 0, io.SeekStart); err != nil {
			m.log.Warn("cannot list directory", "dir", subdirs[d], "err", err)
			continue
		}
		var arena strings.Builder
		err := readDir(fd, dirSize(fd), &arena, func(ino uint64, _ uint8, off, nlen int) {
			n := arena.String()[off : off+nlen]
			l[listKey{n[:parseName(n).uniqLen], ino}] = location{dir: uint8(d), name: n}
		})
		if err != nil {
			m.log.Warn("cannot list directory", "dir", subdirs[d], "err", err)
		}
	}
	return l
}

// wrapPath adds the Maildir and subdirectory to err, keeping it matchable.
func wrapPath(dir, sub string, err error) error {
	return &pathError{dir: dir, sub: sub, err: err}
}

type pathError struct {
	dir, sub string
	err      error
}

func (e *pathError) Error() string { return "maildir " + e.dir + ": " + e.sub + "/: " + e.err.Error() }

func (e *pathError) Unwrap() error { return e.err }
