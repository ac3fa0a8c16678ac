package daemon

import (
	"bytes"
	"io"
	"sync"

	"github.com/pop3d/pop3d/internal/wireform"
)

// msgBufSize is the size of each of the two buffers a message is streamed
// through. They come from a pool while a message is being sent, so that an
// idle connection holds neither.
const msgBufSize = 64 << 10

type msgBufs struct {
	in  [msgBufSize]byte
	out [msgBufSize]byte
}

// msgPool is a cache of transfer buffers shared by all servers; it holds no
// state a caller could observe.
var msgPool = sync.Pool{New: func() any { return new(msgBufs) }}

// readError wraps a failure to read the message (as opposed to writing to
// the client): the response is then incomplete.
type readError struct{ err error }

func (e *readError) Error() string { return "read message: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// WriteMessage writes r as a POP3 multi-line body: wire form (bare LF
// becomes CRLF, a bare CR passes through, CRLF is appended when the last
// line lacks an LF, an empty r gives no lines; package internal/wireform
// holds the rules), dot-stuffed, followed by ".\r\n". n is
// len(W(r)), the octets excluding stuffing and terminator. When r fails, the
// error says "read message" and the terminator is not written: the caller must
// drop the connection, since the client cannot tell a cut body otherwise.
//
// It differs from textproto.DotWriter in three ways, all on purpose: an
// empty body gives no line at all (DotWriter sends one empty line); a body
// whose last line lacks an LF gets CRLF appended after its last byte even
// when that is a CR (DotWriter turns a final CR into CRLF); and in "\r\r\n"
// only the LF is a line break (DotWriter sends "\r\r\r\n").
func WriteMessage(w io.Writer, r io.Reader) (n int64, err error) {
	b := msgPool.Get().(*msgBufs)
	defer msgPool.Put(b)
	e := wireform.NewEncoder(w, b.out[:])
	for {
		k, rerr := r.Read(b.in[:])
		if k > 0 {
			e.Encode(b.in[:k])
			if e.Err() != nil {
				return e.N(), e.Err()
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			e.Flush()
			return e.N(), &readError{err: rerr}
		}
	}
	err = e.Close()
	return e.N(), err
}

// topCutter finds where TOP stops: after the header, its empty line, and
// body more lines. A line is empty when nothing precedes its LF or CRLF.
type topCutter struct {
	inHeader bool
	body     int64 // body lines still to send
	curLen   int   // octets of the current, unfinished line
	curCR    bool  // the current line starts with CR
}

// take returns how many leading bytes of p belong to the TOP output and
// whether the output is complete.
func (c *topCutter) take(p []byte) (int, bool) {
	off := 0
	for {
		if !c.inHeader && c.body <= 0 {
			return off, true
		}
		if off == len(p) {
			return off, false
		}
		i := bytes.IndexByte(p[off:], '\n')
		if i < 0 {
			if c.curLen == 0 {
				c.curCR = p[off] == '\r'
			}
			c.curLen += len(p) - off
			return len(p), false
		}
		if c.curLen == 0 && i > 0 {
			c.curCR = p[off] == '\r'
		}
		total := c.curLen + i
		empty := total == 0 || total == 1 && c.curCR
		c.curLen = 0
		off += i + 1
		if c.inHeader {
			if empty {
				c.inHeader = false
			}
		} else {
			c.body--
		}
	}
}

// writeTop writes the TOP response body for r: the header lines, the empty
// line, then at most lines body lines, in wire form, dot-stuffed, and
// ".\r\n". A message without an empty line is sent whole and followed by
// an empty line, since clients expect one.
func writeTop(w io.Writer, r io.Reader, lines int64) (n int64, err error) {
	b := msgPool.Get().(*msgBufs)
	defer msgPool.Put(b)
	e := wireform.NewEncoder(w, b.out[:])
	c := topCutter{inHeader: true, body: lines}
	for {
		k, rerr := r.Read(b.in[:])
		if k > 0 {
			take, done := c.take(b.in[:k])
			e.Encode(b.in[:take])
			if e.Err() != nil {
				return e.N(), e.Err()
			}
			if done {
				break
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			e.Flush()
			return e.N(), &readError{err: rerr}
		}
	}
	if c.inHeader {
		e.EmptyLine()
	}
	err = e.Close()
	return e.N(), err
}
