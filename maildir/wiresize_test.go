package maildir

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"testing/iotest"
)

// wireForm is the wire form W(file) written out literally from its
// definition, as the reference for WireSize.
func wireForm(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/8+2)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		out = append(out, '\r', '\n')
	}
	return out
}

func TestWireSize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int64
	}{
		{"empty", "", 0},
		{"lf", "a\nb\n", 6},
		{"crlf", "a\r\nb\r\n", 6},
		{"no final newline", "a\nb", 6},
		{"no newline at all", "abc", 5},
		{"bare cr inside", "a\rb\n", 5},
		{"bare cr at end", "a\r", 4},
		{"cr cr lf", "a\r\r\n", 4},
		{"only lf", "\n", 2},
		{"only crlf", "\r\n", 2},
		{"only cr", "\r", 3},
		{"lf lf", "\n\n", 4},
		{"mixed", "h: v\r\nx: y\n\r\nbody\nend", 4 + 2 + 4 + 2 + 2 + 4 + 2 + 3 + 2},
		{"dot lines are not stuffed in the size", ".\n..\n", 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ref := int64(len(wireForm([]byte(tt.in)))); ref != tt.want {
				t.Fatalf("table wrong: reference gives %d, table %d", ref, tt.want)
			}
			got, err := WireSize(strings.NewReader(tt.in))
			if err != nil || got != tt.want {
				t.Errorf("WireSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
			// CR and LF split across reads must count the same.
			got, err = WireSize(iotest.OneByteReader(strings.NewReader(tt.in)))
			if err != nil || got != tt.want {
				t.Errorf("WireSize(one byte at a time %q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestWireSizeLarge(t *testing.T) {
	// 20 MB with CRLF pairs straddling the 32 KiB read boundary.
	var b bytes.Buffer
	b.Grow(21 << 20)
	line := strings.Repeat("x", 32<<10-1) + "\r\n" + strings.Repeat("y", 77) + "\n"
	for b.Len() < 20<<20 {
		b.WriteString(line)
	}
	b.WriteString("tail")
	want := int64(len(wireForm(b.Bytes())))
	got, err := WireSize(bytes.NewReader(b.Bytes()))
	if err != nil || got != want {
		t.Fatalf("WireSize(20 MB) = %d, %v; want %d", got, err, want)
	}
}

func TestWireSizeReadError(t *testing.T) {
	boom := errors.New("boom")
	if _, err := WireSize(iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
}

func FuzzWireSize(f *testing.F) {
	for _, s := range []string{"", "a", "\n", "\r", "\r\n", "a\r\r\n", "x\ny\r\nz", "\n\r\n\r"} {
		f.Add([]byte(s), uint16(1))
	}
	f.Fuzz(func(t *testing.T, b []byte, chunk uint16) {
		want := int64(len(wireForm(b)))
		got, err := WireSize(iotest.HalfReader(bytes.NewReader(b)))
		if err != nil || got != want {
			t.Fatalf("WireSize(%q) = %d, %v; want %d", b, got, err, want)
		}
		// Any chunking of the input gives the same count.
		var w wireCounter
		n := int(chunk%64) + 1
		for p := b; len(p) > 0; {
			k := min(n, len(p))
			w.write(p[:k])
			p = p[k:]
		}
		if w.size() != want {
			t.Fatalf("chunks of %d: %d, want %d", n, w.size(), want)
		}
	})
}
