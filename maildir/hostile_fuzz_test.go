package maildir

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzCacheRecords feeds cache records that match real messages (time,
// inode and name hash right) with any sizes: the snapshot must never
// announce a negative or absurd size, whatever the Maildir's owner wrote
// into pop3d-cache.
func FuzzCacheRecords(f *testing.F) {
	dir := newMaildir(f)
	names := []string{"1700000000.a.mx", "1700000001.b.mx,S=5,W=6"}
	for _, n := range names {
		put(f, dir, "new", n, "line\n")
	}
	var inos []uint64
	for _, n := range names {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(dir, "new", n), &st); err != nil {
			f.Fatal(err)
		}
		inos = append(inos, st.Ino)
	}
	f.Add(int64(5), int64(6), int64(0), int64(5), int64(6))
	f.Add(int64(5), int64(-5), int64(0), int64(-1), int64(-1))
	f.Add(int64(1<<62), int64(1<<62+1), int64(7), int64(0), int64(999999999999999999))
	f.Add(int64(-1<<63), int64(1<<63-1), int64(-1), int64(64<<30), int64(128<<30+2))
	log := slog.New(slog.DiscardHandler)
	f.Fuzz(func(t *testing.T, d0, w0, mt, d1, w1 int64) {
		ents := []cacheEntry{
			{ts: 1700000000, ino: inos[0], h: nameHash("1700000000.a.mx"), dsize: d0, mtime: mt, wsize: w0},
			{ts: 1700000001, ino: inos[1], h: nameHash("1700000001.b.mx,S=5,W=6"), dsize: d1, mtime: mt, wsize: w1},
		}
		if err := writeRawCache(t, dir, ents); err != nil {
			t.Fatal(err)
		}
		mb, err := Open(context.Background(), dir, Options{Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		defer mb.Close()
		for i := range mb.Len() {
			if s := mb.Size(i); s < 0 || s > 2*maxMessage+2 {
				t.Fatalf("Size(%d) = %d from records %+v", i, s, ents)
			}
		}
		if mb.Len() != 2 {
			t.Fatalf("%d messages", mb.Len())
		}
	})
}

// FuzzUIDsUnique makes a Maildir of the file names in the input (one per
// line, "cur/" in front for cur/; "rec NAME SOURCE UIDL" lines make a
// pop3d-uidl record of legacy UIDLs) and checks that every unique-id is
// usable, unique, and the same in a second session: derived ids never
// collide with literal names (D7), whatever the names are.
func FuzzUIDsUnique(f *testing.F) {
	bad := "1700000000.has space.mx"
	f.Add(bad + "\n" + derivedUID(bad))
	f.Add("1700000001.twin.mx\ncur/1700000001.twin.mx:2,S\ncur/" + derivedUID(dupKey(inNew, "1700000001.twin.mx")) + ":2,")
	f.Add(bad + "\n" + derivedUID(bad) + "\n" + derivedUID(bad+"\x001") + "\n:2,S\ncur/:2,S")
	f.Add("a\ncur/a:2,S\ncur/a:2,T\nb b\n" + derivedUID("b b"))
	f.Add("1.a\n1.b\n2.c d\nrec 1.a dovecot-P 1.b\nrec 1.b dovecot-P " + derivedUID("2.c d") + "\n" +
		derivedUID("\x00legacy-clash\x00new/1.b"))
	f.Add("1.a\nrec 1.a dovecot-P x%0D%0A+OK%20injected")
	log := slog.New(slog.DiscardHandler)
	f.Fuzz(func(t *testing.T, in string) {
		dir := newMaildir(t)
		made := 0
		record := ""
		for _, l := range strings.Split(in, "\n") {
			if rest, ok := strings.CutPrefix(l, "rec "); ok {
				// A legacy UIDL recorded for a unique name.
				record += rest + "\n"
				continue
			}
			sub := "new"
			if rest, ok := strings.CutPrefix(l, "cur/"); ok {
				sub, l = "cur", rest
			}
			if l == "" || l == "." || l == ".." || l[0] == '.' || len(l) > 255 || strings.ContainsAny(l, "/\x00") {
				continue
			}
			if os.WriteFile(filepath.Join(dir, sub, l), []byte("x\n"), 0o600) == nil {
				made++
			}
			if made == 20 {
				break
			}
		}
		if record != "" {
			os.WriteFile(filepath.Join(dir, uidlRecordName), []byte(uidlRecordMagic+record), 0o600)
		}
		var first []string
		for session := range 2 {
			mb, err := Open(context.Background(), dir, Options{Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			got := uids(mb)
			mb.Close()
			seen := make(map[string]bool)
			for _, u := range got {
				if !legacyUIDLOK(u) {
					t.Fatalf("unusable UIDL %q in %q", u, got)
				}
				if seen[u] {
					t.Fatalf("UIDL %q twice in %q", u, got)
				}
				seen[u] = true
			}
			if session == 0 {
				first = got
			} else if strings.Join(got, " ") != strings.Join(first, " ") {
				t.Fatalf("UIDLs changed between sessions: %q, then %q", first, got)
			}
		}
	})
}
