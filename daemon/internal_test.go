package daemon

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		line, name, rest string
		hasRest          bool
	}{
		{"", "", "", false},
		{"stat", "STAT", "", false},
		{"List 1", "LIST", "1", true},
		{"PASS  two words ", "PASS", " two words ", true},
		{"PASS ", "PASS", "", true},
		{"top 1 10", "TOP", "1 10", true},
		{"ſtat", "ſTAT", "", false},
	}
	for _, tt := range tests {
		name, rest, hasRest := parseCommand(tt.line)
		if name != tt.name || rest != tt.rest || hasRest != tt.hasRest {
			t.Errorf("parseCommand(%q) = %q, %q, %v", tt.line, name, rest, hasRest)
		}
	}
}

func TestParseNumber(t *testing.T) {
	tests := []struct {
		s  string
		n  int64
		ok bool
	}{
		{"0", 0, true}, {"1", 1, true}, {"007", 7, true}, {"4294967296", 4294967296, true},
		{"9223372036854775807", 9223372036854775807, true},
		{"9223372036854775808", 9223372036854775807, true},
		{"99999999999999999999999999", 9223372036854775807, true},
		{"", 0, false}, {"-1", 0, false}, {"+1", 0, false}, {"1a", 0, false}, {" 1", 0, false},
		{"0x10", 0, false}, {"1.0", 0, false}, {"١", 0, false}, {"99999999999999999999x", 0, false},
	}
	for _, tt := range tests {
		n, ok := parseNumber(tt.s)
		if n != tt.n || ok != tt.ok {
			t.Errorf("parseNumber(%q) = %d, %v; want %d, %v", tt.s, n, ok, tt.n, tt.ok)
		}
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"", "STAT", "list 1", "PASS  a b ", "TOP 1 99999999999999999999", "RETR -1", "ſ", "\xff\xfe x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		name, rest, hasRest := parseCommand(line)
		if strings.Contains(name, " ") {
			t.Fatalf("keyword %q holds a space", name)
		}
		orig := line[:len(name)]
		if !strings.EqualFold(orig, name) || upperASCII(orig) != name {
			t.Fatalf("keyword %q from %q", name, line)
		}
		if hasRest != strings.Contains(line, " ") || hasRest && orig+" "+rest != line {
			t.Fatalf("rest %q (%v) from %q", rest, hasRest, line)
		}
		for _, a := range splitArgs(rest) {
			if a == "" || strings.Contains(a, " ") {
				t.Fatalf("argument %q from %q", a, rest)
			}
			n, ok := parseNumber(a)
			want, err := strconv.ParseInt(a, 10, 64)
			digits := strings.Trim(a, "0123456789") == ""
			switch {
			case ok != digits:
				t.Fatalf("parseNumber(%q) ok=%v", a, ok)
			case ok && err == nil && n != want:
				t.Fatalf("parseNumber(%q) = %d, want %d", a, n, want)
			case ok && err != nil && n != 1<<63-1:
				t.Fatalf("parseNumber(%q) = %d, want saturation", a, n)
			}
		}
	})
}

func TestDecodePlain(t *testing.T) {
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		in                  string
		authz, authc, passw string
		ok                  bool
	}{
		{enc("\x00alice\x00secret"), "", "alice", "secret", true},
		{enc("admin\x00alice\x00p w"), "admin", "alice", "p w", true},
		{enc("\x00alice\x00"), "", "alice", "", true},
		{"", "", "", "", false},
		{enc("alice\x00secret"), "", "", "", false},
		{enc("\x00\x00secret"), "", "", "", false},
		{enc("\x00a\x00b\x00c"), "", "", "", false},
		{"AGFsaWNlAHNlY3JldA", "", "", "", false},   // padding missing
		{"AGFsaWNlAHNlY3JldB==", "", "", "", false}, // non-zero trailing bits
		{"!!!!", "", "", "", false},
	}
	for _, tt := range tests {
		z, c, p, err := decodePlain(tt.in)
		if (err == nil) != tt.ok || z != tt.authz || c != tt.authc || p != tt.passw {
			t.Errorf("decodePlain(%q) = %q, %q, %q, %v", tt.in, z, c, p, err)
		}
	}
}

func FuzzDecodePlain(f *testing.F) {
	for _, s := range []string{"", "=", "*", "AGFsaWNlAHNlY3JldA==", "YWRtaW4AYWxpY2UAcCB3", "AAA=", "AAAA", "!!"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		z, c, p, err := decodePlain(in)
		if err != nil {
			return
		}
		if c == "" || strings.ContainsRune(z+c+p, 0) {
			t.Fatalf("decodePlain(%q) accepted %q, %q, %q", in, z, c, p)
		}
		if re := base64.StdEncoding.EncodeToString([]byte(z + "\x00" + c + "\x00" + p)); re != in {
			t.Fatalf("decodePlain(%q) is not canonical: re-encodes as %q", in, re)
		}
	})
}

// pipeListener hands out in-memory connections that claim to come from a
// loopback address.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

type fakeAddrConn struct {
	net.Conn
	remote net.Addr
}

func (c fakeAddrConn) RemoteAddr() net.Addr { return c.remote }

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 110} }

type nopBackend struct{}

func (nopBackend) Login(context.Context, string, string, ConnInfo) (Mailbox, error) {
	return nil, ErrAuth
}

// FuzzProxyHeader sends arbitrary bytes first, on a connection from a
// trusted proxy source and from an untrusted one, and checks that the
// server answers sanely and ends the session in bounded time.
func FuzzProxyHeader(f *testing.F) {
	for _, s := range []string{
		"PROXY TCP4 203.0.113.7 127.0.0.1 5555 110\r\n",
		"PROXY TCP6 2001:db8::1 ::1 5555 110\r\n",
		"PROXY UNKNOWN\r\n",
		"PROXY TCP4 1.2.3.4\r\n",
		"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xcb\x00\x71\x07\x7f\x00\x00\x01\x15\xb3\x00\x6e",
		"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00",
		"\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff",
		"CAPA\r\n",
		"\x16\x03\x01\x00\x05hello",
		"",
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, first []byte, trusted bool) {
		var logs bytes.Buffer
		var logMu sync.Mutex
		cfg := DefaultConfig()
		cfg.HandshakeTimeout = 500 * time.Millisecond
		cfg.IdleTimeout = 500 * time.Millisecond
		cfg.AuthFailureDelay = 0
		if trusted {
			cfg.ProxyProtocolFrom = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		}
		srv := New(nopBackend{}, cfg, slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil)))
		l := &pipeListener{conns: make(chan net.Conn, 1), closed: make(chan struct{})}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(l, ModePlain) }()
		client, server := net.Pipe()
		l.conns <- fakeAddrConn{Conn: server, remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242}}

		go func() {
			client.SetWriteDeadline(time.Now().Add(3 * time.Second))
			client.Write(first)
			client.Write([]byte("\r\nCAPA\r\nQUIT\r\n"))
		}()
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		out, err := io.ReadAll(client)
		client.Close()
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("session still running after 5s; output %q", out)
		}
		if len(out) > 0 && !bytes.HasPrefix(out, []byte("+OK POP3 server ready\r\n")) && !bytes.HasPrefix(out, []byte("-ERR")) {
			t.Fatalf("unexpected output %q", out)
		}
		if len(out) > 0 && !bytes.HasSuffix(out, []byte("\r\n")) {
			t.Fatalf("output does not end with CRLF: %q", out)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		<-served
		logMu.Lock()
		defer logMu.Unlock()
		if strings.Contains(logs.String(), "panic") {
			t.Fatalf("panic:\n%s", logs.String())
		}
	})
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// shortWriter accepts limit bytes, then fails.
type shortWriter struct {
	bytes.Buffer
	limit int
}

func (w *shortWriter) Write(p []byte) (int, error) {
	if w.Len()+len(p) > w.limit {
		return 0, io.ErrClosedPipe
	}
	return w.Buffer.Write(p)
}

func TestOutWriter(t *testing.T) {
	pieces := []string{"+OK\r\n", strings.Repeat("a", writeBufSize-1000), strings.Repeat("b", 5000), "x", strings.Repeat("c", 2*writeBufSize+10), "end\r\n"}
	var want strings.Builder
	var dst bytes.Buffer
	o := &outWriter{w: &dst}
	for i, p := range pieces {
		want.WriteString(p)
		var n int
		var err error
		if i%2 == 0 {
			n, err = o.WriteString(p)
		} else {
			n, err = o.Write([]byte(p))
		}
		if n != len(p) || err != nil {
			t.Fatalf("piece %d: %d, %v", i, n, err)
		}
	}
	if err := o.Flush(); err != nil || o.buf != nil {
		t.Fatalf("Flush: %v, buffer kept: %v", err, o.buf != nil)
	}
	if dst.String() != want.String() {
		t.Fatalf("output differs: %d bytes, want %d", dst.Len(), want.Len())
	}

	sw := &shortWriter{limit: 100}
	o = &outWriter{w: sw}
	o.WriteString(strings.Repeat("z", writeBufSize+1000))
	if _, err := o.WriteString("more"); err == nil {
		t.Fatal("no error after the writer failed")
	}
	if err := o.Flush(); err == nil {
		t.Fatal("Flush: no sticky error")
	}
	o.Reset(&dst)
	if _, err := o.WriteString("ok"); err != nil || o.Flush() != nil {
		t.Fatal("error survived Reset")
	}
}

func TestMaskCommand(t *testing.T) {
	tests := []struct{ in, want string }{
		{"PASS secret", "PASS ***"},
		{"pass secret with spaces", "pass ***"},
		{"PASS ", "PASS ***"},
		{"PASS", "PASS"},
		{"PASS\tsecret", "PASS***"},
		{"PASSsecret", "PASS***"},
		{"APOP alice 0123456789abcdef0123456789abcdef", "APOP alice ***"},
		{"apop alice", "apop alice"},
		{"AUTH PLAIN AGFsaWNlAHNlY3JldA==", "AUTH PLAIN ***"},
		{"AUTH PLAIN =", "AUTH PLAIN ***"},
		{"AUTH PLAIN", "AUTH PLAIN"},
		{"AUTH", "AUTH"},
		{"USER alice", "USER alice"},
		{"RETR 1", "RETR 1"},
		{"", ""},
		{"PAS secret", "PAS secret"},
	}
	for _, tt := range tests {
		if got := maskCommand(tt.in); got != tt.want {
			t.Errorf("maskCommand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzMaskCommand: whatever follows PASS, APOP's user name or AUTH's
// mechanism never reaches the log.
func FuzzMaskCommand(f *testing.F) {
	for _, s := range []string{"PASS x", "pass\tx", "APOP u d", "AUTH PLAIN r", "AUTH", "USER u", "PaSsWoRd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		got := maskCommand(line)
		if len(line) < 4 {
			if got != line {
				t.Fatalf("maskCommand(%q) = %q, want it unchanged", line, got)
			}
			return
		}
		switch upperASCII(line[:4]) {
		case "PASS":
			if len(line) > 4 && got != line[:4]+" ***" && got != line[:4]+"***" {
				t.Fatalf("maskCommand(%q) = %q", line, got)
			}
		case "APOP", "AUTH":
			// The second word is kept, nothing after it.
			name, rest, _ := strings.Cut(line, " ")
			word, _, more := strings.Cut(rest, " ")
			if more && got != name+" "+word+" ***" && got != line[:4]+"***" {
				t.Fatalf("maskCommand(%q) = %q", line, got)
			}
		default:
			if got != line {
				t.Fatalf("maskCommand(%q) = %q, want it unchanged", line, got)
			}
		}
	})
}

func TestIncDecimal(t *testing.T) {
	b := []byte{'0'}
	for n := 1; n <= 100001; n++ {
		b = incDecimal(b)
		if string(b) != strconv.Itoa(n) {
			t.Fatalf("%d: %q", n, b)
		}
	}
}
