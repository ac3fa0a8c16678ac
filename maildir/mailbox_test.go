package maildir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	gomaildir "github.com/emersion/go-maildir"
)

func TestOpenMissingAndBroken(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	log := testLogger(t)

	missing := filepath.Join(base, "example.com", "bob")
	if _, err := Open(ctx, missing, Options{Logger: log}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing, Create=false: %v, want ErrNotFound", err)
	}
	mb, err := Open(ctx, missing, Options{Create: true, Logger: log})
	if err != nil {
		t.Fatalf("missing, Create=true: %v", err)
	}
	if mb.Len() != 0 {
		t.Errorf("new Maildir has %d messages", mb.Len())
	}
	mb.Close()
	for _, sub := range []string{"", "tmp", "new", "cur"} {
		st, err := os.Stat(filepath.Join(missing, sub))
		if err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
			t.Errorf("created %q: %v %v", sub, st.Mode(), err)
		}
	}

	file := filepath.Join(base, "file")
	os.WriteFile(file, []byte("x"), 0o600)
	for _, create := range []bool{false, true} {
		if _, err := Open(ctx, file, Options{Create: create, Logger: log}); !errors.Is(err, ErrNotMaildir) {
			t.Errorf("plain file, Create=%v: %v, want ErrNotMaildir", create, err)
		}
		if _, err := Open(ctx, filepath.Join(file, "sub"), Options{Create: create, Logger: log}); !errors.Is(err, ErrNotMaildir) && !(create == false && errors.Is(err, ErrNotFound)) {
			t.Errorf("below a plain file, Create=%v: %v, want ErrNotMaildir", create, err)
		}
	}

	nocur := filepath.Join(base, "nocur")
	os.MkdirAll(filepath.Join(nocur, "new"), 0o700)
	if _, err := Open(ctx, nocur, Options{Logger: log}); !errors.Is(err, ErrNotMaildir) {
		t.Errorf("no cur/, Create=false: %v, want ErrNotMaildir", err)
	}
	if mb, err := Open(ctx, nocur, Options{Create: true, Logger: log}); err != nil {
		t.Errorf("no cur/, Create=true: %v", err)
	} else {
		mb.Close()
	}

	curfile := filepath.Join(base, "curfile")
	os.MkdirAll(filepath.Join(curfile, "new"), 0o700)
	os.WriteFile(filepath.Join(curfile, "cur"), nil, 0o600)
	if _, err := Open(ctx, curfile, Options{Create: true, Logger: log}); !errors.Is(err, ErrNotMaildir) {
		t.Errorf("cur is a file: %v, want ErrNotMaildir", err)
	}
}

func TestLockInProcess(t *testing.T) {
	dir := newMaildir(t)
	mb := openMB(t, dir, Options{})
	if _, err := Open(context.Background(), dir, Options{Logger: testLogger(t)}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second session in the same process: %v, want ErrLocked", err)
	}
	mb.Close()
	mb = openMB(t, dir, Options{})
	if err := mb.Commit(context.Background(), nil, nil); err != nil {
		t.Fatal(err)
	}
	openMB(t, dir, Options{}).Close()
	if err := mb.Close(); err != nil {
		t.Errorf("Close after Commit: %v", err)
	}
}

func TestSnapshotOrderAndUIDs(t *testing.T) {
	dir := newMaildir(t)
	long := "1700000005.M402937P9187.a-very-long-host-name.somewhere.example.com,S=6,W=7"
	put(t, dir, "cur", "1700000003.V801I2a0fM1.mx:2,S", "three\n")
	put(t, dir, "new", "1700000001.4321_0.mx", "one\n")
	put(t, dir, "new", "1700000002.M1P2.mx,S=4,W=5", "two\n")
	put(t, dir, "new", long, "five\n")
	put(t, dir, "new", "1700000001.4321.mx", "one-b\n") // same second: by name
	put(t, dir, "cur", "1700000004.x y.mx:2,", "space\n")
	put(t, dir, "cur", ":2,S", "colon\n")
	put(t, dir, "new", "nodigits", "mtime\n")
	os.Chtimes(filepath.Join(dir, "new", "nodigits"), time.Unix(1700000002, 5e8), time.Unix(1700000002, 5e8))
	os.Chtimes(filepath.Join(dir, "cur", ":2,S"), time.Unix(1000, 0), time.Unix(1000, 0))
	// Ignored: dot files, tmp/, directories, symlinks, FIFOs.
	put(t, dir, "new", ".hidden", "x\n")
	os.WriteFile(filepath.Join(dir, "tmp", "1700000000.inflight.mx"), []byte("x\n"), 0o600)
	os.Mkdir(filepath.Join(dir, "cur", "1700000000.adir"), 0o700)
	os.Symlink("/etc/passwd", filepath.Join(dir, "new", "1700000000.link.mx"))
	if err := mkfifo(filepath.Join(dir, "new", "1700000000.fifo.mx")); err != nil {
		t.Fatal(err)
	}

	mb := openMB(t, dir, Options{MarkRead: true})
	want := []string{
		derivedUID(":2,S"), // mtime 1000
		"1700000001.4321.mx",
		"1700000001.4321_0.mx",
		"1700000002.M1P2.mx,S=4,W=5",
		"nodigits",
		"1700000003.V801I2a0fM1.mx",
		derivedUID("1700000004.x y.mx"),
		derivedUID(long),
	}
	if got := uids(mb); !reflect.DeepEqual(got, want) {
		t.Fatalf("UIDs\n got %q\nwant %q", got, want)
	}
	wantBody := []string{"colon\n", "one-b\n", "one\n", "two\n", "mtime\n", "three\n", "space\n", "five\n"}
	for i, w := range wantBody {
		if got := readMsg(t, mb, i); got != w {
			t.Errorf("message %d = %q, want %q", i, got, w)
		}
	}
	if mb.Size(3) != 5 || mb.Size(7) != 7 { // from ,W=
		t.Errorf("sizes from ,W=: %d %d", mb.Size(3), mb.Size(7))
	}
	if mb.Size(1) != 7 {
		t.Errorf("computed size %d, want 7", mb.Size(1))
	}
	for _, i := range []int{-1, mb.Len()} {
		if mb.Size(i) != 0 || mb.UID(i) != "" {
			t.Errorf("index %d out of range answered", i)
		}
		if _, err := mb.Open(i); err == nil {
			t.Errorf("Open(%d) out of range succeeded", i)
		}
	}
	if err := mb.Commit(context.Background(), nil, []int{0, 1, 2, 3, 4, 5, 6, 7}); err != nil {
		t.Fatal(err)
	}

	// Next session: same order and UIDs though files moved to cur/.
	mb = openMB(t, dir, Options{})
	defer mb.Close()
	if got := uids(mb); !reflect.DeepEqual(got, want) {
		t.Fatalf("UIDs after marking seen\n got %q\nwant %q", got, want)
	}
	if n, _ := os.ReadDir(filepath.Join(dir, "new")); len(n) != 3 { // .hidden, link, fifo
		t.Errorf("new/ still has %d entries", len(n))
	}
}

func TestSizesOfEveryShape(t *testing.T) {
	dir := newMaildir(t)
	big := strings.Repeat("Line of a big message.\n", 20<<20/23) + "last line without newline"
	shapes := []string{
		"Subject: lf\n\nbody\n",
		"Subject: crlf\r\n\r\nbody\r\n",
		"Subject: none\n\nno final newline",
		"",
		"Subject: cr\n\nbare\rcr\r",
		".\n..\n.x\n",
		big,
	}
	for i, s := range shapes {
		put(t, dir, "new", "170000000"+string(rune('0'+i))+".shape.mx", s)
	}
	for session := range 2 { // computed, then from the cache
		mb := openMB(t, dir, Options{})
		if mb.Len() != len(shapes) {
			t.Fatalf("Len = %d", mb.Len())
		}
		for i, s := range shapes {
			if want := int64(len(wireForm([]byte(s)))); mb.Size(i) != want {
				t.Errorf("session %d shape %d: Size = %d, want %d", session, i, mb.Size(i), want)
			}
			if got := readMsg(t, mb, i); got != s {
				t.Errorf("shape %d: content differs", i)
			}
		}
		mb.Close()
		if _, err := os.Stat(filepath.Join(dir, cacheName)); err != nil {
			t.Fatalf("no cache after session %d: %v", session, err)
		}
	}
}

func TestRETRStreams(t *testing.T) {
	dir := newMaildir(t)
	put(t, dir, "new", "1.big.mx", strings.Repeat("x", 1<<20))
	mb := openMB(t, dir, Options{})
	defer mb.Close()
	rc, err := mb.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, ok := rc.(*messageFile); !ok {
		t.Errorf("Open returns %T, want the file itself (no buffering)", rc)
	}
	buf := make([]byte, 64<<10)
	n, err := rc.Read(buf)
	if err != nil || n == 0 || n > len(buf) {
		t.Fatalf("first Read = %d, %v", n, err)
	}
	rest, err := io.ReadAll(rc)
	if err != nil || n+len(rest) != 1<<20 {
		t.Errorf("read %d+%d bytes, %v; want %d", n, len(rest), err, 1<<20)
	}
}

// A message reads as it was when opened: bytes appended later are not
// sent (its size was announced), and a file truncated meanwhile ends early
// without an error (the engine notices the size and corrects it).
func TestOpenReadsSizeAtOpen(t *testing.T) {
	dir := newMaildir(t)
	put(t, dir, "new", "1.a.mx", "hello\n")
	put(t, dir, "new", "2.b.mx", "hello world\n")
	mb := openMB(t, dir, Options{})
	defer mb.Close()
	rc, err := mb.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "new", "1.a.mx"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("appended\n")
	f.Close()
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(got) != "hello\n" {
		t.Errorf("grown file read %q, %v", got, err)
	}
	rc, err = mb.Open(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, "new", "2.b.mx"), 3); err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(rc)
	if err != nil || string(got) != "hel" {
		t.Errorf("truncated file read %q, %v", got, err)
	}
	if err := rc.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := rc.Close(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
}

func TestCacheInPlaceRewriteAndCorrectSize(t *testing.T) {
	dir := newMaildir(t)
	name := "1700000000.a.mx"
	put(t, dir, "new", name, "a\nb\n")
	mb := openMB(t, dir, Options{})
	if mb.Size(0) != 6 {
		t.Fatalf("Size = %d", mb.Size(0))
	}
	mb.Close()
	// Rewritten in place (same inode), against the rules: the cache is
	// trusted at login...
	p := filepath.Join(dir, "new", name)
	if err := os.WriteFile(p, []byte("a\nb\nc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mb = openMB(t, dir, Options{})
	if mb.Size(0) != 6 {
		t.Fatalf("Size = %d, want the cached 6 (cache not used?)", mb.Size(0))
	}
	// ...and corrected once RETR counted the real size.
	readMsg(t, mb, 0)
	mb.CorrectSize(0, 9)
	if mb.Size(0) != 6 {
		t.Errorf("size changed within the session")
	}
	mb.Close()
	mb = openMB(t, dir, Options{})
	defer mb.Close()
	if mb.Size(0) != 9 {
		t.Fatalf("after CorrectSize: Size = %d, want 9", mb.Size(0))
	}
}

// TestCacheInPlaceRewriteWithoutRETR is the review's S4: a session that
// notices a file changed in place but never completes its RETR must not
// save the old wire size with the new on-disk size, which would hide the
// change from every later session.
func TestCacheInPlaceRewriteWithoutRETR(t *testing.T) {
	dir := newMaildir(t)
	name := "1700000000.a.mx"
	put(t, dir, "new", name, "a\nb\n")
	mb := openMB(t, dir, Options{})
	if mb.Size(0) != 6 {
		t.Fatalf("Size = %d", mb.Size(0))
	}
	mb.Close()
	p := filepath.Join(dir, "new", name)
	if err := os.WriteFile(p, []byte("a\nb\nc\n"), 0o600); err != nil { // same inode
		t.Fatal(err)
	}
	// Session 2 opens the message (and notices the change) but the client
	// drops the connection before the end of the RETR.
	mb = openMB(t, dir, Options{})
	if mb.Size(0) != 6 {
		t.Fatalf("Size = %d, want the cached 6 (cache not used?)", mb.Size(0))
	}
	rc, err := mb.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	mb.Close()
	mb = openMB(t, dir, Options{})
	defer mb.Close()
	if mb.Size(0) != 9 {
		t.Fatalf("next session: Size = %d, want 9 (the file as it is now)", mb.Size(0))
	}
}

func TestCacheCrowdedSecond(t *testing.T) {
	// 100 messages delivered in the same second (an import) take the map
	// path of the cache merge; the cache must still be used and exact.
	dir := newMaildir(t)
	for i := range 100 {
		put(t, dir, "new", fmt.Sprintf("1700000000.M%dP1.mx", i), strings.Repeat("x\n", i))
	}
	openMB(t, dir, Options{}).Close()
	// Rewrite one in place: only a cache hit can still report the old size.
	os.WriteFile(filepath.Join(dir, "new", "1700000000.M7P1.mx"), []byte("changed\n"), 0o600)
	mb := openMB(t, dir, Options{})
	defer mb.Close()
	for i := range mb.Len() {
		var n int
		fmt.Sscanf(mb.UID(i), "1700000000.M%dP1.mx", &n)
		if want := int64(3 * n); mb.Size(i) != want {
			t.Errorf("%s: Size %d, want %d (from the cache)", mb.UID(i), mb.Size(i), want)
		}
	}
}

// TestLyingW: a ,W= that a file of its size could have is believed (the
// file is not read), and corrected after RETR; an impossible one is
// TestImplausibleSizes.
func TestLyingW(t *testing.T) {
	dir := newMaildir(t)
	put(t, dir, "new", "1700000000.M1P1.mx,S=4,W=9", "abc\n")
	mb := openMB(t, dir, Options{})
	if mb.Size(0) != 9 {
		t.Fatalf("Size = %d, want the ,W= value", mb.Size(0))
	}
	mb.CorrectSize(0, 5)
	mb.Close()
	mb = openMB(t, dir, Options{})
	defer mb.Close()
	if mb.Size(0) != 5 {
		t.Fatalf("after correction: %d, want 5", mb.Size(0))
	}
}

func TestDovecotWWithoutFinalNewline(t *testing.T) {
	dir := newMaildir(t)
	// As dovecot-lda 2.3.19 names a 22-byte message without final newline.
	put(t, dir, "new", "1795320619.M27140P4378.vm,S=22,W=24", "Subject: d\n\nno newline")
	put(t, dir, "new", "1795320619.M577906P4386.vm,S=18,W=21", "Subject: d2\n\nline\n")
	for session := range 2 {
		mb := openMB(t, dir, Options{})
		if mb.Size(0) != 26 || mb.Size(1) != 21 {
			t.Errorf("session %d: sizes %d %d, want 26 21", session, mb.Size(0), mb.Size(1))
		}
		mb.Close()
	}
}

func TestCorruptCache(t *testing.T) {
	dir := newMaildir(t)
	for i, s := range []string{"a\n", "bb\n", "ccc"} {
		put(t, dir, "new", "17000000"+string(rune('0'+i))+"0.x.mx", s)
	}
	want := []int64{3, 4, 5}
	// A cache with a valid checksum but other inodes must not be believed.
	wrongIno := t.TempDir()
	writeCacheDir(t, wrongIno, []cacheEntry{
		{ts: 1700000000, ino: 1, h: nameHash("1700000000.x.mx"), wsize: 77},
		{ts: 1700000010, ino: 1, h: nameHash("1700000010.x.mx"), wsize: 77},
	})
	foreign, _ := os.ReadFile(filepath.Join(wrongIno, cacheName))
	for _, garbage := range []string{
		"",
		"garbage\x00\xff",
		cacheMagic + "\x01\x00\x00\x00garbage",
		string(foreign),
	} {
		os.WriteFile(filepath.Join(dir, cacheName), []byte(garbage), 0o600)
		mb := openMB(t, dir, Options{})
		for i, w := range want {
			if mb.Size(i) != w {
				t.Errorf("cache %q: Size(%d) = %d, want %d", garbage, i, mb.Size(i), w)
			}
		}
		mb.Close()
		if _, err := readCacheDir(t, dir, maxCacheSize); err != nil {
			t.Errorf("cache not rewritten: %v", err)
		}
	}
	// Stale entries are pruned.
	os.Remove(filepath.Join(dir, "new", "1700000000.x.mx"))
	openMB(t, dir, Options{}).Close()
	recs, _ := readCacheDir(t, dir, maxCacheSize)
	if n := len(recs) / recSize; n != 2 {
		t.Errorf("cache has %d entries, want 2", n)
	}
}

func TestDeliveryDuringSession(t *testing.T) {
	dir := newMaildir(t)
	put(t, dir, "new", "1700000000.a.mx", "first\n")
	mb := openMB(t, dir, Options{MarkRead: true})
	d, err := gomaildir.NewDelivery(dir) // tmp/ then rename into new/
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(d, "Subject: late\n\nhi\n")
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if mb.Len() != 1 {
		t.Fatalf("snapshot changed: Len = %d", mb.Len())
	}
	if err := mb.Commit(context.Background(), []int{0}, nil); err != nil {
		t.Fatal(err)
	}
	mb = openMB(t, dir, Options{})
	defer mb.Close()
	if mb.Len() != 1 || readMsg(t, mb, 0) != "Subject: late\n\nhi\n" {
		t.Fatalf("late delivery: Len %d", mb.Len())
	}
}

func TestOtherProgramChangesDuringSession(t *testing.T) {
	dir := newMaildir(t)
	put(t, dir, "new", "1700000001.renamed.mx", "renamed\n")
	put(t, dir, "new", "1700000002.vanished.mx", "vanished\n")
	put(t, dir, "cur", "1700000003.flagged.mx:2,", "flagged\n")
	put(t, dir, "new", "1700000004.kept.mx", "kept\n")
	mb := openMB(t, dir, Options{MarkRead: true})
	// An IMAP server moves one to cur/ with flags, re-flags another, and
	// the user deletes one elsewhere.
	os.Rename(filepath.Join(dir, "new", "1700000001.renamed.mx"), filepath.Join(dir, "cur", "1700000001.renamed.mx:2,S"))
	os.Remove(filepath.Join(dir, "new", "1700000002.vanished.mx"))
	os.Rename(filepath.Join(dir, "cur", "1700000003.flagged.mx:2,"), filepath.Join(dir, "cur", "1700000003.flagged.mx:2,F"))

	if got := readMsg(t, mb, 0); got != "renamed\n" {
		t.Errorf("renamed message: %q", got)
	}
	// Renamed again at once: the recent listing is stale, a new one finds it.
	os.Rename(filepath.Join(dir, "cur", "1700000001.renamed.mx:2,S"), filepath.Join(dir, "cur", "1700000001.renamed.mx:2,RS"))
	if got := readMsg(t, mb, 0); got != "renamed\n" {
		t.Errorf("renamed twice: %q", got)
	}
	if _, err := mb.Open(1); !errors.Is(err, ErrMessageGone) {
		t.Errorf("vanished message: %v, want ErrMessageGone", err)
	}
	if got := readMsg(t, mb, 3); got != "kept\n" {
		t.Errorf("other message: %q", got)
	}
	// Delete the renamed and the vanished; mark the re-flagged one seen.
	if err := mb.Commit(context.Background(), []int{0, 1}, []int{2, 3}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	got := keys(tree(t, dir, true))
	want := []string{"./", "cur/", "cur/1700000003.flagged.mx:2,FS", "cur/1700000004.kept.mx:2,S", "new/", "tmp/"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after commit\n got %q\nwant %q", got, want)
	}
}

func TestCommitExact(t *testing.T) {
	for _, markRead := range []bool{true, false} {
		dir := newMaildir(t)
		// Other software's files, which must not change.
		os.WriteFile(filepath.Join(dir, "dovecot-uidlist"), []byte("3 V1 N2\n1 1700000000.m0.mx\n"), 0o600)
		os.WriteFile(filepath.Join(dir, "dovecot.index"), []byte("\x01\x02index"), 0o600)
		os.WriteFile(filepath.Join(dir, "dovecot.index.log"), []byte("log"), 0o600)
		os.Mkdir(filepath.Join(dir, "courierimapkeywords"), 0o700)
		os.WriteFile(filepath.Join(dir, "courierimapkeywords", ":list"), []byte("$Junk\n"), 0o600)
		os.MkdirAll(filepath.Join(dir, ".Sent", "cur"), 0o700)
		os.WriteFile(filepath.Join(dir, ".Sent", "cur", "1.s.mx:2,S"), []byte("sent\n"), 0o600)
		for i := range 10 {
			sub := "new"
			name := "170000000" + string(rune('0'+i)) + ".m.mx"
			if i >= 6 {
				sub, name = "cur", name+":2,R"
			}
			put(t, dir, sub, name, "message "+string(rune('0'+i))+"\n")
		}
		before := tree(t, dir, true)
		mb := openMB(t, dir, Options{MarkRead: markRead})
		// Out of range and repeated indexes are ignored.
		if err := mb.Commit(context.Background(), []int{-1, 2, 5, 5, 7, 99}, []int{1, 2, 3, 8}); err != nil {
			t.Fatal(err)
		}
		after := tree(t, dir, true)
		want := maps(before)
		delete(want, "new/1700000002.m.mx")
		delete(want, "new/1700000005.m.mx")
		delete(want, "cur/1700000007.m.mx:2,R")
		if markRead {
			for _, mv := range [][2]string{
				{"new/1700000001.m.mx", "cur/1700000001.m.mx:2,S"},
				{"new/1700000003.m.mx", "cur/1700000003.m.mx:2,S"},
				{"cur/1700000008.m.mx:2,R", "cur/1700000008.m.mx:2,RS"},
			} {
				want[mv[1]] = want[mv[0]]
				delete(want, mv[0])
			}
		}
		if !reflect.DeepEqual(after, want) {
			t.Errorf("markRead=%v:\n got %q\nwant %q", markRead, keys(after), keys(want))
		}
	}
}

func maps(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func TestDropWithoutCommit(t *testing.T) {
	dir := newMaildir(t)
	for i := range 5 {
		put(t, dir, "new", "170000000"+string(rune('0'+i))+".m.mx", "x\n")
	}
	before := tree(t, dir, true)
	mb := openMB(t, dir, Options{MarkRead: true})
	readMsg(t, mb, 0)
	if err := mb.Close(); err != nil {
		t.Fatal(err)
	}
	if after := tree(t, dir, true); !reflect.DeepEqual(before, after) {
		t.Fatalf("Close changed the Maildir:\n%q\n%q", keys(before), keys(after))
	}
	// A cancelled context at Commit changes nothing either.
	mb = openMB(t, dir, Options{MarkRead: true})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := mb.Commit(ctx, []int{0}, []int{1}); err == nil {
		t.Fatal("Commit with a cancelled context succeeded")
	}
	if after := tree(t, dir, true); !reflect.DeepEqual(before, after) {
		t.Fatalf("cancelled Commit changed the Maildir")
	}
}

// TestCommitPartialFailure: an unlink that fails is counted, and the other
// messages are still removed. The failure is a directory the session's
// user cannot write (cur/, mode 0500), so that the file keeps its inode:
// a name now holding another file would be a message gone, not a failure.
// As root, where permissions do not apply, the session runs as nobody.
func TestCommitPartialFailure(t *testing.T) {
	dir := newMaildir(t)
	for i := range 4 {
		sub, name := "new", "170000000"+string(rune('0'+i))+".m.mx"
		if i == 1 {
			sub, name = "cur", name+":2,S"
		}
		put(t, dir, sub, name, "x\n")
	}
	if err := os.Chmod(filepath.Join(dir, "cur"), 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(filepath.Join(dir, "cur"), 0o700)
	var out string
	if os.Geteuid() != 0 {
		out = partialFailureSession(dir)
	} else {
		giveToNobody(t, dir)
		out = runAsNobody(t, "partial-failure", dir)
	}
	if !strings.HasSuffix(out, "NotRemoved=1\n") {
		t.Fatalf("Commit: %s\nwant a *CommitError with NotRemoved 1", out)
	}
	got := keys(tree(t, dir, true))
	want := []string{"./", "cur/", "cur/1700000001.m.mx:2,S", "new/", "new/1700000003.m.mx", "tmp/"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

// partialFailureSession is the session of TestCommitPartialFailure; it
// reports the CommitError's count.
func partialFailureSession(dir string) string {
	mb, err := Open(context.Background(), dir, Options{})
	if err != nil {
		return fmt.Sprintln("Open:", err)
	}
	err = mb.Commit(context.Background(), []int{0, 1, 2}, nil)
	var ce *CommitError
	if !errors.As(err, &ce) {
		return fmt.Sprintln("Commit:", err)
	}
	return fmt.Sprintf("%v\nNotRemoved=%d\n", err, ce.NotRemoved)
}

// TestVanishedMessagesShareListings is the review's S1: a client fetching
// many messages deleted under it must not make each relist the Maildir,
// while a message renamed again after a listing is still found.
func TestVanishedMessagesShareListings(t *testing.T) {
	dir := newMaildir(t)
	const n = 20
	for i := range n {
		put(t, dir, "new", fmt.Sprintf("17000000%02d.m.mx", i), "gone\n")
	}
	put(t, dir, "new", "1700000099.moved.mx", "moved\n")
	mb := openMB(t, dir, Options{})
	defer mb.Close()
	// Another program renames the last message, and deletes the rest.
	mv := func(from, to string) {
		t.Helper()
		if err := os.Rename(filepath.Join(dir, from), filepath.Join(dir, to)); err != nil {
			t.Fatal(err)
		}
	}
	mv("new/1700000099.moved.mx", "cur/1700000099.moved.mx:2,S")
	if got := readMsg(t, mb, n); got != "moved\n" {
		t.Fatalf("renamed message read %q", got)
	}
	for i := range n {
		os.Remove(filepath.Join(dir, "new", fmt.Sprintf("17000000%02d.m.mx", i)))
	}
	before := mb.relists
	for i := range n {
		if _, err := mb.Open(i); !errors.Is(err, ErrMessageGone) {
			t.Fatalf("Open(%d) of a deleted message: %v, want ErrMessageGone", i, err)
		}
	}
	if k := mb.relists - before; k >= n/2 {
		t.Errorf("%d deleted messages relisted the Maildir %d times", n, k)
	}
	// Renamed again: the recent listing is out of date for it.
	mv("cur/1700000099.moved.mx:2,S", "cur/1700000099.moved.mx:2,FS")
	if got := readMsg(t, mb, n); got != "moved\n" {
		t.Fatalf("message renamed twice read %q", got)
	}
}
