package maildir

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Tests of a Maildir whose owner attacks pop3d (issue 13): symlinks in
// place of the Maildir's directories and files, FIFOs where pop3d keeps its
// own files.

// victim makes another user's Maildir with one message in new/ and one in
// cur/ and returns it with its tree, to check that nothing of it changed.
func victim(t *testing.T) (string, map[string]string) {
	t.Helper()
	v := newMaildir(t)
	put(t, v, "new", "1700000000.victim-new.mx", "victim's unread mail\n")
	put(t, v, "cur", "1700000001.victim-cur.mx:2,", "victim's kept mail\n")
	return v, tree(t, v, false)
}

func checkUntouched(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	if got := tree(t, dir, false); !mapsEqual(got, want) {
		t.Errorf("victim's Maildir changed:\n got %q\nwant %q", keys(got), keys(want))
	}
}

// TestSymlinkedSubdirRefused: new/ or cur/ replaced by a symlink to another
// Maildir's directory (or to a root-only directory) makes the Maildir
// unusable; nothing is read, flagged or removed through the link.
func TestSymlinkedSubdirRefused(t *testing.T) {
	rootOnly := func(t *testing.T) (string, map[string]string) {
		// A 0700 directory with a 0600 file: as root (pop3d started by
		// hand without user) permissions would not stop the reads.
		d := filepath.Join(t.TempDir(), "secret")
		os.Mkdir(d, 0o700)
		os.WriteFile(filepath.Join(d, "1700000000.shadow"), []byte("root:secret\n"), 0o600)
		return d, tree(t, filepath.Dir(d), false)
	}
	for _, tc := range []struct {
		name   string
		sub    string
		target func(t *testing.T) (string, map[string]string)
	}{
		{"new to another user's new", "new", func(t *testing.T) (string, map[string]string) {
			v, tr := victim(t)
			return filepath.Join(v, "new"), tr
		}},
		{"cur to another user's cur", "cur", func(t *testing.T) (string, map[string]string) {
			v, tr := victim(t)
			return filepath.Join(v, "cur"), tr
		}},
		{"new to a root-only directory", "new", rootOnly},
		{"cur to a root-only directory", "cur", rootOnly},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target, before := tc.target(t)
			dir := newMaildir(t)
			put(t, dir, "new", "1700000005.own.mx", "own\n")
			os.RemoveAll(filepath.Join(dir, tc.sub))
			if err := os.Symlink(target, filepath.Join(dir, tc.sub)); err != nil {
				t.Fatal(err)
			}
			for _, create := range []bool{false, true} {
				mb, err := Open(context.Background(), dir, Options{Create: create, MarkRead: true, Logger: testLogger(t)})
				if err == nil {
					// What the attack wanted: read, flag, delete.
					var all []int
					for i := range mb.Len() {
						t.Errorf("message %d served through the link: %q", i, readMsg(t, mb, i))
						all = append(all, i)
					}
					mb.Commit(context.Background(), all[len(all)/2:], all)
					continue
				}
				if !errors.Is(err, ErrNotMaildir) {
					t.Errorf("Create=%v: Open = %v, want ErrNotMaildir", create, err)
				}
			}
			checkUntouched(t, filepath.Dir(target), before)
		})
	}
}

// TestSubdirSwappedDuringSession: new/ replaced by a symlink to another
// user's new/ after login. The session keeps working on the directory it
// opened: RETR, DELE and mark_read never reach the victim's files.
func TestSubdirSwappedDuringSession(t *testing.T) {
	v, before := victim(t)
	dir := newMaildir(t)
	put(t, dir, "new", "1700000000.victim-new.mx", "own, same name\n")
	put(t, dir, "new", "1700000002.own.mx", "own\n")
	mb := openMB(t, dir, Options{MarkRead: true})
	if err := os.Rename(filepath.Join(dir, "new"), filepath.Join(dir, "new.orig")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(v, "new"), filepath.Join(dir, "new")); err != nil {
		t.Fatal(err)
	}
	// Both names gone from where they were listed: relocation lists the
	// directories opened at login, not the link.
	os.Rename(filepath.Join(dir, "new.orig", "1700000000.victim-new.mx"), filepath.Join(dir, "new.orig", "1700000000.victim-new.mx:2,F"))
	if got := readMsg(t, mb, 0); got != "own, same name\n" {
		t.Errorf("RETR 1 = %q", got)
	}
	if err := mb.Commit(context.Background(), []int{0}, []int{1}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	checkUntouched(t, v, before)
	must(t, os.Remove(filepath.Join(dir, "new")))
	got := tree(t, dir, true)
	want := map[string]string{"./": "", "tmp/": "", "new.orig/": "", "cur/": "",
		"cur/1700000002.own.mx:2,S": "own\n"}
	if !mapsEqual(got, want) {
		t.Errorf("own Maildir after UPDATE:\n got %q\nwant %q", keys(got), keys(want))
	}
}

// TestSymlinkedRoot: a Maildir root that is a symlink is followed only
// when the link and its target belong to root or to pop3d's user, and the
// link leads straight to the directory.
func TestSymlinkedRoot(t *testing.T) {
	const other = 12345
	for _, tc := range []struct {
		name   string
		asRoot bool // needs chown
		setup  func(t *testing.T, target, link string)
		ok     bool
	}{
		{"admin's absolute link", false, func(t *testing.T, target, link string) {
			must(t, os.Symlink(target, link))
		}, true},
		{"admin's relative link", false, func(t *testing.T, target, link string) {
			rel, _ := filepath.Rel(filepath.Dir(link), target)
			must(t, os.Symlink(rel, link))
		}, true},
		{"link to a link", false, func(t *testing.T, target, link string) {
			must(t, os.Symlink(target, link+".2"))
			must(t, os.Symlink(link+".2", link))
		}, false},
		{"target owned by another uid", true, func(t *testing.T, target, link string) {
			must(t, os.Chown(target, other, other))
			must(t, os.Symlink(target, link))
		}, false},
		{"link owned by another uid", true, func(t *testing.T, target, link string) {
			must(t, os.Symlink(target, link))
			must(t, os.Lchown(link, other, other))
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.asRoot && os.Geteuid() != 0 {
				t.Skip("needs root to chown")
			}
			target, before := victim(t)
			link := filepath.Join(t.TempDir(), "Maildir")
			tc.setup(t, target, link)
			for _, create := range []bool{false, true} {
				mb, err := Open(context.Background(), link, Options{Create: create, MarkRead: true, Logger: testLogger(t)})
				if !tc.ok {
					if err == nil {
						t.Errorf("Create=%v: served %d messages of another uid's Maildir", create, mb.Len())
						mb.Commit(context.Background(), []int{0}, []int{1})
					} else if !errors.Is(err, ErrNotMaildir) {
						t.Errorf("Create=%v: Open = %v, want ErrNotMaildir", create, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("Create=%v: Open = %v", create, err)
				}
				if mb.Len() != 2 {
					t.Errorf("admin's layout: %d messages, want 2", mb.Len())
				}
				mb.Close()
			}
			if !tc.ok {
				checkUntouched(t, target, before)
			}
		})
	}
}

// TestCreateDoesNotFollowPlantedLinks: with create_maildir, a symlink
// where the Maildir or its new/ will be must not make pop3d create its
// directories or files where it points (another user's empty directory),
// nor create the target of a dangling one.
func TestCreateDoesNotFollowPlantedLinks(t *testing.T) {
	for _, tc := range []struct {
		name     string
		asRoot   bool
		dangling bool
		at       string // "" for the root, else the subdirectory
	}{
		{"root link to another uid's empty directory", true, false, ""},
		{"dangling root link", false, true, ""},
		{"new link to an empty directory", false, false, "new"},
		{"dangling new link", false, true, "new"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.asRoot && os.Geteuid() != 0 {
				t.Skip("needs root to chown")
			}
			elsewhere := filepath.Join(t.TempDir(), "planted")
			if !tc.dangling {
				must(t, os.Mkdir(elsewhere, 0o700))
				if os.Geteuid() == 0 {
					must(t, os.Chown(elsewhere, 12345, 12345))
				}
			}
			dir := filepath.Join(t.TempDir(), "Maildir")
			link := dir
			if tc.at != "" {
				must(t, os.MkdirAll(filepath.Join(dir, "cur"), 0o700))
				link = filepath.Join(dir, tc.at)
			}
			must(t, os.Symlink(elsewhere, link))
			if mb, err := Open(context.Background(), dir, Options{Create: true, Logger: testLogger(t)}); err == nil {
				mb.Close()
				t.Error("Open succeeded")
			}
			if tc.dangling {
				if _, err := os.Lstat(elsewhere); !os.IsNotExist(err) {
					t.Errorf("created the target of a planted link: %v", err)
				}
			} else if got := tree(t, elsewhere, false); len(got) != 1 {
				t.Errorf("created in the target of a planted link: %q", keys(got))
			}
		})
	}
}

// TestPop3dFilesNeverBlockOrFollow: FIFOs, symlinks and directories in
// place of pop3d-cache, pop3d-cache.tmp and pop3d-lock. Login and UPDATE
// must answer (a deadline turns a hang into a failure), a link's target is
// never written, and a usable cache is back after the session.
func TestPop3dFilesNeverBlockOrFollow(t *testing.T) {
	for _, tc := range []struct {
		name    string
		file    string
		kind    string // fifo, link, dir
		loginOK bool
	}{
		{"cache fifo", cacheName, "fifo", true},
		{"cache.tmp fifo", cacheTmpName, "fifo", true},
		{"cache link", cacheName, "link", true},
		{"cache.tmp link", cacheTmpName, "link", true},
		{"cache dir", cacheName, "dir", true},
		{"cache.tmp dir", cacheTmpName, "dir", true},
		{"lock fifo", lockName, "fifo", false},
		{"lock link", lockName, "link", false},
		{"lock dir", lockName, "dir", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := newMaildir(t)
			put(t, dir, "new", "1700000000.a.mx", "a\n")
			put(t, dir, "new", "1700000001.b.mx", "bb\n")
			outside := filepath.Join(t.TempDir(), "precious")
			must(t, os.WriteFile(outside, []byte("precious\n"), 0o600))
			p := filepath.Join(dir, tc.file)
			switch tc.kind {
			case "fifo":
				must(t, mkfifo(p))
			case "link":
				must(t, os.Symlink(outside, p))
			case "dir":
				must(t, os.Mkdir(p, 0o700))
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				mb, err := Open(context.Background(), dir, Options{MarkRead: true, Logger: testLogger(t)})
				if !tc.loginOK {
					if !errors.Is(err, ErrNotMaildir) {
						t.Errorf("Open = %v, want ErrNotMaildir", err)
					}
					return
				}
				if err != nil {
					t.Errorf("Open: %v", err)
					return
				}
				if mb.Len() != 2 || mb.Size(0) != 3 || mb.Size(1) != 4 {
					t.Errorf("snapshot: %d messages, sizes %d %d", mb.Len(), mb.Size(0), mb.Size(1))
				}
				if err := mb.Commit(context.Background(), []int{0}, []int{1}); err != nil {
					t.Errorf("Commit: %v", err)
				}
			}()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("Open or Commit blocked on a " + tc.kind + " named " + tc.file)
			}
			if b, err := os.ReadFile(outside); err != nil || string(b) != "precious\n" {
				t.Errorf("file behind the link: %q %v", b, err)
			}
			if tc.loginOK && tc.kind != "dir" {
				if _, err := readCacheDir(t, dir, maxCacheSize); err != nil {
					t.Errorf("cache not usable after the session: %v", err)
				}
			}
			if tc.loginOK && !strings.HasPrefix(tc.file, lockName) {
				got := tree(t, filepath.Join(dir, "cur"), false)
				if _, ok := got["1700000001.b.mx:2,S"]; !ok {
					t.Errorf("cur/ after UPDATE: %q", keys(got))
				}
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestMaildirMovedDuringSession (D6): the Maildir moved away (and a new one
// made at its path) or removed before QUIT. Commit changes nothing and says
// that the deletions were not made, instead of claiming them.
func TestMaildirMovedDuringSession(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  func(t *testing.T, dir string)
		deleted []int
		wantErr bool
	}{
		{"moved, new one at the path", func(t *testing.T, dir string) {
			must(t, os.Rename(dir, dir+".moved"))
			newAt(t, dir)
		}, []int{0}, true},
		{"moved, nothing at the path", func(t *testing.T, dir string) {
			must(t, os.Rename(dir, dir+".moved"))
		}, []int{0}, true},
		{"removed", func(t *testing.T, dir string) {
			must(t, os.Rename(dir, dir+".moved"))
			must(t, os.RemoveAll(dir+".moved"))
		}, []int{0}, true},
		{"moved, nothing deleted", func(t *testing.T, dir string) {
			must(t, os.Rename(dir, dir+".moved"))
			newAt(t, dir)
		}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := newMaildir(t)
			put(t, dir, "new", "1700000000.a.mx", "a\n")
			put(t, dir, "new", "1700000001.b.mx", "b\n")
			mb := openMB(t, dir, Options{MarkRead: true})
			tc.change(t, dir)
			var before map[string]string
			if _, err := os.Stat(dir + ".moved"); err == nil {
				before = tree(t, dir+".moved", true)
			}
			err := mb.Commit(context.Background(), tc.deleted, []int{1})
			var ce *CommitError
			switch {
			case !tc.wantErr && err != nil:
				t.Errorf("Commit = %v, want nil", err)
			case tc.wantErr && (!errors.As(err, &ce) || ce.NotRemoved != 1 || ce.Permanent || !errors.Is(err, ErrGone)):
				t.Errorf("Commit = %#v, want a temporary *CommitError for 1 message, ErrGone", err)
			}
			if before != nil {
				if got := tree(t, dir+".moved", true); !mapsEqual(got, before) {
					t.Errorf("moved Maildir changed:\n got %q\nwant %q", keys(got), keys(before))
				}
			}
		})
	}
}

func newAt(t *testing.T, dir string) {
	t.Helper()
	for _, sub := range []string{"tmp", "new", "cur"} {
		must(t, os.MkdirAll(filepath.Join(dir, sub), 0o700))
	}
}

// TestImplausibleSizes (D2): sizes from ,W= and from the cache are used
// only within what a file of its on-disk size can have; negative and absurd
// ones are computed instead, and a totals never goes negative.
func TestImplausibleSizes(t *testing.T) {
	dir := newMaildir(t)
	const body = "line\n" // disk 5, wire 6
	names := []string{
		"1700000000.a.mx,S=5,W=999999999999999999",
		"1700000001.b,S=5,W=999999999999999999:2,S",
		"1700000002.c,W=0.mx", // smaller than the file
		"1700000003.d,W=6.mx", // right
		"1700000004.e.mx",     // size from the cache, made negative below
		"1700000005.f.mx",     // absurd in the cache
	}
	for i, n := range names {
		sub := "new"
		if i == 1 {
			sub = "cur"
		}
		put(t, dir, sub, n, body)
	}
	check := func(when string) {
		t.Helper()
		mb := openMB(t, dir, Options{})
		defer mb.Close()
		var total int64
		for i := range mb.Len() {
			if mb.Size(i) != 6 {
				t.Errorf("%s: Size(%d) = %d, want 6", when, i, mb.Size(i))
			}
			total += mb.Size(i)
		}
		if total != 6*int64(len(names)) {
			t.Errorf("%s: total %d", when, total)
		}
	}
	check("first login")
	check("from the cache")
	// Forge the cache records of e and f, with a valid checksum.
	recs, err := readCacheDir(t, dir, maxCacheSize)
	must(t, err)
	ents := entries(recs)
	forged := 0
	for k := range ents {
		switch ents[k].h {
		case nameHash("1700000004.e.mx"):
			ents[k].wsize, forged = -5, forged+1
		case nameHash("1700000005.f.mx"):
			ents[k].dsize, ents[k].wsize, forged = 1<<62, 1<<62+1, forged+1
		}
	}
	if forged != 2 {
		t.Fatalf("forged %d records", forged)
	}
	must(t, writeRawCache(t, dir, ents))
	check("forged cache")
	check("cache rewritten")
}

// writeRawCache writes ents as a cache file, negative sizes included
// (writeCache skips those).
func writeRawCache(t *testing.T, dir string, ents []cacheEntry) error {
	t.Helper()
	b := []byte(cacheMagic)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(ents)))
	for _, e := range ents {
		for _, v := range []uint64{uint64(e.ts), e.ino, e.h, uint64(e.dsize), uint64(e.mtime), uint64(e.wsize)} {
			b = binary.LittleEndian.AppendUint64(b, v)
		}
	}
	return os.WriteFile(filepath.Join(dir, cacheName), withCRC(b), 0o600)
}

// TestDerivedUIDCollision (D7): a file literally named with the 40 hex
// digits derived for another message's unusable unique name, or for the
// second of two messages sharing a name. Every UIDL stays unique, and the
// same in the next session.
func TestDerivedUIDCollision(t *testing.T) {
	dir := newMaildir(t)
	bad := "1700000000.has space.mx" // not usable as a UIDL: derived
	put(t, dir, "new", bad, "bad name\n")
	put(t, dir, "new", derivedUID(bad), "literal twin\n")
	// Two files sharing a unique name: the second's id is derived from
	// its directory and name.
	put(t, dir, "new", "1700000001.twin.mx", "first\n")
	put(t, dir, "cur", "1700000001.twin.mx:2,S", "second\n")
	second := derivedUID(dupKey(inNew, "1700000001.twin.mx"))
	put(t, dir, "cur", second+":2,S", "literal of the second\n")
	// And a re-derived id taken literally too.
	put(t, dir, "cur", derivedUID(bad+"\x001")+":2,", "literal of the re-derived\n")

	var first []string
	for session := range 3 {
		mb := openMB(t, dir, Options{})
		got := uids(mb)
		seen := map[string]int{}
		for i, u := range got {
			if j, dup := seen[u]; dup {
				t.Errorf("session %d: messages %d and %d share UIDL %s", session, j, i, u)
			}
			seen[u] = i
			if !uidOK(u) {
				t.Errorf("session %d: UIDL %q not usable", session, u)
			}
		}
		if len(got) != 6 {
			t.Errorf("session %d: %d messages, want 6", session, len(got))
		}
		if session == 0 {
			first = got
		} else if !slices.Equal(got, first) {
			t.Errorf("session %d: UIDLs %q, first session %q", session, got, first)
		}
		mb.Close()
	}
	// The literal names keep their ids.
	for _, lit := range []string{derivedUID(bad), second, derivedUID(bad + "\x001")} {
		if !slices.Contains(first, lit) {
			t.Errorf("literal name %s lost its id: %q", lit, first)
		}
	}
}

// TestSeenNameTooLong: a message whose name has no room for ":2,S" stays
// unseen, and that is not a warning in every session.
func TestSeenNameTooLong(t *testing.T) {
	dir := newMaildir(t)
	long := "1700000000." + strings.Repeat("x", 255-len("1700000000.")) // 255 bytes
	put(t, dir, "new", long, "long\n")
	put(t, dir, "new", "1700000001.short.mx", "short\n")
	var logs strings.Builder
	mb, err := Open(context.Background(), dir, Options{MarkRead: true,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	must(t, err)
	must(t, mb.Commit(context.Background(), nil, []int{0, 1}))
	got := tree(t, dir, true)
	if _, ok := got["new/"+long]; !ok {
		t.Errorf("long-named message moved: %q", keys(got))
	}
	if _, ok := got["cur/1700000001.short.mx:2,S"]; !ok {
		t.Errorf("short-named message not marked seen: %q", keys(got))
	}
	if strings.Contains(logs.String(), "level=WARN") || strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("logged a warning:\n%s", logs.String())
	}
	if n := strings.Count(logs.String(), "no room for the seen flag"); n != 1 {
		t.Errorf("%d debug lines about it, want 1:\n%s", n, logs.String())
	}
}

// TestIsPermanent: the failures a retry does not cure.
func TestIsPermanent(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{unix.EACCES, true},
		{unix.EPERM, true},
		{unix.EROFS, true},
		{&os.PathError{Op: "unlink", Path: "x", Err: unix.EACCES}, true},
		{unix.EIO, false},
		{unix.ENOSPC, false},
		{ErrGone, false},
		{context.Canceled, false},
	} {
		if got := isPermanent(tc.err); got != tc.want {
			t.Errorf("isPermanent(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestCommitPermanentFailure: an unlink refused with EACCES (a new/ the
// session's user may not write) is a permanent failure, which the daemon
// answers with [SYS/PERM] rather than "try again later".
func TestCommitPermanentFailure(t *testing.T) {
	dir := newMaildir(t)
	put(t, dir, "new", "1700000000.a.mx", "a\n")
	put(t, dir, "new", "1700000001.b.mx", "b\n")
	var out string
	if os.Geteuid() == 0 {
		giveToNobody(t, dir)
		must(t, os.Chmod(filepath.Join(dir, "new"), 0o500))
		out = runAsNobody(t, "commit-readonly", dir)
	} else {
		must(t, os.Chmod(filepath.Join(dir, "new"), 0o500))
		defer os.Chmod(filepath.Join(dir, "new"), 0o700)
		out = commitReadOnly(dir)
	}
	if strings.TrimSpace(out) != "notRemoved=2 permanent=true" {
		t.Errorf("Commit on a read-only new/: %s", out)
	}
	if got := tree(t, dir, true); len(got) != 6 {
		t.Errorf("Maildir after the failed UPDATE: %q", keys(got))
	}
}

// commitReadOnly deletes every message of the Maildir dir and reports the
// CommitError.
func commitReadOnly(dir string) string {
	mb, err := Open(context.Background(), dir, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return "error: " + err.Error()
	}
	err = mb.Commit(context.Background(), []int{0, 1}, nil)
	var ce *CommitError
	if !errors.As(err, &ce) {
		return fmt.Sprintf("Commit = %v", err)
	}
	return fmt.Sprintf("notRemoved=%d permanent=%v", ce.NotRemoved, ce.Permanent)
}

// TestLegacyUIDCollisions (D7, with legacy UIDLs): a recorded legacy UIDL
// equal to the id derived for another message, and to the literal name of a
// third whose moved-aside id is in turn some file's literal name. Every
// UIDL stays unique and the same in the next session; the legacy one wins.
func TestLegacyUIDCollisions(t *testing.T) {
	dir := newMaildir(t)
	bad := "1700000001.b c.mx"
	put(t, dir, "new", "1700000000.a.mx", "a\n")
	put(t, dir, "new", bad, "b\n")
	put(t, dir, "new", "1700000003.c.mx", "c\n")
	put(t, dir, "new", "1700000004.d.mx", "d\n")
	lit := derivedUID("\x00legacy-clash\x00new/1700000003.c.mx")
	put(t, dir, "new", lit, "literal of c's moved-aside id\n")
	// Listed first (no time in the name: ordered by mtime).
	early := time.Unix(1600000000, 0)
	must(t, os.Chtimes(filepath.Join(dir, "new", lit), early, early))
	put(t, dir, "new", derivedUID(bad+"\x001"), "literal of b's re-derived id\n")
	record := uidlRecordMagic +
		"1700000000.a.mx " + SrcDovecotP + " " + derivedUID(bad) + "\n" +
		"1700000004.d.mx " + SrcDovecotP + " 1700000003.c.mx\n"
	must(t, os.WriteFile(filepath.Join(dir, uidlRecordName), []byte(record), 0o600))
	var first []string
	for session := range 3 {
		mb := openMB(t, dir, Options{})
		got := uids(mb)
		mb.Close()
		seen := map[string]int{}
		for i, u := range got {
			if j, dup := seen[u]; dup {
				t.Errorf("session %d: messages %d and %d share UIDL %s", session, j, i, u)
			}
			seen[u] = i
		}
		if len(got) != 6 {
			t.Fatalf("session %d: %d messages", session, len(got))
		}
		if got[0] != lit || got[1] != derivedUID(bad) || got[4] != "1700000003.c.mx" {
			t.Errorf("session %d: legacy UIDLs not kept: %q", session, got)
		}
		if session == 0 {
			first = got
		} else if !slices.Equal(got, first) {
			t.Errorf("session %d: UIDLs %q, first session %q", session, got, first)
		}
	}
}
