package daemon

import (
	"io"
	"sync"
)

// writerPool holds response buffers. A session takes one when it starts
// answering and gives it back when it flushes before waiting for the
// client, so that an idle connection holds no write buffer.
var writerPool = sync.Pool{New: func() any { b := make([]byte, 0, writeBufSize); return &b }}

// outWriter is a bufio.Writer whose buffer is borrowed from writerPool only
// while there is output pending.
type outWriter struct {
	w   io.Writer
	buf *[]byte // nil when nothing is pending
	err error   // sticky, like bufio.Writer's
}

func (o *outWriter) grab() []byte {
	if o.buf == nil {
		o.buf = writerPool.Get().(*[]byte)
		*o.buf = (*o.buf)[:0]
	}
	return *o.buf
}

// drain writes the buffered bytes, keeping the buffer.
func (o *outWriter) drain() error {
	if o.err != nil {
		return o.err
	}
	if o.buf == nil || len(*o.buf) == 0 {
		return nil
	}
	n, err := o.w.Write(*o.buf)
	if err == nil && n < len(*o.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		o.err = err
		return err
	}
	*o.buf = (*o.buf)[:0]
	return nil
}

// Flush writes the buffered bytes and returns the buffer to the pool.
func (o *outWriter) Flush() error {
	err := o.drain()
	o.release()
	return err
}

func (o *outWriter) release() {
	if o.buf != nil {
		*o.buf = (*o.buf)[:0]
		writerPool.Put(o.buf)
		o.buf = nil
	}
}

// Write buffers p; a p larger than the free space goes out directly once
// the buffer is empty, as with bufio.Writer.
func (o *outWriter) Write(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		if o.err != nil {
			return total, o.err
		}
		b := o.grab()
		if len(b) == 0 && len(p) >= cap(b) {
			n, err := o.w.Write(p)
			total += n
			if err != nil {
				o.err = err
			}
			return total, err
		}
		k := copy(b[len(b):cap(b)], p)
		*o.buf = b[:len(b)+k]
		total += k
		p = p[k:]
		if len(*o.buf) == cap(*o.buf) {
			o.drain()
		}
	}
	return total, o.err
}

// WriteString is Write for a string, without converting it.
func (o *outWriter) WriteString(s string) (int, error) {
	total := 0
	for len(s) > 0 {
		if o.err != nil {
			return total, o.err
		}
		b := o.grab()
		k := copy(b[len(b):cap(b)], s)
		*o.buf = b[:len(b)+k]
		total += k
		s = s[k:]
		if len(*o.buf) == cap(*o.buf) {
			o.drain()
		}
	}
	return total, o.err
}

// Reset drops pending output and any error and writes to w from now on.
func (o *outWriter) Reset(w io.Writer) {
	o.release()
	o.w = w
	o.err = nil
}
