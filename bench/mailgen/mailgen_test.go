package mailgen

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestWire(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"a", "a\r\n"},
		{"a\n", "a\r\n"},
		{"a\r\n", "a\r\n"},
		{"\n", "\r\n"},
		{"a\rb", "a\rb\r\n"},
		{"a\r", "a\r\r\n"},
		{"x\n\ny\r\n.\n", "x\r\n\r\ny\r\n.\r\n"},
	}
	for _, tt := range tests {
		got := Wire([]byte(tt.in))
		if string(got) != tt.want {
			t.Errorf("Wire(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if n := WireSize([]byte(tt.in)); n != int64(len(tt.want)) {
			t.Errorf("WireSize(%q) = %d, want %d", tt.in, n, len(tt.want))
		}
	}
}

func FuzzWire(f *testing.F) {
	for _, s := range []string{"", "a", "a\r\n", "\r", "\n\n.", "a\rb\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		w := Wire(b)
		if int64(len(w)) != WireSize(b) {
			t.Fatalf("len(Wire) = %d, WireSize = %d", len(w), WireSize(b))
		}
		for i, c := range w {
			if c == '\n' && (i == 0 || w[i-1] != '\r') {
				t.Fatalf("bare LF at %d in %q", i, w)
			}
		}
		if len(b) > 0 && !bytes.HasSuffix(w, []byte("\r\n")) {
			t.Fatalf("no final CRLF in %q", w)
		}
		// Without the CRs before LFs, the wire form is the file plus a final
		// LF when the file lacks one.
		want := bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
		if len(b) > 0 && b[len(b)-1] != '\n' {
			want = append(want, '\n')
		}
		if got := bytes.ReplaceAll(w, []byte("\r\n"), []byte("\n")); !bytes.Equal(got, want) {
			t.Fatalf("content changed for %q: %q", b, w)
		}
	})
}

func TestDeterministic(t *testing.T) {
	a, b := New(7), New(7)
	for i := range 50 {
		n1, u1, c1 := a.Message(3, i)
		n2, u2, c2 := b.Message(3, i)
		if n1 != n2 || u1 != u2 || !bytes.Equal(c1, c2) {
			t.Fatalf("message %d differs between two generators with the same seed", i)
		}
	}
	_, _, c1 := a.Message(3, 0)
	_, _, c2 := New(8).Message(3, 0)
	if bytes.Equal(c1, c2) {
		t.Fatal("different seeds gave the same message")
	}
}

func TestMix(t *testing.T) {
	g := New(1)
	const n = 2000
	var big, dotLines, inNew, dovecotNames int
	seen := map[string]bool{}
	for i := range n {
		name, unique, c := g.Message(0, i)
		if seen[unique] {
			t.Fatalf("duplicate unique name %q", unique)
		}
		seen[unique] = true
		if len(unique) > 70 {
			t.Errorf("unique name %q longer than 70", unique)
		}
		if !strings.HasPrefix(name, "new/"+unique) && !strings.HasPrefix(name, "cur/"+unique+":2,") {
			t.Errorf("name %q does not fit unique %q", name, unique)
		}
		if strings.HasPrefix(name, "new/") {
			inNew++
		}
		if strings.Contains(unique, ",W=") {
			dovecotNames++
		}
		if bytes.IndexByte(c, '\r') >= 0 || c[len(c)-1] != '\n' {
			t.Fatalf("message %d is not LF-terminated text", i)
		}
		if len(c) < 1500 {
			t.Errorf("message %d only %d bytes", i, len(c))
		}
		if len(c) > 50e3 {
			big++
		}
		if bytes.Contains(c, []byte("\n.")) {
			dotLines++
		}
	}
	if big < n/20 || big > n/6 {
		t.Errorf("%d of %d messages over 50 KB, want about 10%%", big, n)
	}
	if dotLines < n/2 {
		t.Errorf("only %d of %d messages have lines starting with '.'", dotLines, n)
	}
	if inNew < n/40 || inNew > n/10 {
		t.Errorf("%d of %d messages in new/, want about 5%%", inNew, n)
	}
	if dovecotNames < n/3 || dovecotNames > 2*n/3 {
		t.Errorf("%d of %d Dovecot-style names, want about half", dovecotNames, n)
	}
}

func TestWriteMaildir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Maildir")
	g := New(2)
	msgs, err := g.WriteMaildir(dir, 5, 0, 40, 3, Owner{UID: -1})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 40 {
		t.Fatalf("got %d messages, want 40", len(msgs))
	}
	for i, m := range msgs {
		b, err := os.ReadFile(filepath.Join(dir, m.Name))
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) != m.DiskSize || WireSize(b) != m.WireSize {
			t.Errorf("message %d: sizes %d/%d, file has %d/%d", i, m.DiskSize, m.WireSize, len(b), WireSize(b))
		}
		if strings.Contains(m.Unique, ",W=") && !strings.Contains(m.Unique, ",W="+strconv.FormatInt(m.WireSize, 10)) {
			t.Errorf("message %d: name %q has the wrong W=", i, m.Unique)
		}
		st, err := os.Stat(filepath.Join(dir, m.Name))
		if err != nil {
			t.Fatal(err)
		}
		if st.ModTime().Unix() != deliveryTime(m.Unique) {
			t.Errorf("message %d: mtime %v does not match name %q", i, st.ModTime(), m.Unique)
		}
	}
	for _, sub := range []string{"tmp", "new", "cur"} {
		if st, err := os.Stat(filepath.Join(dir, sub)); err != nil || !st.IsDir() {
			t.Errorf("%s missing: %v", sub, err)
		}
	}
}
