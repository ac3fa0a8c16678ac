package maildir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseDovecotUIDList(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		nrecs   int
		damaged bool
		nilList bool
		check   func(t *testing.T, l *dovecotUIDList)
	}{
		{name: "v3", in: "3 V3000000000 N4294967290 Gabc\n1 :a:2,S\n2 P :b,S=4,W=5\n4294967294 Pxyz G1 W9 :c\n", nrecs: 3,
			check: func(t *testing.T, l *dovecotUIDList) {
				if l.uidValidity != 3000000000 || l.recs["c"].uid != 4294967294 || l.recs["c"].pop3 != "xyz" || l.recs["c"].guid != "1" {
					t.Errorf("%+v", l)
				}
				if r := l.recs["b,S=4,W=5"]; !r.hasP || r.pop3 != "" {
					t.Errorf("empty P: %+v", r)
				}
			}},
		{name: "v1", in: "1 77 9\n3 x.host\n", nrecs: 1},
		{name: "bad extension skipped", in: "3 V1 N5\n1 p1 W3 :a\n", nrecs: 1},
		{name: "truncated last line", in: "3 V1 N5\n1 :a\n2 :b", nrecs: 1, damaged: true},
		{name: "unordered", in: "3 V1 N5\n2 :a\n1 :b\n", nrecs: 1, damaged: true},
		{name: "uid too high", in: "3 V1 N5\n4294967295 :a\n", nrecs: 0, damaged: true},
		{name: "uid overflow", in: "3 V1 N5\n99999999999 :a\n", nrecs: 0, damaged: true},
		{name: "slash", in: "3 V1 N5\n1 :../x\n", nrecs: 0, damaged: true},
		{name: "no name", in: "3 V1 N5\n1 W4\n", nrecs: 0, damaged: true},
		{name: "garbage", in: "\x00\xff garbage\n", nilList: true},
		{name: "no header", in: "3 V1 N5", nilList: true},
		{name: "zero uidvalidity", in: "3 V0 N5\n", nilList: true},
		{name: "uidvalidity overflow", in: "3 V4294967296 N5\n", nilList: true},
		{name: "version 2", in: "2 V1 N5\n", nilList: true},
		{name: "empty", in: "", nilList: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := parseDovecotUIDList([]byte(tt.in))
			if tt.nilList {
				if l != nil || err == nil {
					t.Fatalf("got %+v, %v; want nil and an error", l, err)
				}
				return
			}
			if l == nil {
				t.Fatalf("nil list: %v", err)
			}
			if (err != nil) != tt.damaged || (err != nil && !errors.Is(err, errLegacyDamaged)) {
				t.Errorf("err = %v, damaged %v", err, tt.damaged)
			}
			if len(l.recs) != tt.nrecs {
				t.Errorf("%d records, want %d: %+v", len(l.recs), tt.nrecs, l.recs)
			}
			if tt.check != nil {
				tt.check(t, l)
			}
		})
	}
}

func TestDovecotFormatExpand(t *testing.T) {
	tests := []struct{ format, want string }{
		{"%08Xu%08Xv", "0000002a6b0fac5c"},
		{"%u", "42"},
		{"%3v", "179"},
		{"%-3.2v", "27"},
		{"%2.-1f", "st.base"[2:6]},
		{"%Uf", "ST.BASE"},
		{"%XXu", "0"},
		{"%g", "gid"},
		{"%%%u", "%42"},
		{"%u%", "42"},
		{"%Mu", "a1d0c6e83f027327d8461063f4ac58a6"},
	}
	for _, tt := range tests {
		f, err := ParseDovecotFormat(tt.format)
		if err != nil {
			t.Fatalf("%s: %v", tt.format, err)
		}
		got, err := f.Expand(42, 1796189276, "st.base", "gid")
		if err != nil || got != tt.want {
			t.Errorf("%s = %q, %v; want %q", tt.format, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "abc", "%z%u", "%{uid}", "%u%{uid}", "%08", "%u%0"} {
		if _, err := ParseDovecotFormat(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := ParseDovecotFormat("%m-%u"); !errors.Is(err, ErrDovecotMD5) {
		t.Errorf("%%m: %v", err)
	}
}

func TestParseCourierSizeList(t *testing.T) {
	l, err := parseCourierSizeList([]byte("/3 20 1700000000\n" +
		"a.host:2,S 10 5:1700000000:0\n" +
		"b.host 10 6:0:0\n" +
		"c +'\".host:2, 10 0:7:0\n" +
		"d.host:2, 10 18446744073709551615:1:0\n" +
		"bad\n" +
		"e.host:2, x 1:2:0\n" +
		"f.host:2, 10 9:9\n"))
	if l == nil || !errors.Is(err, errLegacyDamaged) {
		t.Fatalf("%v, %v", l, err)
	}
	for key, want := range map[string]string{
		"a.host:":      "UID5-1700000000",
		"b.host":       "UID6",
		"c +'\".host:": "c+20+2B+27+22.host",
		"d.host:":      "UID18446744073709551615-1",
		"f.host:":      "UID9-9",
	} {
		r, ok := l.recs[key]
		if !ok {
			t.Errorf("%q not read", key)
			continue
		}
		if got := r.uidl(baseName(key)); got != want {
			t.Errorf("%q: %q, want %q", key, got, want)
		}
	}
	if len(l.recs) != 5 {
		t.Errorf("%d records: %v", len(l.recs), l.recs)
	}
	for _, bad := range []string{"", "/1 2 3\n", "3 4 5\n", "/3\n", "/3 x 5\n"} {
		if l, err := parseCourierSizeList([]byte(bad)); l != nil || err == nil {
			t.Errorf("%q: %v, %v", bad, l, err)
		}
	}
}

func TestParseMaildirSize(t *testing.T) {
	q, err := parseMaildirSize([]byte("1000S,10C\n 100 2\n-50 -1\n"))
	if err != nil || q.quotaBytes != 1000 || q.quotaCount != 10 || q.bytes != 50 || q.count != 1 || q.lines != 2 {
		t.Fatalf("%+v, %v", q, err)
	}
	for _, bad := range []string{"", "1000S", "1000X\n", "1000S\n1\n", "1000S\n1 2", "1000S\na b\n", "-5S\n"} {
		if _, err := parseMaildirSize([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if got := quotaSize("1.M2.h,S=1234,W=1260:2,S", 99); got != 1234 {
		t.Errorf("quotaSize with ,S= = %d", got)
	}
	if got := quotaSize("1.M2.h:2,S", 99); got != 99 {
		t.Errorf("quotaSize without ,S= = %d", got)
	}
}

func TestUIDLRecordRoundTrip(t *testing.T) {
	in := map[string]recordedUIDL{"a b%": {uidl: "x y", src: SrcDovecotP}, "c": {uidl: "UID1-2", src: SrcCourier}}
	out, err := parseUIDLRecord(formatUIDLRecord(in))
	if err != nil || !sameRecord(in, out) {
		t.Fatalf("%v, %v", out, err)
	}
	damaged := append(formatUIDLRecord(in), "junk\nd e\n"...)
	out, err = parseUIDLRecord(damaged)
	if !errors.Is(err, errRecordDamaged) || !sameRecord(in, out) {
		t.Fatalf("damaged: %v, %v", out, err)
	}
}

func TestQuotaAppendOnCommit(t *testing.T) {
	dir := newMaildir(t)
	put(t, dir, "cur", "1700000001.a.host,S=100:2,S", "x\n")
	put(t, dir, "cur", "1700000002.b.host:2,S", "four\n")
	put(t, dir, "cur", "1700000003.c.host:2,S", "kept\n")
	ms := filepath.Join(dir, maildirSizeName)
	if err := os.WriteFile(ms, []byte("1000000S,100C\n105 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mb := openMB(t, dir, Options{})
	if err := mb.Commit(t.Context(), []int{0, 1}, nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(ms)
	if string(b) != "1000000S,100C\n105 3\n-105 -2\n" {
		t.Errorf("maildirsize = %q", b)
	}
	// Nothing removed: nothing appended.
	mb = openMB(t, dir, Options{})
	if err := mb.Commit(t.Context(), nil, nil); err != nil {
		t.Fatal(err)
	}
	if b2, _ := os.ReadFile(ms); string(b2) != string(b) {
		t.Errorf("appended without removal: %q", b2)
	}
	// Malformed: left alone.
	os.WriteFile(ms, []byte("garbage"), 0o600)
	mb = openMB(t, dir, Options{})
	if err := mb.Commit(t.Context(), []int{0}, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(ms); string(b) != "garbage" {
		t.Errorf("malformed maildirsize changed: %q", b)
	}
	// No maildirsize: none created.
	dir2 := newMaildir(t)
	put(t, dir2, "cur", "1.x:2,S", "x\n")
	mb = openMB(t, dir2, Options{})
	mb.Commit(t.Context(), []int{0}, nil)
	if _, err := os.Stat(filepath.Join(dir2, maildirSizeName)); err == nil {
		t.Error("maildirsize created")
	}
}

func TestTmpCleanup(t *testing.T) {
	dir := newMaildir(t)
	old := time.Now().Add(-TmpMaxAge - time.Hour)
	for _, n := range []string{"old1", "old2", ".dot", "fresh"} {
		put(t, dir, "tmp", n, "x")
		if n != "fresh" {
			os.Chtimes(filepath.Join(dir, "tmp", n), old, old)
		}
	}
	os.Mkdir(filepath.Join(dir, "tmp", "olddir"), 0o700)
	os.Chtimes(filepath.Join(dir, "tmp", "olddir"), old, old)
	os.Symlink("/etc/passwd", filepath.Join(dir, "tmp", "oldlink"))
	mb := openMB(t, dir, Options{KeepTmp: true})
	mb.Close()
	if mb.TmpRemoved() != 0 {
		t.Fatal("KeepTmp removed files")
	}
	mb = openMB(t, dir, Options{})
	mb.Close()
	left := tree(t, filepath.Join(dir, "tmp"), false)
	if _, ok := left["old1"]; ok || mb.TmpRemoved() < 2 {
		t.Errorf("removed %d, left %v", mb.TmpRemoved(), keys(left))
	}
	for _, keep := range []string{".dot", "fresh", "olddir/"} {
		if _, ok := left[keep]; !ok {
			t.Errorf("%s removed", keep)
		}
	}
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Fatal("symlink target touched")
	}
}

func FuzzParseDovecotUIDList(f *testing.F) {
	f.Add([]byte("3 V1 N5 Gx\n1 P G2 :a:2,S\n2 :b\n"))
	f.Add([]byte("1 77 9\n3 x.host\n"))
	f.Add([]byte("3 V4294967295 N1\n4294967294 Pq :z\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := parseDovecotUIDList(b)
		if l == nil && err == nil {
			t.Fatal("nil list without error")
		}
		if l != nil {
			for base, r := range l.recs {
				if r.uid == 0 || strings.ContainsAny(base, ":/\n") {
					t.Fatalf("bad record %q %+v", base, r)
				}
			}
		}
	})
}

func FuzzParseCourierSizeList(f *testing.F) {
	f.Add([]byte("/3 20 1700000000\na:2,S 10 5:1700000000:0\nb 1 0:0\n"))
	f.Add([]byte("/2 5\nx y 1 2:3\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := parseCourierSizeList(b)
		if l == nil && err == nil {
			t.Fatal("nil list without error")
		}
		if l != nil {
			for k, r := range l.recs {
				if u := r.uidl(baseName(k)); r.uid == 0 && strings.ContainsAny(u, " \r\n'\"") {
					t.Fatalf("unescaped name form %q", u)
				}
			}
		}
	})
}

func FuzzDovecotFormat(f *testing.F) {
	for _, s := range []string{"%08Xu%08Xv", "%-3.2f", "%{uid}%v", "%5.Hu", "%4Nu", "%LRUf", "%u%", "%%%g", "%99999999999u"} {
		f.Add(s, uint32(7), uint32(3000000000), "1.M2.host,S=3", "")
	}
	f.Fuzz(func(t *testing.T, format string, uid, uv uint32, base, guid string) {
		fm, err := ParseDovecotFormat(format)
		if err != nil {
			return
		}
		if _, err := fm.Expand(uid, uv, base, guid); err != nil {
			t.Fatalf("%q accepted but not expanded: %v", format, err)
		}
	})
}

func FuzzParseMaildirSize(f *testing.F) {
	f.Add([]byte("1000S,10C\n 100 2\n-50 -1\n"))
	f.Add([]byte("0S\n9223372036854775807 1\n1 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := parseMaildirSize(b)
		if err == nil && (q.quotaBytes < 0 || q.quotaCount < 0) {
			t.Fatalf("negative quota %+v", q)
		}
	})
}

func FuzzParseUIDLRecord(f *testing.F) {
	f.Add(formatUIDLRecord(map[string]recordedUIDL{"a b": {uidl: "x%y", src: SrcCourier}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, _ := parseUIDLRecord(b)
		if m == nil {
			return
		}
		again, err := parseUIDLRecord(formatUIDLRecord(m))
		if err != nil || !sameRecord(m, again) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
