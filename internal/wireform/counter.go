package wireform

import (
	"bytes"
	"errors"
	"io"
)

// Counter computes len(W) of a message incrementally over the pieces it is
// given, without building W. The zero value counts an empty message.
type Counter struct {
	n    int64 // bytes seen
	bare int64 // LFs not preceded by CR
	last byte  // last byte seen, 0 before any
}

// Count adds the next piece of the message. Pieces may split the message
// anywhere, even between a CR and its LF.
func (c *Counter) Count(p []byte) {
	if len(p) == 0 {
		return
	}
	// bytes.Count is vectorised; lines are short, so checking the byte
	// before each LF with IndexByte would cost a call per line instead.
	lf := bytes.Count(p, []byte{'\n'})
	if lf > 0 {
		crlf := bytes.Count(p, []byte("\r\n"))
		if p[0] == '\n' && c.last == '\r' {
			crlf++
		}
		c.bare += int64(lf - crlf)
	}
	c.n += int64(len(p))
	c.last = p[len(p)-1]
}

// Raw is the number of octets of the message counted so far, as stored.
func (c *Counter) Raw() int64 { return c.n }

// Size is len(W) of the octets counted so far, taken as the whole message:
// every LF not preceded by CR counts two octets, a bare CR one, and a
// non-empty message whose last byte is not LF gets a CRLF (two octets)
// appended. An empty message has size 0. Dot-stuffing is not counted.
func (c *Counter) Size() int64 {
	if c.n == 0 {
		return 0
	}
	s := c.n + c.bare
	if c.last != '\n' {
		s += 2
	}
	return s
}

// sizeBufSize is the read size of Size.
const sizeBufSize = 32 << 10

// Size returns len(W) of the message read from r.
func Size(r io.Reader) (int64, error) {
	var c Counter
	buf := make([]byte, sizeBufSize)
	for {
		n, err := r.Read(buf)
		c.Count(buf[:n])
		if errors.Is(err, io.EOF) {
			return c.Size(), nil
		}
		if err != nil {
			return 0, err
		}
	}
}
