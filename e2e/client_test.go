package e2e

import (
	"bufio"
	"bytes"
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

// popConn is a strict, minimal POP3 client for checking exact bytes: every
// line must end in CRLF, multi-line bodies are un-stuffed here.
type popConn struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

// dial connects to a plain listener and reads the greeting.
func dial(t testing.TB, addr string) *popConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	p := newPopConn(t, c)
	p.expectOK("greeting")
	return p
}

// dialTLS connects to an implicit-TLS listener and reads the greeting.
func dialTLS(t testing.TB, addr string, cfg *tls.Config) *popConn {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := newPopConn(t, c)
	p.expectOK("greeting")
	return p
}

func newPopConn(t testing.TB, c net.Conn) *popConn {
	p := &popConn{t: t, conn: c, r: bufio.NewReader(c)}
	t.Cleanup(func() { c.Close() })
	return p
}

// readLine reads one CRLF-terminated line (without CRLF), failing the test
// on a bare LF or a read error. A 10 s deadline keeps a hung server from
// hanging the test.
func (p *popConn) readLine() string {
	p.t.Helper()
	l, err := p.readLineErr()
	if err != nil {
		p.t.Fatal(err)
	}
	return l
}

func (p *popConn) readLineErr() (string, error) {
	p.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := p.r.ReadString('\n')
	if err != nil {
		return line, fmt.Errorf("reading response (got %q): %w", line, err)
	}
	if !strings.HasSuffix(line, "\r\n") {
		return line, fmt.Errorf("response line %q does not end in CRLF", line)
	}
	return strings.TrimSuffix(line, "\r\n"), nil
}

// cmd sends line and returns the status line.
func (p *popConn) cmd(line string) string {
	p.t.Helper()
	p.send(line)
	return p.readLine()
}

// send writes line plus CRLF.
func (p *popConn) send(line string) {
	p.t.Helper()
	p.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(p.conn, line+"\r\n"); err != nil {
		p.t.Fatalf("sending %q: %v", line, err)
	}
}

// ok sends line and fails unless the answer is +OK; it returns the rest.
func (p *popConn) ok(line string) string {
	p.t.Helper()
	r := p.cmd(line)
	if r != "+OK" && !strings.HasPrefix(r, "+OK ") {
		p.t.Fatalf("%s: got %q, want +OK", redact(line), r)
	}
	return strings.TrimPrefix(strings.TrimPrefix(r, "+OK"), " ")
}

// expectOK reads a status line and fails unless it is +OK.
func (p *popConn) expectOK(what string) string {
	p.t.Helper()
	r := p.readLine()
	if !strings.HasPrefix(r, "+OK") {
		p.t.Fatalf("%s: got %q, want +OK", what, r)
	}
	return r
}

// multi sends line, expects +OK and returns the status line and the
// un-stuffed body (the octets between the status line and ".CRLF").
func (p *popConn) multi(line string) (string, []byte) {
	p.t.Helper()
	status := p.ok(line)
	body, err := readBody(p.r, func() { p.conn.SetReadDeadline(time.Now().Add(10 * time.Second)) })
	if err != nil {
		p.t.Fatalf("%s: %v", line, err)
	}
	return status, body
}

// readBody reads a multi-line body up to ".CRLF" and removes dot-stuffing.
// It insists on CRLF line ends and on every line starting with '.' being
// stuffed.
func readBody(r *bufio.Reader, beforeRead func()) ([]byte, error) {
	var body bytes.Buffer
	for {
		if beforeRead != nil {
			beforeRead()
		}
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A long line: keep reading it.
			rest, err2 := r.ReadBytes('\n')
			line = append(append([]byte(nil), line...), rest...)
			err = err2
		}
		if err != nil {
			return body.Bytes(), fmt.Errorf("multi-line body cut after %d octets: %w", body.Len(), err)
		}
		if !bytes.HasSuffix(line, []byte("\r\n")) {
			return body.Bytes(), fmt.Errorf("body line %q does not end in CRLF", trunc(line))
		}
		if string(line) == ".\r\n" {
			return body.Bytes(), nil
		}
		if line[0] == '.' {
			if len(line) < 3 || line[1] != '.' {
				return body.Bytes(), fmt.Errorf("body line %q starts with an unstuffed dot", trunc(line))
			}
			line = line[1:]
		}
		body.Write(line)
	}
}

// login authenticates with USER/PASS.
func (p *popConn) login(user, pass string) string {
	p.t.Helper()
	p.ok("USER " + user)
	return p.ok("PASS " + pass)
}

// authPlain authenticates with AUTH PLAIN and an initial response.
func (p *popConn) authPlain(user, pass string) string {
	p.t.Helper()
	return p.ok("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass)))
}

// capa returns the CAPA lines.
func (p *popConn) capa() []string {
	p.t.Helper()
	_, body := p.multi("CAPA")
	return strings.Split(strings.TrimSuffix(string(body), "\r\n"), "\r\n")
}

// starttls sends STLS and upgrades the connection.
func (p *popConn) starttls(cfg *tls.Config) *tls.ConnectionState {
	p.t.Helper()
	p.ok("STLS")
	if p.r.Buffered() != 0 {
		p.t.Fatalf("server sent %d bytes after +OK to STLS", p.r.Buffered())
	}
	tc := tls.Client(p.conn, cfg)
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		p.t.Fatalf("TLS handshake after STLS: %v", err)
	}
	tc.SetDeadline(time.Time{})
	p.conn = tc
	p.r = bufio.NewReader(tc)
	st := tc.ConnectionState()
	return &st
}

// list parses LIST into message number -> size.
func (p *popConn) list() map[int]int64 {
	p.t.Helper()
	_, body := p.multi("LIST")
	out := map[int]int64{}
	for _, l := range strings.Split(strings.TrimSuffix(string(body), "\r\n"), "\r\n") {
		if l == "" {
			continue
		}
		f := strings.Fields(l)
		if len(f) != 2 {
			p.t.Fatalf("LIST line %q", l)
		}
		n, err1 := strconv.Atoi(f[0])
		sz, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			p.t.Fatalf("LIST line %q", l)
		}
		out[n] = sz
	}
	return out
}

// uidl parses UIDL into message number -> unique id.
func (p *popConn) uidl() map[int]string {
	p.t.Helper()
	_, body := p.multi("UIDL")
	out := map[int]string{}
	for _, l := range strings.Split(strings.TrimSuffix(string(body), "\r\n"), "\r\n") {
		if l == "" {
			continue
		}
		f := strings.Fields(l)
		if len(f) != 2 {
			p.t.Fatalf("UIDL line %q", l)
		}
		n, err := strconv.Atoi(f[0])
		if err != nil {
			p.t.Fatalf("UIDL line %q", l)
		}
		out[n] = f[1]
	}
	return out
}

// quit sends QUIT, expects +OK and that the server closes the connection.
func (p *popConn) quit() {
	p.t.Helper()
	p.ok("QUIT")
	p.expectEOF()
}

// expectEOF waits for the server to close the connection.
func (p *popConn) expectEOF() {
	p.t.Helper()
	p.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	extra, err := io.ReadAll(p.r)
	if err != nil {
		p.t.Fatalf("waiting for close: %v (after %q)", err, extra)
	}
	if len(extra) > 0 {
		p.t.Fatalf("server sent %q after the last response", extra)
	}
}

func trunc(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// redact hides passwords in failure messages.
func redact(line string) string {
	u := strings.ToUpper(line)
	if strings.HasPrefix(u, "PASS ") || strings.HasPrefix(u, "AUTH ") {
		return line[:5] + "..."
	}
	return line
}
