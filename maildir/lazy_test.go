package maildir

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// lazyMaildir is a Maildir of n messages with a listing record, and the
// snapshot a full (eager) login sees: files, UIDLs, sizes.
func lazyMaildir(t *testing.T, n int) (dir string, files, uids []string, sizes []int64) {
	t.Helper()
	dir = newMaildir(t)
	for i := range n {
		sub := []string{"new", "cur"}[i%2]
		put(t, dir, sub, fmt.Sprintf("%d.l%d.host", 1700000000+i, i), fmt.Sprintf("Subject: %d\n\n%s\n", i, make([]byte, i%7)))
	}
	openMB(t, dir, Options{testNow: skewed, testListingAll: true}).Close() // writes the record
	mb := openMB(t, dir, Options{testNow: skewed, testListingAll: true})
	defer mb.Close()
	if !mb.fromListing {
		t.Fatal("record not used")
	}
	for i := range mb.Len() {
		files, uids, sizes = append(files, mb.File(i)), append(uids, mb.UID(i)), append(sizes, mb.Size(i))
	}
	return dir, files, uids, sizes
}

func lazyOpts() Options { return Options{testNow: skewed, testListingAll: true, Lazy: true} }

// TestLazyLogin: a lazy login from the record knows Len and Total without
// reading the messages; the first method that needs one reads them, and the
// snapshot is the one an eager login has.
func TestLazyLogin(t *testing.T) {
	dir, files, uids, sizes := lazyMaildir(t, 5)
	var total int64
	for _, s := range sizes {
		total += s
	}
	for _, first := range []string{"Size", "UID", "File", "Open", "Load"} {
		t.Run(first, func(t *testing.T) {
			mb := openMB(t, dir, lazyOpts())
			defer mb.Close()
			if mb.Len() != len(files) || mb.Total() != total {
				t.Fatalf("Len %d Total %d, want %d %d", mb.Len(), mb.Total(), len(files), total)
			}
			if mb.loaded.Load() || mb.msgs != nil {
				t.Fatal("messages read at login")
			}
			switch first {
			case "Size":
				mb.Size(0)
			case "UID":
				mb.UID(0)
			case "File":
				mb.File(0)
			case "Open":
				readMsg(t, mb, 0)
			case "Load":
				if err := mb.Load(); err != nil {
					t.Fatal(err)
				}
			}
			if !mb.loaded.Load() {
				t.Fatalf("%s did not read the messages", first)
			}
			for i := range mb.Len() {
				if mb.File(i) != files[i] || mb.UID(i) != uids[i] || mb.Size(i) != sizes[i] {
					t.Fatalf("message %d: %s %s %d, want %s %s %d", i, mb.File(i), mb.UID(i), mb.Size(i), files[i], uids[i], sizes[i])
				}
			}
			if mb.Total() != total {
				t.Fatalf("Total after loading %d, want %d", mb.Total(), total)
			}
		})
	}
}

// TestLazySTATOnly: a session that never needs a message ends without
// reading them, and its QUIT neither changes nor prunes anything (the
// EXPIRE state keeps its first-retrieval times).
func TestLazySTATOnly(t *testing.T) {
	dir, _, _, _ := lazyMaildir(t, 4)
	opts := lazyOpts()
	opts.TrackRetrieval = true
	mb := openMB(t, dir, opts)
	if err := mb.Commit(context.Background(), nil, []int{1}); err != nil { // records a first retrieval
		t.Fatal(err)
	}
	state, err := os.ReadFile(filepath.Join(dir, stateName))
	if err != nil {
		t.Fatal(err)
	}
	// The commit above changed nothing in new/ or cur/ (no mark_read), so
	// the record is still good.
	mb = openMB(t, dir, opts)
	if mb.loaded.Load() {
		t.Fatal("messages read at login")
	}
	if err := mb.Commit(context.Background(), nil, nil); err != nil {
		t.Fatal(err)
	}
	if mb.loaded.Load() {
		t.Fatal("QUIT with nothing to do read the messages")
	}
	if after, err := os.ReadFile(filepath.Join(dir, stateName)); err != nil || string(after) != string(state) {
		t.Fatalf("state file changed by a STAT-only session: %q -> %q (%v)", state, after, err)
	}
}

// TestLazyRecordChanged: the record written to in place between the login
// and the first use (only something other than pop3d does that) fails
// Load with ErrSnapshot: the session is not served another snapshot than
// it announced, and its deletions change nothing. A record replaced by
// rename (as pop3d writes) is not seen: the session reads the one it
// opened.
func TestLazyRecordChanged(t *testing.T) {
	t.Run("in place", func(t *testing.T) {
		dir, files, _, _ := lazyMaildir(t, 4)
		mb := openMB(t, dir, lazyOpts())
		f, err := os.OpenFile(filepath.Join(dir, listingName), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte{0xff}, int64(listingHeader+70)); err != nil {
			t.Fatal(err)
		}
		f.Close()
		later := time.Now().Add(time.Hour)
		os.Chtimes(filepath.Join(dir, listingName), later, later)
		if err := mb.Load(); !errors.Is(err, ErrSnapshot) {
			t.Fatalf("Load: %v, want ErrSnapshot", err)
		}
		if mb.Size(0) != 0 || mb.UID(0) != "" {
			t.Fatalf("after a failed load: Size %d UID %q", mb.Size(0), mb.UID(0))
		}
		if _, err := mb.Open(0); err == nil {
			t.Fatal("Open after a failed load succeeded")
		}
		if err := mb.Commit(context.Background(), []int{0, 1}, nil); err == nil {
			t.Fatal("Commit after a failed load succeeded")
		}
		if got := onDisk(t, dir); len(got) != len(files) {
			t.Fatalf("files on disk %q, want all %d", got, len(files))
		}
	})
	t.Run("renamed over", func(t *testing.T) {
		dir, _, uids, _ := lazyMaildir(t, 4)
		mb := openMB(t, dir, lazyOpts())
		defer mb.Close()
		tmp := filepath.Join(dir, "other")
		if err := os.WriteFile(tmp, []byte("pop3d-listing 2\ngarbage"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, listingName)); err != nil {
			t.Fatal(err)
		}
		if err := mb.Load(); err != nil {
			t.Fatal(err)
		}
		for i := range mb.Len() {
			if mb.UID(i) != uids[i] {
				t.Fatalf("message %d: %q, want %q", i, mb.UID(i), uids[i])
			}
		}
	})
}

// TestLazyDamagedRecord: a record whose body fails its checksum is found
// out when the messages are first needed: that session's Load fails with
// ErrSnapshot and the record is removed, so the next login lists the
// directories and serves every message.
func TestLazyDamagedRecord(t *testing.T) {
	dir, files, _, _ := lazyMaildir(t, 4)
	p := filepath.Join(dir, listingName)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-10] ^= 0x40
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	mb := openMB(t, dir, lazyOpts())
	if mb.Len() != len(files) {
		t.Fatalf("Len %d from the header, want %d", mb.Len(), len(files))
	}
	if err := mb.Load(); !errors.Is(err, ErrSnapshot) {
		t.Fatalf("Load: %v, want ErrSnapshot", err)
	}
	mb.Close()
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("damaged record kept: %v", err)
	}
	mb = openMB(t, dir, lazyOpts())
	defer mb.Close()
	if mb.fromListing || !mb.loaded.Load() {
		t.Fatalf("listed: fromListing %v", mb.fromListing)
	}
	got := inSnapshot(mb)
	want := slices.Clone(files)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("snapshot %q, want %q", got, want)
	}
}
