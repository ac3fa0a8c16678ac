package wireform

import (
	"bytes"
	"io"
)

// crlf and dotCRLF are written, never modified.
var (
	crlf    = []byte("\r\n")
	dotCRLF = []byte(".\r\n")
)

// Encoder turns raw message bytes into the wire form W (bare LF becomes
// CRLF) and dot-stuffs it, batching output into the buffer it was given.
// It scans with bytes.IndexByte and copies whole runs: there is no per-byte
// loop. The zero value is not usable; use NewEncoder.
type Encoder struct {
	w         io.Writer
	out       []byte // pending output; its capacity is the batch size
	n         int64  // octets of W so far: without stuffing
	lineStart bool   // the next byte starts a line
	prevCR    bool   // the last byte seen was CR
	err       error  // first write error
}

// NewEncoder returns an Encoder writing to w in batches of cap(buf) octets.
// buf stays the caller's (it may come from a pool): the Encoder uses it
// until the last Flush or Close.
func NewEncoder(w io.Writer, buf []byte) Encoder {
	return Encoder{w: w, out: buf[:0], lineStart: true}
}

// N is the number of octets of W encoded so far, without dot-stuffing and
// terminator: the size POP3 announces for what was encoded.
func (e *Encoder) N() int64 { return e.n }

// Err is the first error the underlying writer returned, if any. After an
// error nothing more is written.
func (e *Encoder) Err() error { return e.err }

// Flush writes the pending output.
func (e *Encoder) Flush() {
	if len(e.out) > 0 && e.err == nil {
		_, e.err = e.w.Write(e.out)
	}
	e.out = e.out[:0]
}

func (e *Encoder) emit(p []byte) {
	for len(p) > 0 {
		if len(e.out) == cap(e.out) {
			e.Flush()
		}
		k := copy(e.out[len(e.out):cap(e.out)], p)
		e.out = e.out[:len(e.out)+k]
		p = p[k:]
	}
}

func (e *Encoder) emitByte(c byte) {
	if len(e.out) == cap(e.out) {
		e.Flush()
	}
	e.out = append(e.out, c)
}

// Encode encodes the next piece of the message. Pieces may split the
// message anywhere, even between a CR and its LF.
func (e *Encoder) Encode(p []byte) {
	for len(p) > 0 {
		if e.lineStart {
			if p[0] == '.' {
				e.emitByte('.')
			}
			e.lineStart = false
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			e.emit(p)
			e.n += int64(len(p))
			e.prevCR = p[len(p)-1] == '\r'
			return
		}
		cr := e.prevCR
		if i > 0 {
			cr = p[i-1] == '\r'
		}
		switch {
		case cap(e.out)-len(e.out) >= i+2:
			// Fast path: the line fits in the batch.
			if cr {
				e.out = append(e.out, p[:i+1]...)
				e.n += int64(i + 1)
			} else {
				e.out = append(e.out, p[:i]...)
				e.out = append(e.out, '\r', '\n')
				e.n += int64(i + 2)
			}
		case cr:
			e.emit(p[:i+1])
			e.n += int64(i + 1)
		default:
			e.emit(p[:i])
			e.emit(crlf)
			e.n += int64(i + 2)
		}
		e.prevCR = false
		e.lineStart = true
		p = p[i+1:]
	}
}

// EndLine completes a last line that lacks its LF.
func (e *Encoder) EndLine() {
	if !e.lineStart {
		e.emit(crlf)
		e.n += 2
		e.lineStart = true
		e.prevCR = false
	}
}

// EmptyLine ends the current line, if any, and adds an empty line (TOP of
// a message without a header/body separator sends one).
func (e *Encoder) EmptyLine() {
	e.EndLine()
	e.emit(crlf)
	e.n += 2
}

// Close ends the multi-line response with ".\r\n" (after completing a
// last line that lacks its LF) and flushes. It returns Err.
func (e *Encoder) Close() error {
	e.EndLine()
	e.emit(dotCRLF)
	e.Flush()
	return e.err
}
