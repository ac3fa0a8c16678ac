package maildir

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// skewed is a listing clock 10 s ahead of the filesystem's: a record taken
// with it counts as taken clearly after every change made so far, so the
// tests need not wait out racyMargin, and a change made after the record
// gets a timestamp older than the record's time, exactly the case the
// stamps (not the clock) must catch.
func skewed() time.Time { return time.Now().Add(10 * time.Second) }

// onDisk is the set of unique names of the files in new/ and cur/ now.
func onDisk(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, sub := range subdirs {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			out = append(out, sub+"/"+e.Name())
		}
	}
	slices.Sort(out)
	return out
}

// inSnapshot is the same set as the mailbox's snapshot has it.
func inSnapshot(mb *Mailbox) []string {
	var out []string
	for i := range mb.Len() {
		out = append(out, mb.File(i))
	}
	slices.Sort(out)
	return out
}

// stampOf is the mtime of a directory, to set it back after a change
// (utimensat; the ctime still moves: no program can set it).
func stampOf(t *testing.T, p string) unix.Timespec {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Mtim
}

func setMtime(t *testing.T, p string, ts unix.Timespec) {
	t.Helper()
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, 0); err != nil {
		t.Fatal(err)
	}
}

// raceAction is a change another program makes to the Maildir.
type raceAction struct {
	name string
	do   func(t *testing.T, dir string, n int) // n: a counter for fresh names
}

var raceActions = []raceAction{
	{"deliver to new", func(t *testing.T, dir string, n int) {
		put(t, dir, "new", fmt.Sprintf("%d.race%d.host", 1_700_000_100+n, n), "Subject: race\n\nbody\n")
	}},
	{"deliver to new in the same mtime", func(t *testing.T, dir string, n int) {
		old := stampOf(t, filepath.Join(dir, "new"))
		put(t, dir, "new", fmt.Sprintf("%d.tick%d.host", 1_700_000_100+n, n), "Subject: tick\n\nbody\n")
		setMtime(t, filepath.Join(dir, "new"), old)
	}},
	{"deliver to cur in the same mtime", func(t *testing.T, dir string, n int) {
		old := stampOf(t, filepath.Join(dir, "cur"))
		put(t, dir, "cur", fmt.Sprintf("%d.cur%d.host:2,", 1_700_000_100+n, n), "Subject: cur\n\nbody\n")
		setMtime(t, filepath.Join(dir, "cur"), old)
	}},
	{"another reader moves new to cur in the same mtimes", func(t *testing.T, dir string, _ int) {
		ents, _ := os.ReadDir(filepath.Join(dir, "new"))
		if len(ents) == 0 {
			return
		}
		on, oc := stampOf(t, filepath.Join(dir, "new")), stampOf(t, filepath.Join(dir, "cur"))
		name := ents[0].Name()
		if err := os.Rename(filepath.Join(dir, "new", name), filepath.Join(dir, "cur", name+":2,S")); err != nil {
			t.Fatal(err)
		}
		setMtime(t, filepath.Join(dir, "new"), on)
		setMtime(t, filepath.Join(dir, "cur"), oc)
	}},
	{"another reader deletes in the same mtime", func(t *testing.T, dir string, _ int) {
		for _, sub := range subdirs {
			ents, _ := os.ReadDir(filepath.Join(dir, sub))
			if len(ents) > 0 {
				old := stampOf(t, filepath.Join(dir, sub))
				if err := os.Remove(filepath.Join(dir, sub, ents[0].Name())); err != nil {
					t.Fatal(err)
				}
				setMtime(t, filepath.Join(dir, sub), old)
				return
			}
		}
	}},
}

// TestListingRaces: a change by another program at every point of a login
// (before the stamps, between the two directories, after the record is
// written, during the session, after it, while pop3d is stopped), some with
// the directory's mtime set back to what it was (a change in the same
// timestamp tick). The next login must see exactly the files on disk, and a
// login after it with nothing changed must come from the record (so the
// fast path is what is being tested). Lazy logins (the daemon's: the
// record's header at login, its body when a message is needed) as well
// as whole ones.
func TestListingRaces(t *testing.T) {
	points := []string{"stamped", "listed-new", "listed-cur", "saved", "session", "closed", "stopped"}
	for _, lazy := range []bool{false, true} {
		for _, a := range raceActions {
			for _, p := range points {
				t.Run(fmt.Sprintf("lazy=%v/%s/%s", lazy, a.name, p), func(t *testing.T) {
					dir := newMaildir(t)
					for i := range 3 {
						put(t, dir, "new", fmt.Sprintf("%d.m%d.host", 1_700_000_000+i, i), fmt.Sprintf("Subject: %d\n\nbody\n", i))
					}
					put(t, dir, "cur", "1700000050.c.host:2,S", "Subject: seen\n\nold\n")
					n := 0
					fired := false
					act := func(point string) {
						if point == p && !fired {
							fired = true
							n++
							a.do(t, dir, n)
						}
					}
					opts := Options{Lazy: lazy, testNow: skewed, testListingAll: true, testHook: act}
					// A first login writes a record; the second uses it, and
					// the change happens during or around it; then logins
					// without changes.
					mb := openMB(t, dir, Options{Lazy: lazy, testNow: skewed, testListingAll: true})
					mb.Close()
					mb = openMB(t, dir, opts)
					if !mb.fromListing && !fired {
						t.Fatal("second login did not use the record")
					}
					act("session")
					mb.Close()
					act("closed")
					act("stopped")
					if !fired {
						// The hooks of a listing login: start from no record.
						if err := os.Remove(filepath.Join(dir, listingName)); err != nil {
							t.Fatal(err)
						}
						mb = openMB(t, dir, opts)
						mb.Close()
					}
					if !fired {
						t.Fatalf("point %s never reached", p)
					}
					mb = openMB(t, dir, Options{Lazy: lazy, testNow: skewed, testListingAll: true})
					if got, want := inSnapshot(mb), onDisk(t, dir); !slices.Equal(got, want) {
						t.Fatalf("after %s at %s: snapshot\n%q\nwant\n%q", a.name, p, got, want)
					}
					if mb.fromListing {
						t.Error("the login after the change used a record")
					}
					mb.Close()
					mb = openMB(t, dir, Options{Lazy: lazy, testNow: skewed, testListingAll: true})
					defer mb.Close()
					if !mb.fromListing {
						t.Error("a login after no change did not use the record")
					}
					if got, want := inSnapshot(mb), onDisk(t, dir); !slices.Equal(got, want) {
						t.Fatalf("from the record: snapshot\n%q\nwant\n%q", got, want)
					}
				})
			}
		}
	}
}

// TestListingSameTick forges the one case the stamps cannot show: a
// delivery in the same tick as the recorded mtime and ctime (the record's
// stamps are set to the directory's stamps after the delivery). A record
// taken within racyMargin of those stamps must not be trusted; the control,
// a record claiming to be taken well after them, is (and misses the
// message), which shows the rule is what protects the first.
func TestListingSameTick(t *testing.T) {
	for _, tc := range []struct {
		name    string
		after   time.Duration // record time after the newest stamp
		missing bool
	}{
		{"record in the same tick", 0, false},
		{"record within the margin", racyMargin - time.Millisecond, false},
		{"control: record clearly after", racyMargin + time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := newMaildir(t)
			put(t, dir, "new", "1700000000.a.host", "Subject: a\n\n")
			mb := openMB(t, dir, Options{testNow: skewed, testListingAll: true})
			mb.Close()
			b, err := os.ReadFile(filepath.Join(dir, listingName))
			if err != nil {
				t.Fatal(err)
			}
			put(t, dir, "new", "1700000001.b.host", "Subject: b\n\n")
			rec, err := decodeListing(b)
			if err != nil {
				t.Fatal(err)
			}
			fds := [2]int{dirFD(t, filepath.Join(dir, "new")), dirFD(t, filepath.Join(dir, "cur"))}
			cur, local, ok := statDirs(fds)
			if !ok || !local {
				t.Fatalf("statDirs: ok %v local %v", ok, local)
			}
			newest := int64(0)
			for _, d := range cur {
				newest = max(newest, d.mtime, d.ctime)
			}
			m := &Mailbox{names: rec.names, msgs: rec.msgs, derived: rec.derived, alias: rec.alias}
			forged := m.encodeListing(listStamp{at: newest + int64(tc.after), dirs: cur})
			if err := os.WriteFile(filepath.Join(dir, listingName), forged, 0o600); err != nil {
				t.Fatal(err)
			}
			// The clock is at the record's time plus a little: a login
			// right after it.
			at := time.Unix(0, newest+int64(tc.after)+int64(time.Millisecond))
			mb = openMB(t, dir, Options{testNow: func() time.Time { return at }, testListingAll: true})
			defer mb.Close()
			got := inSnapshot(mb)
			if missing := len(got) == 1; missing != tc.missing {
				t.Fatalf("snapshot %q, missing the same-tick delivery: %v, want %v", got, missing, tc.missing)
			}
		})
	}
}

func TestListingFresh(t *testing.T) {
	const s = int64(time.Second)
	d := dirStamp{dev: 1, ino: 2, mtime: 100 * s, ctime: 100 * s}
	rec := listStamp{at: 103 * s, dirs: [2]dirStamp{d, d}}
	other := func(f func(*dirStamp)) [2]dirStamp { x := d; f(&x); return [2]dirStamp{d, x} }
	tests := []struct {
		name string
		rec  listStamp
		cur  [2]dirStamp
		now  int64
		want bool
	}{
		{"unchanged", rec, rec.dirs, 200 * s, true},
		{"mtime", rec, other(func(x *dirStamp) { x.mtime++ }), 200 * s, false},
		{"ctime", rec, other(func(x *dirStamp) { x.ctime++ }), 200 * s, false},
		{"inode", rec, other(func(x *dirStamp) { x.ino++ }), 200 * s, false},
		{"device", rec, other(func(x *dirStamp) { x.dev++ }), 200 * s, false},
		{"racy mtime", listStamp{at: 101 * s, dirs: rec.dirs}, rec.dirs, 200 * s, false},
		{"exactly the margin", listStamp{at: 100*s + int64(racyMargin), dirs: rec.dirs}, rec.dirs, 200 * s, false},
		{"just past the margin", listStamp{at: 100*s + int64(racyMargin) + 1, dirs: rec.dirs}, rec.dirs, 200 * s, true},
		{"racy ctime only", listStamp{at: 103 * s, dirs: [2]dirStamp{d, {dev: 1, ino: 2, mtime: 50 * s, ctime: 102 * s}}},
			[2]dirStamp{d, {dev: 1, ino: 2, mtime: 50 * s, ctime: 102 * s}}, 200 * s, false},
		{"clock went back", rec, rec.dirs, 102 * s, false},
	}
	for _, tc := range tests {
		if got := listingFresh(tc.rec, tc.cur, tc.now); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestLocalFS: the record is used on the local filesystems only; the test's
// own directories (ext4 or tmpfs here) are among them.
func TestLocalFS(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  int64
		want bool
	}{
		{"ext4", unix.EXT4_SUPER_MAGIC, true},
		{"xfs", unix.XFS_SUPER_MAGIC, true},
		{"btrfs", unix.BTRFS_SUPER_MAGIC, true},
		{"tmpfs", unix.TMPFS_MAGIC, true},
		{"nfs", unix.NFS_SUPER_MAGIC, false},
		{"fuse", unix.FUSE_SUPER_MAGIC, false},
		{"overlayfs", unix.OVERLAYFS_SUPER_MAGIC, false},
		{"cifs", 0xFF534D42, false},
		{"unknown", 0x12345678, false},
	} {
		if got := localFS(tc.typ); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(t.TempDir(), &st); err != nil {
		t.Fatal(err)
	}
	if !localFS(int64(st.Type)) {
		t.Logf("the test directory's filesystem (0x%x) is not local: TestListingRaces checks the fast path there", st.Type)
	}
}

// TestListingDropped: a session that changes the Maildir or learns a wrong
// size removes the record; the next login lists.
func TestListingDropped(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(t *testing.T, mb *Mailbox)
	}{
		{"commit with a deletion", func(t *testing.T, mb *Mailbox) {
			if err := mb.Commit(context.Background(), []int{0}, nil); err != nil {
				t.Fatal(err)
			}
		}},
		{"commit marking read", func(t *testing.T, mb *Mailbox) {
			if err := mb.Commit(context.Background(), nil, []int{1}); err != nil {
				t.Fatal(err)
			}
		}},
		{"corrected size", func(t *testing.T, mb *Mailbox) {
			mb.CorrectSize(0, mb.Size(0)+2)
			mb.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := newMaildir(t)
			put(t, dir, "new", "1700000000.a.host", "Subject: a\n\n")
			put(t, dir, "new", "1700000001.b.host", "Subject: b\n\n")
			opts := Options{testNow: skewed, testListingAll: true, MarkRead: true}
			openMB(t, dir, opts).Close()
			mb := openMB(t, dir, opts)
			if !mb.fromListing {
				t.Fatal("record not used")
			}
			tc.end(t, mb)
			if _, err := os.Stat(filepath.Join(dir, listingName)); !os.IsNotExist(err) {
				t.Fatalf("record still there: %v", err)
			}
			mb = openMB(t, dir, opts)
			defer mb.Close()
			if mb.fromListing {
				t.Error("login after the change used a record")
			}
			if got, want := inSnapshot(mb), onDisk(t, dir); !slices.Equal(got, want) {
				t.Fatalf("snapshot %q, want %q", got, want)
			}
		})
	}
}

// TestListingForged: records the Maildir's owner could write that no
// snapshot makes are ignored (the directories are listed), never used to
// reach a file outside new/ and cur/.
func TestListingForged(t *testing.T) {
	dir := newMaildir(t)
	put(t, dir, "new", "1700000000.a.host", "Subject: a\n\n")
	openMB(t, dir, Options{testNow: skewed, testListingAll: true}).Close()
	good, err := os.ReadFile(filepath.Join(dir, listingName))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := decodeListing(good)
	if err != nil {
		t.Fatal(err)
	}
	forge := func(f func(m *Mailbox)) []byte {
		m := &Mailbox{names: rec.names, msgs: slices.Clone(rec.msgs), derived: rec.derived, alias: rec.alias}
		f(m)
		return m.encodeListing(rec.stamp)
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"name with a slash", forge(func(m *Mailbox) {
			m.names = "../../../etc/passwd"
			m.msgs[0].off, m.msgs[0].nlen, m.msgs[0].ulen = 0, uint16(len(m.names)), 5
		})},
		{"dot name", forge(func(m *Mailbox) { m.names = ".."; m.msgs[0].off, m.msgs[0].nlen, m.msgs[0].ulen = 0, 2, 2 })},
		{"name past the names", patch(good, listingHeader+53, 0xea)},
		{"unique id injecting a line", forge(func(m *Mailbox) { m.derived = []string{"x\r\n+OK"}; m.msgs[0].uid = 0 })},
		{"id index out of range", forge(func(m *Mailbox) { m.msgs[0].uid = 7 })},
		{"implausible size", forge(func(m *Mailbox) { m.msgs[0].size = 1 << 40 })},
		{"bad directory", forge(func(m *Mailbox) { m.msgs[0].dir = 2 })},
		{"size from nowhere", forge(func(m *Mailbox) { m.msgs[0].src = srcStale })},
		{"a bool that is 2", patch(good, listingHeader+62, 2)},
		{"dup flag 0xff", patch(good, listingHeader+63, 0xff)},
		{"message count past the end", patch(good, listingHeader-16+3, 1)},
		{"version 1", patch(good, len(listingMagic)-2, '1')},
		{"bad checksum", append(slices.Clone(good[:len(good)-1]), good[len(good)-1]^1)},
		{"truncated", good[:len(good)-9]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, listingName), tc.b, 0o600); err != nil {
				t.Fatal(err)
			}
			mb := openMB(t, dir, Options{testNow: skewed, testListingAll: true})
			defer mb.Close()
			if mb.fromListing {
				t.Fatal("forged record used")
			}
			if got := inSnapshot(mb); !slices.Equal(got, []string{"new/1700000000.a.host"}) || !strings.HasPrefix(mb.UID(0), "1700000000") {
				t.Fatalf("snapshot %q uid %q", got, mb.UID(0))
			}
		})
	}
}

// patch returns the record b with byte i set to v, its checksum made good
// again: a forgery, not damage.
func patch(b []byte, i int, v byte) []byte {
	b = slices.Clone(b)
	b[i] = v
	b = b[:len(b)-4]
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// FuzzDecodeListing: any bytes decode to an error or to a record whose
// every name is a plain file name inside the names and every id is usable.
func FuzzDecodeListing(f *testing.F) {
	m := &Mailbox{names: "1700000000.a.host1700000001.b.host:2,S", derived: []string{"abc"},
		msgs: []message{{ts: 1, off: 0, nlen: 17, ulen: 17, uid: -1, size: 10, dsize: 9},
			{ts: 2, off: 17, nlen: 21, ulen: 17, uid: 0, dir: inCur, size: 10, dsize: 10}},
		alias: map[int]location{1: {dir: inNew, name: "x"}}}
	f.Add(m.encodeListing(listStamp{at: 5, dirs: [2]dirStamp{{1, 2, 3, 4}, {5, 6, 7, 8}}}))
	f.Add([]byte(listingMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := decodeListing(b)
		if err != nil {
			return
		}
		for i, x := range rec.msgs {
			if int(x.off)+int(x.nlen) > len(rec.names) || !plainName(rec.names[x.off:x.off+uint32(x.nlen)]) {
				t.Fatalf("message %d: bad name", i)
			}
			if x.uid >= int32(len(rec.derived)) || x.uid < -1 || x.dir > inCur {
				t.Fatalf("message %d: %+v", i, x)
			}
		}
		for _, id := range rec.derived {
			if !uidOK(id) {
				t.Fatalf("id %q", id)
			}
		}
		for _, a := range rec.alias {
			if !plainName(a.name) {
				t.Fatalf("alias %q", a.name)
			}
		}
	})
}

// TestListingSmall: a mailbox of fewer than listingMinMessages messages is
// listed at every login and gets no record; from that many on it does.
func TestListingSmall(t *testing.T) {
	for _, n := range []int{1, listingMinMessages - 1, listingMinMessages} {
		dir := newMaildir(t)
		for i := range n {
			put(t, dir, "cur", fmt.Sprintf("%d.m%d.host:2,S", 1700000000+i, i), "Subject: x\n\n")
		}
		openMB(t, dir, Options{testNow: skewed}).Close()
		_, err := os.Stat(filepath.Join(dir, listingName))
		if recorded := err == nil; recorded != (n >= listingMinMessages) {
			t.Errorf("%d messages: record written %v", n, recorded)
		}
		mb := openMB(t, dir, Options{testNow: skewed})
		if mb.fromListing != (n >= listingMinMessages) || mb.Len() != n {
			t.Errorf("%d messages: from the record %v, Len %d", n, mb.fromListing, mb.Len())
		}
		mb.Close()
	}
}

// TestListingNameOrder: the record lays the names out in message order,
// whatever order the directories listed them in, and the snapshot loaded
// from it serves the same names.
func TestListingNameOrder(t *testing.T) {
	dir := newMaildir(t)
	for i := range 300 {
		sub := []string{"new", "cur"}[i%2]
		put(t, dir, sub, fmt.Sprintf("%d.n%d.host", 1700000000+(i*7919)%300, i), "Subject: x\n\n")
	}
	mb := openMB(t, dir, Options{testNow: skewed})
	want := inSnapshot(mb)
	mb.Close()
	b, err := os.ReadFile(filepath.Join(dir, listingName))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := decodeListing(b)
	if err != nil {
		t.Fatal(err)
	}
	off := uint32(0)
	for i, x := range rec.msgs {
		if x.off != off {
			t.Fatalf("message %d at %d, want %d", i, x.off, off)
		}
		off += uint32(x.nlen)
	}
	if int(off) != len(rec.names) {
		t.Fatalf("names %d bytes, messages use %d", len(rec.names), off)
	}
	mb = openMB(t, dir, Options{testNow: skewed})
	defer mb.Close()
	if !mb.fromListing {
		t.Fatal("record not used")
	}
	if got := inSnapshot(mb); !slices.Equal(got, want) {
		t.Fatalf("from the record %q, listed %q", got, want)
	}
}
