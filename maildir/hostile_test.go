package maildir

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
