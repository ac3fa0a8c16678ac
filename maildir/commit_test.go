package maildir

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// replace puts a different file (a new inode) under an existing name, as a
// program that rewrites a message through tmp/ and rename would.
func replace(t *testing.T, dir, sub, name, content string) {
	t.Helper()
	p := filepath.Join(dir, sub, name)
	before, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	put(t, dir, sub, name, content)
	if after, err := os.Stat(p); err != nil || os.SameFile(before, after) {
		t.Fatalf("%s was not replaced by a new file (%v)", p, err)
	}
}

// TestCommitChecksInode: a name that now holds another file is not the
// message that was marked, so Commit leaves it (review S2), and the same
// for a second name of a deleted message (review M1).
func TestCommitChecksInode(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		after func(t *testing.T, dir string) // between Open and Commit
		want  []string
	}{{
		name: "listed name replaced",
		setup: func(t *testing.T, dir string) {
			put(t, dir, "cur", "1000.x.mx:2,S", "marked\n")
			put(t, dir, "cur", "2000.y.mx:2,S", "y\n")
		},
		after: func(t *testing.T, dir string) {
			replace(t, dir, "cur", "1000.x.mx:2,S", "another message\n")
		},
		want: []string{"./", "cur/", "cur/1000.x.mx:2,S", "new/", "tmp/"},
	}, {
		name: "listed name replaced, message renamed",
		setup: func(t *testing.T, dir string) {
			put(t, dir, "new", "1000.x.mx", "marked\n")
			put(t, dir, "cur", "2000.y.mx:2,S", "y\n")
		},
		after: func(t *testing.T, dir string) {
			// Another reader moves the message, and a new one (a broken
			// delivery reusing the name) takes its old name.
			if err := os.Rename(filepath.Join(dir, "new", "1000.x.mx"), filepath.Join(dir, "cur", "1000.x.mx:2,S")); err != nil {
				t.Fatal(err)
			}
			put(t, dir, "new", "1000.x.mx", "another message\n")
		},
		want: []string{"./", "cur/", "new/", "new/1000.x.mx", "tmp/"},
	}, {
		name: "second name replaced",
		setup: func(t *testing.T, dir string) {
			put(t, dir, "new", "1000.x.mx", "marked\n")
			// A move caught midway: cur/ is the listed name, new/ the second.
			if err := os.Link(filepath.Join(dir, "new", "1000.x.mx"), filepath.Join(dir, "cur", "1000.x.mx:2,S")); err != nil {
				t.Fatal(err)
			}
			put(t, dir, "cur", "2000.y.mx:2,S", "y\n")
		},
		after: func(t *testing.T, dir string) {
			replace(t, dir, "new", "1000.x.mx", "another message\n")
		},
		want: []string{"./", "cur/", "new/", "new/1000.x.mx", "tmp/"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := newMaildir(t)
			tt.setup(t, dir)
			mb := openMB(t, dir, Options{})
			if got := uids(mb); !slices.Equal(got, []string{"1000.x.mx", "2000.y.mx"}) {
				t.Fatalf("snapshot %q", got)
			}
			tt.after(t, dir)
			if err := mb.Commit(context.Background(), []int{0, 1}, nil); err != nil {
				t.Fatal(err)
			}
			got := tree(t, dir, true)
			if !slices.Equal(keys(got), tt.want) {
				t.Fatalf("after deleting both:\n got %q\nwant %q", keys(got), tt.want)
			}
			for name, content := range got {
				if content != "" && content != "another message\n" {
					t.Errorf("%s: %q left, want only the unmarked message", name, content)
				}
			}
		})
	}
}

// TestDuplicateUniqueNameRenamed: two messages sharing a unique name, both
// renamed by another program during the session, are each found again,
// read and deleted (review S7).
func TestDuplicateUniqueNameRenamed(t *testing.T) {
	for _, read := range []bool{false, true} {
		dir := newMaildir(t)
		put(t, dir, "new", "1000.twin.mx", "a\n")
		put(t, dir, "cur", "1000.twin.mx:2,F", "b\n")
		mb := openMB(t, dir, Options{})
		if mb.Len() != 2 {
			t.Fatalf("Len = %d, want 2", mb.Len())
		}
		// An IMAP server changes both messages' flags.
		for _, mv := range [][2]string{
			{"new/1000.twin.mx", "cur/1000.twin.mx:2,T"},
			{"cur/1000.twin.mx:2,F", "cur/1000.twin.mx:2,FS"},
		} {
			if err := os.Rename(filepath.Join(dir, mv[0]), filepath.Join(dir, mv[1])); err != nil {
				t.Fatal(err)
			}
		}
		if read {
			var got []string
			for i := range mb.Len() {
				got = append(got, readMsg(t, mb, i))
			}
			slices.Sort(got)
			if !slices.Equal(got, []string{"a\n", "b\n"}) {
				t.Fatalf("read %q", got)
			}
		}
		if err := mb.Commit(context.Background(), []int{0, 1}, nil); err != nil {
			t.Fatal(err)
		}
		got := keys(tree(t, dir, true))
		if want := []string{"./", "cur/", "new/", "tmp/"}; !slices.Equal(got, want) {
			t.Fatalf("read=%v: after deleting both: %q, want %q", read, got, want)
		}
	}
}

// TestMarkSeenChecksInode: like deletes, marking a retrieved message seen
// renames only the file that was listed (same inode), never another file
// that took its name.
func TestMarkSeenChecksInode(t *testing.T) {
	tests := []struct {
		name  string
		after func(t *testing.T, dir string) // between Open and Commit
		want  map[string]string
	}{{
		name: "listed name replaced",
		after: func(t *testing.T, dir string) {
			replace(t, dir, "new", "1000.x.mx", "another message\n")
		},
		want: map[string]string{"new/1000.x.mx": "another message\n"},
	}, {
		name: "listed name replaced, message renamed",
		after: func(t *testing.T, dir string) {
			if err := os.Rename(filepath.Join(dir, "new", "1000.x.mx"), filepath.Join(dir, "cur", "1000.x.mx:2,F")); err != nil {
				t.Fatal(err)
			}
			put(t, dir, "new", "1000.x.mx", "another message\n")
		},
		want: map[string]string{
			"cur/1000.x.mx:2,FS": "retrieved\n",
			"new/1000.x.mx":      "another message\n",
		},
	}, {
		name:  "unchanged",
		after: func(t *testing.T, dir string) {},
		want:  map[string]string{"cur/1000.x.mx:2,S": "retrieved\n"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := newMaildir(t)
			put(t, dir, "new", "1000.x.mx", "retrieved\n")
			mb := openMB(t, dir, Options{MarkRead: true})
			if got := uids(mb); !slices.Equal(got, []string{"1000.x.mx"}) {
				t.Fatalf("snapshot %q", got)
			}
			tt.after(t, dir)
			if err := mb.Commit(context.Background(), nil, []int{0}); err != nil {
				t.Fatal(err)
			}
			got := tree(t, dir, true)
			for _, d := range []string{"./", "cur/", "new/", "tmp/"} {
				delete(got, d)
			}
			same := len(got) == len(tt.want)
			for k, v := range tt.want {
				if c, ok := got[k]; !ok || c != v {
					same = false
				}
			}
			if !same {
				t.Fatalf("after marking seen:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestCommitNoDirsCountsOnce: when the Maildir is gone at UPDATE, each
// message marked deleted counts once however often it is listed.
func TestCommitNoDirsCountsOnce(t *testing.T) {
	dir := newMaildir(t)
	put(t, dir, "new", "1000.x.mx", "x\n")
	put(t, dir, "new", "2000.y.mx", "y\n")
	mb := openMB(t, dir, Options{})
	if err := os.Rename(dir, dir+".gone"); err != nil {
		t.Fatal(err)
	}
	err := mb.Commit(context.Background(), []int{0, 0, 1, 5, -1, 1}, nil)
	ce, ok := err.(*CommitError)
	if !ok || ce.NotRemoved != 2 {
		t.Fatalf("Commit = %v, want a *CommitError with NotRemoved 2", err)
	}
}
