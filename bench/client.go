package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// errServer is an -ERR answer; the bench counts these apart from I/O errors.
var errServer = errors.New("server answered -ERR")

// client is a minimal POP3 client that counts octets exactly: the payload of
// a multi-line answer with the byte-stuffing removed, as RFC 1939 sizes count.
type client struct {
	conn       net.Conn
	r          *bufio.Reader
	w          *bufio.Writer
	pipelining bool
}

func dial(ctx context.Context, addr string) (*client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return greet(ctx, conn)
}

// dialTLS connects to an implicit-TLS (995) port, handshakes with conf and
// reads the greeting; it returns the handshake's wall time and whether the
// session was resumed.
func dialTLS(ctx context.Context, addr string, conf *tls.Config) (*client, time.Duration, bool, error) {
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, 0, false, err
	}
	start := time.Now()
	conn := tls.Client(raw, conf)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, 0, false, fmt.Errorf("TLS handshake: %w", err)
	}
	hs := time.Since(start)
	c, err := greet(ctx, conn)
	if err != nil {
		return nil, 0, false, err
	}
	return c, hs, conn.ConnectionState().DidResume, nil
}

// greet wraps an open connection and reads the server's greeting.
func greet(ctx context.Context, conn net.Conn) (*client, error) {
	c := &client{conn: conn, r: bufio.NewReaderSize(conn, 256<<10), w: bufio.NewWriterSize(conn, 16<<10)}
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	if _, err := c.status(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	return c, nil
}

func (c *client) Close() error { return c.conn.Close() }

// status reads one status line and returns the text after "+OK".
func (c *client) status() (string, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(s, "+OK") {
		return strings.TrimSpace(s[3:]), nil
	}
	return "", fmt.Errorf("%w: %q", errServer, s)
}

func (c *client) send(format string, args ...any) error {
	fmt.Fprintf(c.w, format, args...)
	c.w.WriteString("\r\n")
	return c.w.Flush()
}

// cmd sends one command and reads its status line.
func (c *client) cmd(format string, args ...any) (string, error) {
	if err := c.send(format, args...); err != nil {
		return "", err
	}
	return c.status()
}

// multi reads the body of a multi-line answer, calling fn (if not nil) with
// each line, CRLF stripped and unstuffed. It returns the octets of the
// unstuffed payload, CRLFs included.
func (c *client) multi(fn func(line []byte), h io.Writer) (int64, error) {
	var n int64
	for {
		line, err := c.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line longer than the buffer: count it in pieces.
			n += int64(len(line))
			if h != nil {
				h.Write(line)
			}
			for err == bufio.ErrBufferFull {
				line, err = c.r.ReadSlice('\n')
				n += int64(len(line))
				if h != nil {
					h.Write(line)
				}
			}
			if err != nil {
				return n, err
			}
			continue
		}
		if err != nil {
			return n, err
		}
		if len(line) > 0 && line[0] == '.' {
			if len(line) == 3 && line[1] == '\r' {
				return n, nil
			}
			line = line[1:]
		}
		n += int64(len(line))
		if h != nil {
			h.Write(line)
		}
		if fn != nil {
			fn(bytes.TrimRight(line, "\r\n"))
		}
	}
}

func (c *client) login(user, pass string) error {
	if _, err := c.cmd("USER %s", user); err != nil {
		return fmt.Errorf("USER: %w", err)
	}
	if _, err := c.cmd("PASS %s", pass); err != nil {
		return fmt.Errorf("PASS: %w", err)
	}
	return nil
}

func (c *client) capa() error {
	if _, err := c.cmd("CAPA"); err != nil {
		return err
	}
	_, err := c.multi(func(line []byte) {
		if strings.EqualFold(string(line), "PIPELINING") {
			c.pipelining = true
		}
	}, nil)
	return err
}

func (c *client) stat() (n int, octets int64, err error) {
	s, err := c.cmd("STAT")
	if err != nil {
		return 0, 0, fmt.Errorf("STAT: %w", err)
	}
	f := strings.Fields(s)
	if len(f) < 2 {
		return 0, 0, fmt.Errorf("STAT: malformed answer %q", s)
	}
	n, err1 := strconv.Atoi(f[0])
	octets, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("STAT: malformed answer %q", s)
	}
	return n, octets, nil
}

// list returns the sizes of messages 1..n (index 0 unused).
func (c *client) list() ([]int64, error) {
	if _, err := c.cmd("LIST"); err != nil {
		return nil, fmt.Errorf("LIST: %w", err)
	}
	sizes := []int64{0}
	var bad error
	// Parsed from the line's bytes, as a fast client does: a string per
	// line of a 100k-message LIST cost the client more than the server.
	_, err := c.multi(func(line []byte) {
		num, size, ok := bytes.Cut(line, []byte{' '})
		i, ok1 := atoiBytes(num)
		sz, ok2 := atoiBytes(size)
		if !ok || !ok1 || !ok2 || i != int64(len(sizes)) {
			bad = fmt.Errorf("LIST: malformed line %q", line)
			return
		}
		sizes = append(sizes, sz)
	}, nil)
	if err == nil {
		err = bad
	}
	return sizes, err
}

// atoiBytes parses a non-negative decimal number of at most 18 digits.
func atoiBytes(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// uidl returns the unique-ids of messages 1..n (index 0 unused).
func (c *client) uidl() ([]string, error) {
	if _, err := c.cmd("UIDL"); err != nil {
		return nil, fmt.Errorf("UIDL: %w", err)
	}
	ids := []string{""}
	var bad error
	_, err := c.multi(func(line []byte) {
		num, id, ok := bytes.Cut(line, []byte{' '})
		i, ok1 := atoiBytes(num)
		if !ok || !ok1 || i != int64(len(ids)) || len(id) == 0 {
			bad = fmt.Errorf("UIDL: malformed line %q", line)
			return
		}
		ids = append(ids, string(id)) // the one copy a client keeps
	}, nil)
	if err == nil {
		err = bad
	}
	return ids, err
}

// retr retrieves message i and returns the octets received and, when sum
// is set, the SHA-256 of the unstuffed payload.
func (c *client) retr(i int, sum bool) (int64, []byte, error) {
	if _, err := c.cmd("RETR %d", i); err != nil {
		return 0, nil, fmt.Errorf("RETR %d: %w", i, err)
	}
	return c.retrBody(sum)
}

func (c *client) retrBody(sum bool) (int64, []byte, error) {
	var h hash.Hash
	if sum {
		h = sha256.New()
	}
	n, err := c.multi(nil, h)
	if err != nil || h == nil {
		return n, nil, err
	}
	return n, h.Sum(nil), nil
}

// retrAllCheck retrieves messages 1..len(sizes)-1, pipelined when the server
// announced PIPELINING, and checks every octet count against sizes and,
// when sums is set, every message's CRC-32C (of the unstuffed payload)
// against sums (index i for message i):
// the work a real client does on what it receives, at hardware speed.
func (c *client) retrAllCheck(sizes []int64, sums []uint32) (int64, error) {
	n := len(sizes) - 1
	var total int64
	var h hash.Hash32
	if sums != nil {
		h = crc32.New(crc32.MakeTable(crc32.Castagnoli))
	}
	check := func(i int, got int64) error {
		if got != sizes[i] {
			return fmt.Errorf("RETR %d: received %d octets, LIST said %d", i, got, sizes[i])
		}
		if h != nil {
			if h.Sum32() != sums[i] {
				return fmt.Errorf("RETR %d: content differs from the file's wire form (CRC-32C)", i)
			}
			h.Reset()
		}
		total += got
		return nil
	}
	if !c.pipelining {
		for i := 1; i <= n; i++ {
			if _, err := c.cmd("RETR %d", i); err != nil {
				return total, fmt.Errorf("RETR %d: %w", i, err)
			}
			got, err := c.multi(nil, h)
			if err != nil {
				return total, err
			}
			if err := check(i, got); err != nil {
				return total, err
			}
		}
		return total, nil
	}
	werr := make(chan error, 1)
	go func() {
		w := bufio.NewWriterSize(c.conn, 64<<10)
		for i := 1; i <= n; i++ {
			fmt.Fprintf(w, "RETR %d\r\n", i)
		}
		werr <- w.Flush()
	}()
	for i := 1; i <= n; i++ {
		if _, err := c.status(); err != nil {
			return total, fmt.Errorf("RETR %d: %w", i, err)
		}
		got, err := c.multi(nil, h)
		if err != nil {
			return total, err
		}
		if err := check(i, got); err != nil {
			return total, err
		}
	}
	return total, <-werr
}

// deleAll marks messages 1..n deleted, pipelined when possible.
func (c *client) deleAll(n int) error {
	if !c.pipelining {
		for i := 1; i <= n; i++ {
			if _, err := c.cmd("DELE %d", i); err != nil {
				return fmt.Errorf("DELE %d: %w", i, err)
			}
		}
		return nil
	}
	werr := make(chan error, 1)
	go func() {
		w := bufio.NewWriterSize(c.conn, 64<<10)
		for i := 1; i <= n; i++ {
			fmt.Fprintf(w, "DELE %d\r\n", i)
		}
		werr <- w.Flush()
	}()
	for i := 1; i <= n; i++ {
		if _, err := c.status(); err != nil {
			return fmt.Errorf("DELE %d: %w", i, err)
		}
	}
	return <-werr
}

// quit sends QUIT and waits for its answer, then for the server to close.
func (c *client) quit() error {
	if _, err := c.cmd("QUIT"); err != nil {
		return fmt.Errorf("QUIT: %w", err)
	}
	return nil
}

// session runs fn inside a logged-in session and QUITs; it returns the
// wall time from dial to the QUIT answer.
func session(ctx context.Context, addr, user, pass string, fn func(c *client) error) (time.Duration, error) {
	return sessionVia(ctx, func(ctx context.Context) (*client, error) { return dial(ctx, addr) }, user, pass, fn)
}

// sessionVia is session over a connection made by dialFn (TLS).
func sessionVia(ctx context.Context, dialFn func(context.Context) (*client, error), user, pass string, fn func(c *client) error) (time.Duration, error) {
	start := time.Now()
	c, err := dialFn(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := c.login(user, pass); err != nil {
		return 0, err
	}
	if fn != nil {
		if err := fn(c); err != nil {
			return 0, err
		}
	}
	if err := c.quit(); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}
