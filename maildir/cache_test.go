package maildir

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
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
	if err := writeCache(dir, in); err != nil {
		t.Fatal(err)
	}
	recs, err := readCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := entries(recs); !reflect.DeepEqual(got, in[:2]) {
		t.Fatalf("got %+v\nwant %+v", got, in[:2])
	}
	if _, err := os.Stat(filepath.Join(dir, cacheTmpName)); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
	if err := writeCache(dir, nil); err != nil {
		t.Fatal(err)
	}
	if recs, err := readCache(dir); err != nil || len(recs) != 0 {
		t.Fatalf("empty cache: %d %v", len(recs), err)
	}
}

// withCRC appends a valid checksum to body.
func withCRC(body []byte) []byte {
	return binary.LittleEndian.AppendUint32(append([]byte(nil), body...), crc32.Checksum(body, castagnoli))
}

func TestCacheCorrupt(t *testing.T) {
	dir := t.TempDir()
	if err := writeCache(dir, []cacheEntry{{ts: 1, ino: 2, h: 3, dsize: 3, mtime: 4, wsize: 5}}); err != nil {
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
	writeCache(dir, []cacheEntry{{ts: 1, ino: 2, h: 3, dsize: 3, mtime: 4, wsize: 5}, {ts: 2, wsize: 1}})
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
