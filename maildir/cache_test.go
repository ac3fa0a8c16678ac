package maildir

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"
)

func entries(recs []byte) []cacheEntry {
	var out []cacheEntry
	for k := range len(recs) / recSize {
		out = append(out, record(recs, k))
	}
	return out
}

func TestCacheRoundTrip(t *testing.T) {
	dir := t.TempDir()
	in := []cacheEntry{
		{ts: 1, ino: 2, h: nameHash("1.a.host"), dsize: 3, mtime: 4, wsize: 5},
		{ts: 1700000000, ino: 1 << 63, h: 1<<64 - 1, dsize: 20 << 20, mtime: 1700000000123456789, wsize: 21 << 20},
		{ts: 5, ino: 6, wsize: -1}, // not writable: skipped
	}
	if err := writeCacheDir(t, dir, in); err != nil {
		t.Fatal(err)
	}
	recs, err := readCacheDir(t, dir, maxCacheSize)
	if err != nil {
		t.Fatal(err)
	}
	if got := entries(recs); !reflect.DeepEqual(got, in[:2]) {
		t.Fatalf("got %+v\nwant %+v", got, in[:2])
	}
	if _, err := os.Stat(filepath.Join(dir, cacheTmpName)); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
	if err := writeCacheDir(t, dir, nil); err != nil {
		t.Fatal(err)
	}
	if recs, err := readCacheDir(t, dir, maxCacheSize); err != nil || len(recs) != 0 {
		t.Fatalf("empty cache: %d %v", len(recs), err)
	}
}

// withCRC appends a valid checksum to body.
func withCRC(body []byte) []byte {
	return binary.LittleEndian.AppendUint32(append([]byte(nil), body...), crc32.Checksum(body, castagnoli))
}

func TestCacheCorrupt(t *testing.T) {
	dir := t.TempDir()
	if err := writeCacheDir(t, dir, []cacheEntry{{ts: 1, ino: 2, h: 3, dsize: 3, mtime: 4, wsize: 5}}); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(dir, cacheName))
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), good...)
	flipped[len(cacheMagic)+4+40] ^= 1 // a bit of the wire size
	oldVersion := append([]byte(nil), good...)
	oldVersion[len(cacheMagic)-2] = '2'
	badCount := append([]byte(nil), good[:len(good)-4]...)
	badCount[len(cacheMagic)] = 2
	tests := map[string][]byte{
		"empty":          nil,
		"magic only":     []byte(cacheMagic),
		"flipped bit":    flipped,
		"truncated":      good[:len(good)-3],
		"other version":  oldVersion,
		"text garbage":   []byte("pop3d-cache 1\n1 2 3 4 5 x\ncrc32c 00000000\n"),
		"count mismatch": withCRC(badCount),
		"partial record": withCRC(append(append([]byte(nil), good[:len(good)-4]...), 1, 2, 3)),
	}
	for name, content := range tests {
		if _, err := parseCache(content); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

func TestNameHash(t *testing.T) {
	seen := map[uint64]string{}
	for _, s := range []string{"", "a", "b", "ab", "ba", "1700000000.M1P1.mx", "1700000000.M1P2.mx",
		"12345678", "123456789", "1234567\x00", "1234567"} {
		h := nameHash(s)
		if o, dup := seen[h]; dup {
			t.Errorf("nameHash(%q) == nameHash(%q)", s, o)
		}
		seen[h] = s
	}
	// The cache outlives the binary: the hash must never change.
	if got, want := nameHash("1700000000.M1P1.mx"), uint64(0x8fff72378009db8a); got != want {
		t.Errorf("nameHash changed: %#x, was %#x", got, want)
	}
}

func FuzzParseCache(f *testing.F) {
	dir := f.TempDir()
	writeCacheDir(f, dir, []cacheEntry{{ts: 1, ino: 2, h: 3, dsize: 3, mtime: 4, wsize: 5}, {ts: 2, wsize: 1}})
	good, _ := os.ReadFile(filepath.Join(dir, cacheName))
	f.Add(good)
	f.Add([]byte(cacheMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, in := range [][]byte{b, withCRC(b)} {
			recs, err := parseCache(in)
			if err != nil {
				continue
			}
			if len(recs)%recSize != 0 {
				t.Fatalf("records of %d bytes", len(recs))
			}
			entries(recs) // must not panic
		}
	})
}

// TestCacheOversizedIgnored is the review's S6: the cache file is writable
// by the mailbox's owner, and its size must not decide what a login
// allocates.
func TestCacheOversizedIgnored(t *testing.T) {
	dir := newMaildir(t)
	put(t, dir, "new", "1700000000.a.mx", "a\n")
	put(t, dir, "new", "1700000001.b.mx", "bb\n")
	want := []int64{3, 4}
	openMB(t, dir, Options{}).Close()
	p := filepath.Join(dir, cacheName)

	// A valid cache with far more records than the Maildir has messages.
	ents := make([]cacheEntry, 1000)
	for k := range ents {
		ents[k] = cacheEntry{ts: int64(k), ino: uint64(k), h: uint64(k), wsize: 1}
	}
	if err := writeCacheDir(t, dir, ents); err != nil {
		t.Fatal(err)
	}
	if _, err := readCacheDir(t, dir, cacheLimit(2)); err == nil {
		t.Errorf("readCache of %d records for 2 messages succeeded", len(ents))
	}
	if _, err := readCacheDir(t, dir, cacheLimit(len(ents))); err != nil {
		t.Errorf("readCache with room for it: %v", err)
	}

	// A sparse file of 256 MiB: cheap on disk, not to be read.
	if err := os.Truncate(p, 256<<20); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	mb := openMB(t, dir, Options{})
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 16<<20 {
		t.Errorf("Open with a 256 MiB cache file allocated %d bytes", n)
	}
	for i, w := range want {
		if mb.Size(i) != w {
			t.Errorf("Size(%d) = %d, want %d", i, mb.Size(i), w)
		}
	}
	mb.Close()
	if st, err := os.Stat(p); err != nil || st.Size() > cacheLimit(2) {
		t.Errorf("cache not rewritten: %v", err)
	}
}

func TestSnapshotHint(t *testing.T) {
	for _, tt := range []struct{ in, want int64 }{
		{-1, 0},
		{0, 0},
		{4096, 4096},
		{5 << 20, 5 << 20},
		{8 << 20, 8 << 20},
		{64 << 20, 8 << 20}, // an ext4 directory that once held a million entries
		{1 << 40, 8 << 20},
	} {
		if got := snapshotHint(tt.in); got != tt.want {
			t.Errorf("snapshotHint(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
}
