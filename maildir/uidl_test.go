package maildir

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestUID(t *testing.T) {
	long := "1700000001.M402937P9187.a-very-long-host-name.in.some.example.com,S=1234,W=1260"
	tests := []struct {
		uniq string
		ok   bool
	}{
		{"1700000000.4321.mx", true},
		{strings.Repeat("a", 70), true},
		{strings.Repeat("a", 71), false},
		{long, false},
		{"has space", false},
		{"tab\tx", false},
		{"ünï", false},
		{"", false},
		{"!~", true},
	}
	for _, tt := range tests {
		if got := uidOK(tt.uniq); got != tt.ok {
			t.Errorf("uidOK(%q) = %v, want %v", tt.uniq, got, tt.ok)
		}
	}
	d := derivedUID(long)
	if !uidOK(d) || d != derivedUID(long) || d == derivedUID(long+"x") {
		t.Errorf("derivedUID not a stable valid id: %q", d)
	}
}

func TestDuplicateUniqueNames(t *testing.T) {
	dir := newMaildir(t)
	put(t, dir, "new", "1700000000.same.mx", "one\n")
	// The same file under both names (caught mid-move by another reader).
	os.Link(filepath.Join(dir, "new", "1700000000.same.mx"), filepath.Join(dir, "cur", "1700000000.same.mx:2,S"))
	// Two different files sharing a unique name.
	put(t, dir, "new", "1700000001.twin.mx", "a\n")
	put(t, dir, "cur", "1700000001.twin.mx:2,F", "b\n")
	mb := openMB(t, dir, Options{})
	u := uids(mb)
	if len(u) != 3 {
		t.Fatalf("UIDs %q, want 3 messages", u)
	}
	seen := map[string]bool{}
	for _, x := range u {
		if seen[x] || !uidOK(x) {
			t.Fatalf("UIDs not unique or not valid: %q", u)
		}
		seen[x] = true
	}
	// Deleting the doubly linked message removes both names; the twins
	// are separate messages.
	if err := mb.Commit(context.Background(), []int{0, 1}, nil); err != nil {
		t.Fatal(err)
	}
	got := keys(tree(t, dir, true))
	want := []string{"./", "cur/", "new/", "tmp/"}
	if mb.UID(1) == "1700000001.twin.mx" { // the cur/ twin sorts first
		want = []string{"./", "cur/", "new/", "new/1700000001.twin.mx", "tmp/"}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("after deleting: %q, want %q", got, want)
	}
}

// TestLegacyUIDLsInMailbox covers the whole scheme on a Maildir: Dovecot's
// UIDLs win over pop3d's own, survive the removal of dovecot-uidlist and of
// the size cache, a damaged record is rebuilt, and a pop3d UIDL equal to a
// legacy one is moved aside.
func TestLegacyUIDLsInMailbox(t *testing.T) {
	dir := newMaildir(t)
	put(t, dir, "cur", "1700000001.a.host:2,S", "Subject: a\n\nx\n")
	put(t, dir, "new", "1700000002.b.host", "Subject: b\n\nx\n")
	put(t, dir, "new", "1700000003.c.host", "Subject: c\n\nx\n") // not listed
	put(t, dir, "new", "saved-p", "Subject: d\n\nx\n")           // its name is a P value
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(dovecotUIDListName, "3 V1796189276 N10 Gx\n1 :1700000001.a.host\n2 Psaved-p :1700000002.b.host\n")
	want := map[string][2]string{
		"1700000001.a.host": {"000000016b0fac5c", SrcDovecotFormat},
		"1700000002.b.host": {"saved-p", SrcDovecotP},
		"1700000003.c.host": {"1700000003.c.host", SrcPOP3d},
	}
	check := func(step string) {
		t.Helper()
		mb := openMB(t, dir, Options{})
		defer mb.Close()
		seen := map[string]bool{}
		for i := range mb.Len() {
			u := mb.UID(i)
			if seen[u] {
				t.Errorf("%s: UIDL %q twice", step, u)
			}
			seen[u] = true
			base := mb.uniq(&mb.msgs[i])
			if base == "saved-p" {
				if u == "saved-p" || mb.UIDSource(i) != SrcPOP3d {
					t.Errorf("%s: clash not moved aside: %q %s", step, u, mb.UIDSource(i))
				}
				continue
			}
			if w := want[base]; u != w[0] || mb.UIDSource(i) != w[1] {
				t.Errorf("%s: %s: %q from %s, want %q from %s", step, base, u, mb.UIDSource(i), w[0], w[1])
			}
		}
	}
	check("with dovecot-uidlist")
	clash := func() string {
		mb := openMB(t, dir, Options{})
		defer mb.Close()
		for i := range mb.Len() {
			if mb.uniq(&mb.msgs[i]) == "saved-p" {
				return mb.UID(i)
			}
		}
		return ""
	}
	before := clash()
	os.Remove(filepath.Join(dir, dovecotUIDListName))
	os.Remove(filepath.Join(dir, cacheName))
	check("after rm dovecot-uidlist and cache")
	if after := clash(); after != before {
		t.Errorf("moved-aside UIDL changed: %q -> %q", before, after)
	}
	// A damaged record: the damaged line is lost, the rest kept and the
	// file rewritten.
	b, _ := os.ReadFile(filepath.Join(dir, uidlRecordName))
	write(uidlRecordName, string(b)+"garbage\n")
	check("damaged record")
	if b2, _ := os.ReadFile(filepath.Join(dir, uidlRecordName)); strings.Contains(string(b2), "garbage") {
		t.Errorf("damaged record not rewritten: %q", b2)
	}
	// uidl_legacy = none ignores the legacy files, never the record.
	mb := openMB(t, dir, Options{Legacy: LegacyNone})
	mb.Close()
}

func TestCourierNameFormWithoutSizeList(t *testing.T) {
	dir := newMaildir(t)
	put(t, dir, "cur", "1700000001.a+b.host:2,S", "x\n")
	mb := openMB(t, dir, Options{Legacy: LegacyCourier})
	defer mb.Close()
	if got := mb.UID(0); got != "1700000001.a+2Bb.host" || mb.UIDSource(0) != SrcCourier {
		t.Errorf("%q from %s", got, mb.UIDSource(0))
	}
}
