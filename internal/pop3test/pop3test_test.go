package pop3test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pop3d/pop3d/internal/testpki"
	"github.com/pop3d/pop3d/internal/wireform"
)

func TestReadBody(t *testing.T) {
	long := strings.Repeat("x", 10000)
	tests := []struct {
		name, in, want, err string
	}{
		{"empty", ".\r\n", "", ""},
		{"lines", "a\r\nb\r\n.\r\n", "a\r\nb\r\n", ""},
		{"stuffed", "..\r\n..x\r\n.\r\n", ".\r\n.x\r\n", ""},
		{"long line", long + "\r\n.." + long + "\r\n.\r\n", long + "\r\n." + long + "\r\n", ""},
		{"long stuffed line", ".." + long + "\r\n.\r\n", "." + long + "\r\n", ""},
		{"bare LF", "a\n.\r\n", "", "does not end in CRLF"},
		{"unstuffed dot", ".x\r\n.\r\n", "", "unstuffed dot"},
		{"cut", "a\r\nb", "a\r\n", "cut after 3 octets"},
		{"no terminator", "a\r\n", "a\r\n", "cut"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A 16-octet buffer: every line longer than that arrives in pieces.
			body, err := ReadBody(bufio.NewReaderSize(strings.NewReader(tt.in), 16), nil)
			if tt.err == "" && (err != nil || string(body) != tt.want) {
				t.Fatalf("ReadBody = %q, %v; want %q", Trunc(body), err, Trunc([]byte(tt.want)))
			}
			if tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("ReadBody = %q, %v; want an error with %q", Trunc(body), err, tt.err)
			}
		})
	}
}

func TestReadLine(t *testing.T) {
	long := strings.Repeat("y", 5000)
	r := bufio.NewReaderSize(strings.NewReader("+OK\r\n"+long+"\r\nbare\n"), 16)
	for _, want := range []string{"+OK", long} {
		if l, err := ReadLine(r); err != nil || string(l) != want {
			t.Fatalf("ReadLine = %q, %v; want %q", Trunc(l), err, Trunc([]byte(want)))
		}
	}
	if _, err := ReadLine(r); err == nil || !strings.Contains(err.Error(), "CRLF") {
		t.Fatalf("bare LF: %v", err)
	}
}

func TestCode(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"-ERR [IN-USE] locked", "IN-USE"},
		{"-ERR [SYS/TEMP] try later", "SYS/TEMP"},
		{"-ERR [AUTH]", "AUTH"},
		{"-ERR no such message", ""},
		{"-ERR", ""},
		{"+OK [x", ""},
		{"-ERR no [AUTH] here", ""},
	} {
		if got := Code(tt.in); got != tt.want {
			t.Errorf("Code(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, tt := range []struct {
		in      string
		ok, err bool
	}{
		{"+OK", true, false}, {"+OK x", true, false}, {"+OKx", false, false},
		{"-ERR", false, true}, {"-ERR x", false, true}, {"-ERRx", false, false}, {"", false, false},
	} {
		if IsOK(tt.in) != tt.ok || IsErr(tt.in) != tt.err {
			t.Errorf("%q: IsOK %v IsErr %v, want %v %v", tt.in, IsOK(tt.in), IsErr(tt.in), tt.ok, tt.err)
		}
	}
}

func TestRedact(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"PASS secret", "PASS ..."}, {"pass secret", "pass ..."}, {"AUTH PLAIN AGFsaWNl", "AUTH ..."},
		{"APOP alice 0123", "APOP ..."}, {"USER alice", "USER alice"}, {"PASS", "PASS"}, {"RETR 1", "RETR 1"},
	} {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzReadBody: what the reference encoder sends for any message reads
// back as its wire form, however short the reader's buffer.
func FuzzReadBody(f *testing.F) {
	for _, s := range []string{"", ".", "a\r\n.\r\n", "\r", strings.Repeat("z", 5000) + "\n.x", "..\n\r\r\n"} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, size uint8) {
		w := wireform.Reference(data)
		in := append(wireform.Stuff(w), "+OK next\r\n"...)
		r := bufio.NewReaderSize(bytes.NewReader(in), 16+int(size))
		body, err := ReadBody(r, nil)
		if err != nil || !bytes.Equal(body, w) {
			t.Fatalf("ReadBody(%q) = %q, %v; want %q", in, body, err, w)
		}
		if l, err := ReadLine(r); err != nil || string(l) != "+OK next" {
			t.Fatalf("line after the body: %q, %v", l, err)
		}
	})
}

// TestConn runs the client against a scripted server: greeting, STLS,
// a pipelined batch, a long body line and the close.
func TestConn(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.Issue(t, 2, certFile, keyFile)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	long := "." + strings.Repeat("L", 9000)
	done := make(chan error, 1)
	go func() { done <- scriptedServer(l, &tls.Config{Certificates: []tls.Certificate{cert}}, long) }()

	p := Dial(t, l.Addr().String())
	if caps := p.Capa(); strings.Join(caps, ",") != "STLS,PIPELINING" {
		t.Errorf("CAPA = %q", caps)
	}
	st := p.STLS(&tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
	if st.Version < tls.VersionTLS12 {
		t.Errorf("TLS version %x", st.Version)
	}
	p.Pipeline("USER u", "PASS p", "RETR 1", "LIST")
	p.ExpectOK("USER")
	p.ExpectOK("PASS")
	p.ExpectOK("RETR")
	if b := p.Body(); string(b) != long+"\r\n" {
		t.Errorf("RETR body = %q", Trunc(b))
	}
	p.ExpectOK("LIST")
	if lines := SplitLines(p.Body()); strings.Join(lines, ",") != "1 9003" {
		t.Errorf("LIST = %q", lines)
	}
	if r := p.Err("DELE 9", "SYS/PERM"); r != "-ERR [SYS/PERM] no" {
		t.Errorf("DELE 9 = %q", r)
	}
	p.Quit()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// scriptedServer answers exactly what TestConn sends, in order.
func scriptedServer(l net.Listener, cfg *tls.Config, long string) error {
	c, err := l.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	c.Write([]byte("+OK hi\r\n"))
	steps := []struct{ want, reply string }{
		{"CAPA", "+OK\r\nSTLS\r\nPIPELINING\r\n.\r\n"},
		{"STLS", "+OK go\r\n"},
	}
	for _, s := range steps {
		if l, err := ReadLine(r); err != nil || string(l) != s.want {
			return err
		}
		c.Write([]byte(s.reply))
	}
	tc := tls.Server(c, cfg)
	if err := tc.Handshake(); err != nil {
		return err
	}
	r = bufio.NewReader(tc)
	for _, reply := range []string{
		"+OK\r\n", "+OK\r\n", "+OK 9003 octets\r\n." + long + "\r\n.\r\n", "+OK\r\n1 9003\r\n.\r\n",
		"-ERR [SYS/PERM] no\r\n", "+OK bye\r\n",
	} {
		if _, err := ReadLine(r); err != nil {
			return err
		}
		if _, err := tc.Write([]byte(reply)); err != nil {
			return err
		}
	}
	return nil
}
