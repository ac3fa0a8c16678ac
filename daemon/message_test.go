package daemon_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/pop3d/pop3d/daemon"
)

// messageShapes are bodies that end with an LF and contain no CR CR LF:
// there WriteMessage and textproto.DotWriter must agree byte for byte.
var messageShapes = []string{
	"\n",
	"a\n",
	"a\r\n",
	".\n",
	"..\n",
	".\r\n",
	"..\r\n.\r\n.\n",
	"Subject: x\n\nbody\n",
	"Subject: x\r\n\r\nbody\r\n",
	"A: b\r\nC: d\n\n.line\r\nline.\n..\n",
	"x\ry\n",
	"\r\n\r\n\n\n",
	"a\x00\xff\n",
	strings.Repeat("z", 100000) + "\n.dot\n",
	strings.Repeat(".line\r\n", 30000),
	strings.Repeat("plain line\n", 30000),
}

func dotWriter(body string) []byte {
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	dw := textproto.NewWriter(bw).DotWriter()
	io.WriteString(dw, body)
	dw.Close()
	return buf.Bytes()
}

func TestWriteMessageMatchesDotWriter(t *testing.T) {
	for _, body := range messageShapes {
		var got bytes.Buffer
		n, err := daemon.WriteMessage(&got, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if want := dotWriter(body); !bytes.Equal(got.Bytes(), want) {
			t.Errorf("body %q:\n got %q\nwant %q", trunc([]byte(body)), trunc(got.Bytes()), trunc(want))
		}
		if w := int64(len(wire([]byte(body)))); n != w {
			t.Errorf("body %q: n = %d, want %d", trunc([]byte(body)), n, w)
		}
	}
}

// TestWriteMessageDiffersFromDotWriter pins the cases where the wire form
// rules and DotWriter part ways.
func TestWriteMessageDiffersFromDotWriter(t *testing.T) {
	tests := []struct {
		body, want, dotWriter string
	}{
		{"", ".\r\n", "\r\n.\r\n"},                                 // empty body: no lines at all
		{"abc", "abc\r\n.\r\n", "abc\r\n.\r\n"},                    // agree, but only by luck of the last byte
		{"abc\r", "abc\r\r\n.\r\n", "abc\r\n.\r\n"},                // a final CR is kept and CRLF appended
		{"a\r\r\nb\n", "a\r\r\nb\r\n.\r\n", "a\r\r\r\nb\r\n.\r\n"}, // only the LF is a line break
	}
	for _, tt := range tests {
		var got bytes.Buffer
		if _, err := daemon.WriteMessage(&got, strings.NewReader(tt.body)); err != nil {
			t.Fatal(err)
		}
		if got.String() != tt.want {
			t.Errorf("WriteMessage(%q) = %q, want %q", tt.body, got.String(), tt.want)
		}
		if d := string(dotWriter(tt.body)); d != tt.dotWriter {
			t.Errorf("DotWriter(%q) = %q, expected %q: update the doc comment of WriteMessage", tt.body, d, tt.dotWriter)
		}
	}
}

// TestWriteMessageChunking feeds the same bodies one byte at a time and in
// odd chunks: state carried across reads (CR before LF, line starts) must
// not depend on where reads split.
func TestWriteMessageChunking(t *testing.T) {
	bodies := append([]string{"", "abc", "abc\r", "a\r\r\nb", "\r", "\r\n.", ".", "x\r\n.\r\n.."}, messageShapes[:13]...)
	for _, body := range bodies {
		want := string(stuff(wire([]byte(body))))
		readers := map[string]io.Reader{
			"one byte": iotest.OneByteReader(strings.NewReader(body)),
			"half":     iotest.HalfReader(strings.NewReader(body)),
			"data+EOF": iotest.DataErrReader(strings.NewReader(body)),
		}
		for name, r := range readers {
			var got bytes.Buffer
			n, err := daemon.WriteMessage(&got, r)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != want || n != int64(len(wire([]byte(body)))) {
				t.Errorf("%s %q: got %q (n=%d), want %q", name, body, got.String(), n, want)
			}
		}
	}
}

func TestWriteMessageErrors(t *testing.T) {
	boom := errors.New("boom")
	var got bytes.Buffer
	_, err := daemon.WriteMessage(&got, io.MultiReader(strings.NewReader("a\nb\n"), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) {
		t.Fatalf("read error: got %v", err)
	}
	if strings.HasSuffix(got.String(), ".\r\n") {
		t.Errorf("terminator written after a read error: %q", got.String())
	}
	_, err = daemon.WriteMessage(errWriter{boom}, strings.NewReader("a\n"))
	if !errors.Is(err, boom) {
		t.Fatalf("write error: got %v", err)
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

// refWriteMessage is the simple reference: W(file), stuffed, terminated.
func refWriteMessage(body []byte) []byte { return stuff(wire(body)) }

func FuzzWriteMessage(f *testing.F) {
	for _, s := range append(messageShapes[:13], "", "abc", "abc\r", "a\r\r\nb", ".", "\r.\n.") {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, body []byte, chunk uint8) {
		var r io.Reader = bytes.NewReader(body)
		if chunk > 0 {
			r = &chunkReader{b: body, n: int(chunk)}
		}
		var got bytes.Buffer
		n, err := daemon.WriteMessage(&got, r)
		if err != nil {
			t.Fatal(err)
		}
		if want := refWriteMessage(body); !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("body %q:\n got %q\nwant %q", body, got.Bytes(), want)
		}
		if n != int64(len(wire(body))) {
			t.Fatalf("n = %d, want %d", n, len(wire(body)))
		}
	})
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[k:]
	return k, nil
}

// benchBody is a typical mail: LF line endings, short lines, some dots.
func benchBody(crlf bool) []byte {
	eol := "\n"
	if crlf {
		eol = "\r\n"
	}
	var b bytes.Buffer
	b.WriteString("Subject: benchmark" + eol + "From: a@example.org" + eol + eol)
	for b.Len() < 8<<20 {
		b.WriteString("The quick brown fox jumps over the lazy dog, again and again and again." + eol)
		b.WriteString("." + eol)
	}
	return b.Bytes()
}

func benchmarkWriteMessage(b *testing.B, body []byte) {
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := daemon.WriteMessage(io.Discard, bytes.NewReader(body)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteMessageLF(b *testing.B)   { benchmarkWriteMessage(b, benchBody(false)) }
func BenchmarkWriteMessageCRLF(b *testing.B) { benchmarkWriteMessage(b, benchBody(true)) }

// BenchmarkDotWriter is the yardstick: textproto's byte-at-a-time writer.
func BenchmarkDotWriter(b *testing.B) {
	body := benchBody(false)
	b.SetBytes(int64(len(body)))
	bw := bufio.NewWriter(io.Discard)
	for b.Loop() {
		dw := textproto.NewWriter(bw).DotWriter()
		dw.Write(body)
		dw.Close()
	}
}

// BenchmarkCopy is a plain copy through a 64 KiB buffer, the ceiling.
func BenchmarkCopy(b *testing.B) {
	body := benchBody(false)
	b.SetBytes(int64(len(body)))
	buf := make([]byte, 64<<10)
	for b.Loop() {
		io.CopyBuffer(discardWriter{}, struct{ io.Reader }{bytes.NewReader(body)}, buf)
	}
}

// discardWriter copies nothing but is not io.Discard, so that io.Copy
// really moves the bytes through the buffer.
type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }

func FuzzTop(f *testing.F) {
	for _, s := range append(messageShapes[:13], "", "abc", "H: v\n\nb1\nb2\nb3", "H: v\r\n\r\n.b\r\n", "\r\n", "\r\r\n\nx") {
		f.Add([]byte(s), uint8(1), uint8(0))
	}
	f.Fuzz(func(t *testing.T, body []byte, lines, chunk uint8) {
		var r io.Reader = bytes.NewReader(body)
		if chunk > 0 {
			r = &chunkReader{b: body, n: int(chunk)}
		}
		var got bytes.Buffer
		n, err := daemon.WriteTop(&got, r, int64(lines))
		if err != nil {
			t.Fatal(err)
		}
		ref := topRef(body, int(lines))
		if want := stuff(ref); !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("TOP %d of %q:\n got %q\nwant %q", lines, body, got.Bytes(), want)
		}
		if n != int64(len(ref)) {
			t.Fatalf("n = %d, want %d", n, len(ref))
		}
	})
}

// BenchmarkRetr measures RETR end to end over loopback TCP: server
// session, WriteMessage, the kernel, and a client that only finds the
// terminator.
func BenchmarkRetr(b *testing.B) {
	body := benchBody(false)
	be := newMemBackend()
	be.addUser("u", "p", memMessage{data: body})
	cfg := testConfig()
	srv := daemon.New(be, cfg, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(l, daemon.ModePlain)
	defer srv.Shutdown(b.Context())
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	loginRaw(b, c)
	r := bufio.NewReaderSize(c, 64<<10)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		c.Write([]byte("RETR 1\r\n"))
		if _, err := r.ReadSlice('\n'); err != nil {
			b.Fatal(err)
		}
		// Read raw chunks until the buffer ends with the terminator.
		var tail []byte
		for !bytes.HasSuffix(tail, []byte("\r\n.\r\n")) {
			chunk, err := r.Peek(max(r.Buffered(), 1))
			if err != nil {
				b.Fatal(err)
			}
			tail = append(tail[max(0, len(tail)-4):], chunk...)
			r.Discard(len(chunk))
		}
	}
}
