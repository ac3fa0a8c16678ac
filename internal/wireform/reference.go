package wireform

import "bytes"

// This file writes the rules out literally, byte by byte, as the slow
// reference the fast Encoder and Counter (and every test that checks what
// a client received) are compared with. Production code does not use it.

// Reference returns W(file): every LF not preceded by CR becomes CRLF, and a
// non-empty file whose last byte is not LF gets CRLF appended.
func Reference(file []byte) []byte {
	out := make([]byte, 0, len(file)+len(file)/8+2)
	for i, c := range file {
		if c == '\n' && (i == 0 || file[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	if len(file) > 0 && file[len(file)-1] != '\n' {
		out = append(out, '\r', '\n')
	}
	return out
}

// Stuff returns the multi-line response body for the wire form w: every
// line starting with "." gets another ".", and ".\r\n" is appended.
func Stuff(w []byte) []byte {
	out := make([]byte, 0, len(w)+len(w)/64+3)
	for i, c := range w {
		if c == '.' && (i == 0 || w[i-1] == '\n') {
			out = append(out, '.')
		}
		out = append(out, c)
	}
	return append(out, '.', '\r', '\n')
}

// TopReference returns what "TOP n k" sends for file before stuffing: the
// header lines up to and including the first empty line (nothing but LF or
// CRLF), then at most k body lines, in wire form. A file without an empty
// line is sent whole and followed by an empty line.
func TopReference(file []byte, k int) []byte {
	var out []byte
	lines := splitLines(file)
	i := 0
	for ; i < len(lines); i++ {
		out = append(out, lines[i]...)
		if l := lines[i]; string(l) == "\n" || string(l) == "\r\n" {
			break
		}
	}
	if i == len(lines) {
		return append(Reference(out), '\r', '\n')
	}
	for j := i + 1; j < len(lines) && j <= i+k; j++ {
		out = append(out, lines[j]...)
	}
	return Reference(out)
}

// splitLines splits b after each LF; a last line without LF is kept.
func splitLines(b []byte) [][]byte {
	var lines [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			lines = append(lines, b)
			break
		}
		lines = append(lines, b[:i+1])
		b = b[i+1:]
	}
	return lines
}
