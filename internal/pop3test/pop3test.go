// Package pop3test is the strict POP3 client the tests use to check what a
// server sends, octet for octet (RFC 1939, RFC 2449, RFC 2595, RFC 5034):
// every line must end in CRLF, a multi-line body must be dot-stuffed and
// end in ".\r\n", and lines may be of any length. It speaks plain TCP,
// implicit TLS and STLS, can pipeline commands (RFC 2449 PIPELINING) and
// parses response codes (RFC 2449 section 8, RFC 3206).
//
// Failures call t.Fatal; the methods ending in Err return errors instead,
// for tests that expect the server to misbehave or to drop the connection.
package pop3test

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// DefaultTimeout bounds every read and write of a Conn, so that a hung
// server fails the test instead of hanging it.
const DefaultTimeout = 10 * time.Second

// Conn is one client connection.
type Conn struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
	// Timeout bounds each read and write; DefaultTimeout unless changed.
	Timeout time.Duration
}

// New wraps an established connection; it reads nothing. The connection is
// closed when the test ends.
func New(t testing.TB, c net.Conn) *Conn {
	t.Cleanup(func() { c.Close() })
	return &Conn{t: t, conn: c, r: bufio.NewReader(c), Timeout: DefaultTimeout}
}

// DialNoGreeting connects to addr over plain TCP and reads nothing.
func DialNoGreeting(t testing.TB, addr string) *Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	return New(t, c)
}

// Dial connects to addr over plain TCP and reads a +OK greeting.
func Dial(t testing.TB, addr string) *Conn {
	t.Helper()
	p := DialNoGreeting(t, addr)
	p.ExpectOK("greeting")
	return p
}

// DialTLS connects to an implicit-TLS (pop3s) listener and reads a +OK
// greeting.
func DialTLS(t testing.TB, addr string, cfg *tls.Config) *Conn {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: DefaultTimeout}, "tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := New(t, c)
	p.ExpectOK("greeting")
	return p
}

// NetConn is the underlying connection (a *tls.Conn after STLS).
func (p *Conn) NetConn() net.Conn { return p.conn }

// Reader is the buffered reader the responses are read from.
func (p *Conn) Reader() *bufio.Reader { return p.r }

// Close closes the connection.
func (p *Conn) Close() error { return p.conn.Close() }

func (p *Conn) deadline() time.Time { return time.Now().Add(p.Timeout) }

// ReadLineErr reads one line and returns it without its CRLF; a line that
// does not end in CRLF is an error. Lines may be of any length.
func (p *Conn) ReadLineErr() (string, error) {
	p.conn.SetReadDeadline(p.deadline())
	line, err := ReadLine(p.r)
	return string(line), err
}

// Line reads one line without its CRLF, failing the test on an error.
func (p *Conn) Line() string {
	p.t.Helper()
	l, err := p.ReadLineErr()
	if err != nil {
		p.t.Fatal(err)
	}
	return l
}

// Expect reads one line and fails unless it is want.
func (p *Conn) Expect(want string) {
	p.t.Helper()
	if got := p.Line(); got != want {
		p.t.Fatalf("got %q, want %q", got, want)
	}
}

// SendErr writes line plus CRLF.
func (p *Conn) SendErr(line string) error {
	p.conn.SetWriteDeadline(p.deadline())
	_, err := io.WriteString(p.conn, line+"\r\n")
	return err
}

// Send writes line plus CRLF, failing the test on an error.
func (p *Conn) Send(line string) {
	p.t.Helper()
	if err := p.SendErr(line); err != nil {
		p.t.Fatalf("sending %q: %v", Redact(line), err)
	}
}

// SendRaw writes b as it is: several commands in one write for
// pipelining, or malformed input.
func (p *Conn) SendRaw(b []byte) {
	p.t.Helper()
	p.conn.SetWriteDeadline(p.deadline())
	if _, err := p.conn.Write(b); err != nil {
		p.t.Fatalf("sending %d octets: %v", len(b), err)
	}
}

// Pipeline sends every command in one write (RFC 2449 PIPELINING); the
// responses are then read in order with ExpectOK, Body and Line.
func (p *Conn) Pipeline(cmds ...string) {
	p.t.Helper()
	var b strings.Builder
	for _, c := range cmds {
		b.WriteString(c + "\r\n")
	}
	p.SendRaw([]byte(b.String()))
}

// Cmd sends line and returns the status line.
func (p *Conn) Cmd(line string) string {
	p.t.Helper()
	p.Send(line)
	return p.Line()
}

// OK sends line, fails unless the answer is +OK, and returns the text
// after "+OK ".
func (p *Conn) OK(line string) string {
	p.t.Helper()
	r := p.Cmd(line)
	if !IsOK(r) {
		p.t.Fatalf("%s: got %q, want +OK", Redact(line), r)
	}
	return strings.TrimPrefix(strings.TrimPrefix(r, "+OK"), " ")
}

// Err sends line, fails unless the answer is -ERR carrying the response
// code (without brackets; "" for any -ERR), and returns the status line.
func (p *Conn) Err(line, code string) string {
	p.t.Helper()
	r := p.Cmd(line)
	if !IsErr(r) || code != "" && Code(r) != code {
		p.t.Fatalf("%s: got %q, want -ERR [%s]", Redact(line), r, code)
	}
	return r
}

// ExpectOK reads a status line and fails unless it is +OK; what names the
// command in the failure.
func (p *Conn) ExpectOK(what string) string {
	p.t.Helper()
	r := p.Line()
	if !IsOK(r) {
		p.t.Fatalf("%s: got %q, want +OK", what, r)
	}
	return r
}

// BodyErr reads a multi-line body (after its status line) and returns it
// un-stuffed: the octets between the status line and ".\r\n".
func (p *Conn) BodyErr() ([]byte, error) {
	return ReadBody(p.r, func() { p.conn.SetReadDeadline(p.deadline()) })
}

// Body is BodyErr, failing the test on an error.
func (p *Conn) Body() []byte {
	p.t.Helper()
	b, err := p.BodyErr()
	if err != nil {
		p.t.Fatal(err)
	}
	return b
}

// Multi sends line, expects +OK and returns the text after "+OK " and the
// un-stuffed body.
func (p *Conn) Multi(line string) (string, []byte) {
	p.t.Helper()
	status := p.OK(line)
	body, err := p.BodyErr()
	if err != nil {
		p.t.Fatalf("%s: %v", line, err)
	}
	return status, body
}

// Lines sends line, expects +OK and returns the body's lines without CRLF.
func (p *Conn) Lines(line string) []string {
	p.t.Helper()
	_, body := p.Multi(line)
	return SplitLines(body)
}

// Login authenticates with USER and PASS and returns the text after +OK.
func (p *Conn) Login(user, pass string) string {
	p.t.Helper()
	p.OK("USER " + user)
	return p.OK("PASS " + pass)
}

// AuthPlain authenticates with AUTH PLAIN and an initial response (RFC
// 5034) and returns the text after +OK.
func (p *Conn) AuthPlain(user, pass string) string {
	p.t.Helper()
	return p.OK("AUTH PLAIN " + PlainResponse(user, pass))
}

// PlainResponse is the base64 SASL PLAIN response for user and pass.
func PlainResponse(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

// Capa returns the CAPA lines.
func (p *Conn) Capa() []string {
	p.t.Helper()
	return p.Lines("CAPA")
}

// STLS sends STLS, expects +OK and upgrades the connection; the server
// must send nothing after its +OK (RFC 2595 section 4: no plain text
// survives the upgrade).
func (p *Conn) STLS(cfg *tls.Config) tls.ConnectionState {
	p.t.Helper()
	p.OK("STLS")
	return p.StartTLS(cfg)
}

// StartTLS upgrades the connection after the server accepted STLS.
func (p *Conn) StartTLS(cfg *tls.Config) tls.ConnectionState {
	p.t.Helper()
	st, err := p.StartTLSErr(cfg)
	if err != nil {
		p.t.Fatal(err)
	}
	return st
}

// StartTLSErr is StartTLS returning the error, for tests where the server
// may refuse the handshake.
func (p *Conn) StartTLSErr(cfg *tls.Config) (tls.ConnectionState, error) {
	if p.r.Buffered() != 0 {
		return tls.ConnectionState{}, fmt.Errorf("server sent %d octets after +OK to STLS", p.r.Buffered())
	}
	tc := tls.Client(p.conn, cfg)
	tc.SetDeadline(p.deadline())
	if err := tc.Handshake(); err != nil {
		return tls.ConnectionState{}, fmt.Errorf("TLS handshake after STLS: %w", err)
	}
	tc.SetDeadline(time.Time{})
	p.conn = tc
	p.r = bufio.NewReader(tc)
	return tc.ConnectionState(), nil
}

// List parses LIST into message number -> size.
func (p *Conn) List() map[int]int64 {
	p.t.Helper()
	out := map[int]int64{}
	for _, l := range p.Lines("LIST") {
		n, s, ok := scanListing(l)
		sz, err := strconv.ParseInt(s, 10, 64)
		if !ok || err != nil {
			p.t.Fatalf("LIST line %q", l)
		}
		out[n] = sz
	}
	return out
}

// UIDL parses UIDL into message number -> unique id.
func (p *Conn) UIDL() map[int]string {
	p.t.Helper()
	out := map[int]string{}
	for _, l := range p.Lines("UIDL") {
		n, id, ok := scanListing(l)
		if !ok {
			p.t.Fatalf("UIDL line %q", l)
		}
		out[n] = id
	}
	return out
}

// scanListing splits a "n value" scan listing line.
func scanListing(l string) (int, string, bool) {
	f := strings.Fields(l)
	if len(f) != 2 {
		return 0, "", false
	}
	n, err := strconv.Atoi(f[0])
	return n, f[1], err == nil && n > 0
}

// Quit sends QUIT, expects +OK and that the server then closes the
// connection.
func (p *Conn) Quit() {
	p.t.Helper()
	p.OK("QUIT")
	p.ExpectEOF()
}

// ExpectEOF waits for the server to close the connection and fails if it
// sends anything more first.
func (p *Conn) ExpectEOF() {
	p.t.Helper()
	p.conn.SetReadDeadline(p.deadline())
	extra, err := io.ReadAll(p.r)
	if err != nil {
		p.t.Fatalf("waiting for close: %v (after %q)", err, Trunc(extra))
	}
	if len(extra) > 0 {
		p.t.Fatalf("server sent %q after the last response", Trunc(extra))
	}
}

// Trunc shortens b for failure messages.
func Trunc(b []byte) string {
	if len(b) > 200 {
		return fmt.Sprintf("%s... (%d octets)", b[:200], len(b))
	}
	return string(b)
}

// RawBodyErr reads a multi-line body as sent: stuffing kept, ".\r\n"
// included, for tests of the stuffing itself. Lines need not end in CRLF.
func (p *Conn) RawBodyErr() ([]byte, error) {
	var b []byte
	for {
		p.conn.SetReadDeadline(p.deadline())
		l, err := readRaw(p.r)
		b = append(b, l...)
		if err != nil {
			return b, fmt.Errorf("multi-line body cut after %d octets: %w", len(b), err)
		}
		if string(l) == ".\r\n" {
			return b, nil
		}
	}
}

// RawBody is RawBodyErr, failing the test on an error.
func (p *Conn) RawBody() []byte {
	p.t.Helper()
	b, err := p.RawBodyErr()
	if err != nil {
		p.t.Fatal(err)
	}
	return b
}

// ExpectClosed checks that the server closed the connection (a reset
// counts too: a server dropping a client whose input it did not read
// resets) without sending anything more, then closes the client's side as
// real clients do.
func (p *Conn) ExpectClosed() {
	p.t.Helper()
	p.conn.SetReadDeadline(p.deadline())
	l, err := p.r.ReadString('\n')
	if err == nil || l != "" {
		p.t.Fatalf("expected the server to close, got %q, %v", l, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		p.t.Fatalf("connection still open after %v", p.Timeout)
	}
	p.conn.Close()
}
