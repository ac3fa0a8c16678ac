package wireform

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"testing/iotest"
)

// seeds are message shapes on which every implementation must agree: CR
// and LF in every order, dots at line starts, lines longer than a batch.
var seeds = []string{
	"", "\n", "a", "a\r\n", "\r", "a\rb\n", ".\n", "..x\n.",
	"\r\n", "\n\n", "\r\r\n", "\r\n\r\n", "a\nb", "a\r\nb\n", "a\n\r\nb\r",
	".", "..", ".\r\n.\r\n", "Subject: x\n\nbody\n.\n", "x\r",
	"\n.\n.\n", "line\rline\rline", strings.Repeat("a", 70000) + "\n", strings.Repeat("\n", 100),
	strings.Repeat("ab\r", 30000), "From: a\r\n\r\n" + strings.Repeat(".x\r\n", 2000),
	"From x\n>From y\n.\n", "H: v\n\nb1\nb2\nb3", "\r\r\n\nx",
}

// TestReference pins the reference to the rules themselves, so that all
// implementations cannot agree on a wrong answer.
func TestReference(t *testing.T) {
	tests := []struct{ in, w, stuffed string }{
		{"", "", ".\r\n"},
		{"\n", "\r\n", "\r\n.\r\n"},
		{"a", "a\r\n", "a\r\n.\r\n"},
		{"a\r\n", "a\r\n", "a\r\n.\r\n"},
		{"\r", "\r\r\n", "\r\r\n.\r\n"},
		{"a\rb\n", "a\rb\r\n", "a\rb\r\n.\r\n"},
		{".\n", ".\r\n", "..\r\n.\r\n"},
		{"..x\n.", "..x\r\n.\r\n", "...x\r\n..\r\n.\r\n"},
		{"a\r\r\nb", "a\r\r\nb\r\n", "a\r\r\nb\r\n.\r\n"},
		{"x.\n.y", "x.\r\n.y\r\n", "x.\r\n..y\r\n.\r\n"},
	}
	for _, tt := range tests {
		w := Reference([]byte(tt.in))
		if string(w) != tt.w {
			t.Errorf("Reference(%q) = %q, want %q", tt.in, w, tt.w)
		}
		if s := Stuff(w); string(s) != tt.stuffed {
			t.Errorf("Stuff(%q) = %q, want %q", w, s, tt.stuffed)
		}
	}
}

func TestTopReference(t *testing.T) {
	tests := []struct {
		in   string
		k    int
		want string
	}{
		{"", 0, "\r\n"},
		{"H: v\n\nb1\nb2\nb3", 0, "H: v\r\n\r\n"},
		{"H: v\n\nb1\nb2\nb3", 2, "H: v\r\n\r\nb1\r\nb2\r\n"},
		{"H: v\n\nb1\nb2\nb3", 9, "H: v\r\n\r\nb1\r\nb2\r\nb3\r\n"},
		{"H: v\r\n\r\n.b\r\n", 1, "H: v\r\n\r\n.b\r\n"},
		{"H: v\nno separator", 5, "H: v\r\nno separator\r\n\r\n"},
		{"H: v\r\r\nb\n", 5, "H: v\r\r\nb\r\n\r\n"},
	}
	for _, tt := range tests {
		if got := TopReference([]byte(tt.in), tt.k); string(got) != tt.want {
			t.Errorf("TopReference(%q, %d) = %q, want %q", tt.in, tt.k, got, tt.want)
		}
	}
}

// encode runs an Encoder over data in pieces of at most chunk octets (all
// at once when chunk is 0) with a batch buffer of batch octets.
func encode(t *testing.T, data []byte, chunk, batch int) ([]byte, int64) {
	t.Helper()
	var out bytes.Buffer
	e := NewEncoder(&out, make([]byte, batch))
	for p := data; len(p) > 0; {
		k := len(p)
		if chunk > 0 {
			k = min(chunk, len(p))
		}
		e.Encode(p[:k])
		p = p[k:]
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), e.N()
}

// count runs a Counter over data in pieces of at most chunk octets.
func count(data []byte, chunk int) Counter {
	var c Counter
	for p := data; len(p) > 0; {
		k := len(p)
		if chunk > 0 {
			k = min(chunk, len(p))
		}
		c.Count(p[:k])
		p = p[k:]
	}
	return c
}

// checkAgree is the agreement check: the Encoder's output is the stuffed
// reference, and the Encoder, the Counter and Size all give len(W).
func checkAgree(t *testing.T, data []byte, chunk, batch int) {
	t.Helper()
	w := Reference(data)
	got, n := encode(t, data, chunk, batch)
	if want := Stuff(w); !bytes.Equal(got, want) {
		t.Fatalf("Encoder(%q, chunk %d, batch %d):\n got %q\nwant %q", trunc(data), chunk, batch, trunc(got), trunc(want))
	}
	if n != int64(len(w)) {
		t.Fatalf("Encoder(%q).N() = %d, want %d", trunc(data), n, len(w))
	}
	c := count(data, chunk)
	if c.Size() != int64(len(w)) || c.Raw() != int64(len(data)) {
		t.Fatalf("Counter(%q, chunk %d) = %d (raw %d), want %d (raw %d)", trunc(data), chunk, c.Size(), c.Raw(), len(w), len(data))
	}
	s, err := Size(iotest.HalfReader(bytes.NewReader(data)))
	if err != nil || s != int64(len(w)) {
		t.Fatalf("Size(%q) = %d, %v; want %d", trunc(data), s, err, len(w))
	}
}

func TestAgree(t *testing.T) {
	for _, s := range seeds {
		for _, chunk := range []int{0, 1, 2, 3, 7, 4096} {
			for _, batch := range []int{1, 2, 5, 64 << 10} {
				checkAgree(t, []byte(s), chunk, batch)
			}
		}
	}
}

func TestSizeReadError(t *testing.T) {
	boom := errors.New("boom")
	if _, err := Size(iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
}

func TestEncoderWriteError(t *testing.T) {
	boom := errors.New("boom")
	e := NewEncoder(errWriter{boom}, make([]byte, 4))
	e.Encode([]byte("abcdefgh\n"))
	if err := e.Close(); !errors.Is(err, boom) || !errors.Is(e.Err(), boom) {
		t.Fatalf("Close = %v, Err = %v; want %v", err, e.Err(), boom)
	}
}

func TestEmptyLine(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", "\r\n.\r\n"}, {"a", "a\r\n\r\n.\r\n"}, {"a\n", "a\r\n\r\n.\r\n"}, {"a\r", "a\r\r\n\r\n.\r\n"},
	} {
		var out bytes.Buffer
		e := NewEncoder(&out, make([]byte, 16))
		e.Encode([]byte(tt.in))
		e.EmptyLine()
		if err := e.Close(); err != nil || out.String() != tt.want || e.N() != int64(len(tt.want)-3) {
			t.Errorf("%q + EmptyLine = %q (N %d), %v; want %q", tt.in, out.String(), e.N(), err, tt.want)
		}
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

func trunc(b []byte) []byte {
	if len(b) > 80 {
		return append(b[:80:80], "..."...)
	}
	return b
}

// FuzzAgree is the agreement fuzz: the engine's encoder, the store's size
// counter and the literal reference agree on every input, however it is
// split into reads and batches.
func FuzzAgree(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s), uint8(0), uint16(0))
	}
	f.Add([]byte("a\r"), uint8(2), uint16(2))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8, batch uint16) {
		checkAgree(t, data, int(chunk), int(batch)+1)
	})
}

func BenchmarkEncoder(b *testing.B) {
	body := []byte(strings.Repeat("The quick brown fox jumps over the lazy dog, again and again.\n.\n", 1<<17))
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		e := NewEncoder(discard{}, buf)
		e.Encode(body)
		e.Close()
	}
}

func BenchmarkCounter(b *testing.B) {
	body := []byte(strings.Repeat("The quick brown fox jumps over the lazy dog, again and again.\n.\n", 1<<17))
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var c Counter
		c.Count(body)
		_ = c.Size()
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
