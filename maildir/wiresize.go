package maildir

import (
	"bytes"
	"errors"
	"io"
)

// WireSize returns the length of the wire form of the message read from r:
// every LF not preceded by CR counts two octets, a bare CR one, and a
// non-empty message whose last byte is not LF gets a CRLF (two octets)
// appended. An empty message has size 0. Dot-stuffing is not counted.
func WireSize(r io.Reader) (int64, error) {
	var w wireCounter
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		w.write(buf[:n])
		if errors.Is(err, io.EOF) {
			return w.size(), nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// wireCounter computes the wire size incrementally over chunks.
type wireCounter struct {
	n    int64 // bytes seen
	bare int64 // LFs not preceded by CR
	last byte  // last byte seen, 0 before any
}

func (w *wireCounter) write(p []byte) {
	if len(p) == 0 {
		return
	}
	// bytes.Count is vectorised; lines are short, so checking the byte
	// before each LF with IndexByte would cost a call per line instead.
	lf := bytes.Count(p, []byte{'\n'})
	if lf > 0 {
		crlf := bytes.Count(p, []byte("\r\n"))
		if p[0] == '\n' && w.last == '\r' {
			crlf++
		}
		w.bare += int64(lf - crlf)
	}
	w.n += int64(len(p))
	w.last = p[len(p)-1]
}

func (w *wireCounter) size() int64 {
	if w.n == 0 {
		return 0
	}
	s := w.n + w.bare
	if w.last != '\n' {
		s += 2
	}
	return s
}
