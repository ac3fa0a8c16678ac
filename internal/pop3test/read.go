package pop3test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// ReadLine reads one line of any length from r and returns it without its
// CRLF; a line ending in a bare LF, or cut by the end of input, is an
// error. The returned slice is the caller's.
func ReadLine(r *bufio.Reader) ([]byte, error) {
	line, err := readRaw(r)
	if err != nil {
		return line, fmt.Errorf("reading a line (got %q): %w", Trunc(line), err)
	}
	if !bytes.HasSuffix(line, []byte("\r\n")) {
		return line, fmt.Errorf("line %q does not end in CRLF", Trunc(line))
	}
	return line[:len(line)-2], nil
}

// readRaw reads up to and including the next LF, however far it is: the
// pieces bufio returns when its buffer fills are copied and joined, so the
// result never aliases the reader's buffer.
func readRaw(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		line = append(line, frag...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return line, err
	}
}

// ReadBody reads a multi-line body up to ".\r\n" and removes the
// dot-stuffing. It insists on CRLF line ends and on every line starting
// with "." being stuffed. beforeRead, if not nil, runs before each line is
// read (to extend a deadline).
func ReadBody(r *bufio.Reader, beforeRead func()) ([]byte, error) {
	var body bytes.Buffer
	for {
		if beforeRead != nil {
			beforeRead()
		}
		line, err := readRaw(r)
		if err != nil {
			return body.Bytes(), fmt.Errorf("multi-line body cut after %d octets (then %q): %w", body.Len(), Trunc(line), err)
		}
		if !bytes.HasSuffix(line, []byte("\r\n")) {
			return body.Bytes(), fmt.Errorf("body line %q does not end in CRLF", Trunc(line))
		}
		if string(line) == ".\r\n" {
			return body.Bytes(), nil
		}
		if line[0] == '.' {
			if line[1] != '.' {
				return body.Bytes(), fmt.Errorf("body line %q starts with an unstuffed dot", Trunc(line))
			}
			line = line[1:]
		}
		body.Write(line)
	}
}

// SplitLines splits a multi-line body into its lines without CRLF.
func SplitLines(body []byte) []string {
	if len(body) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(body), "\r\n"), "\r\n")
}

// IsOK reports whether a status line is a positive response.
func IsOK(status string) bool { return status == "+OK" || strings.HasPrefix(status, "+OK ") }

// IsErr reports whether a status line is a negative response.
func IsErr(status string) bool { return status == "-ERR" || strings.HasPrefix(status, "-ERR ") }

// Code returns the response code of a status line (RFC 2449 section 8),
// without brackets and with its hierarchy ("SYS/TEMP"), or "" when there
// is none.
func Code(status string) string {
	_, rest, ok := strings.Cut(status, " ")
	if !ok || !strings.HasPrefix(rest, "[") {
		return ""
	}
	end := strings.IndexByte(rest, ']')
	if end < 0 {
		return ""
	}
	return rest[1:end]
}

// Redact hides the secret of a PASS, AUTH or APOP command line, for
// failure messages.
func Redact(line string) string {
	verb, _, ok := strings.Cut(line, " ")
	if !ok {
		return line
	}
	switch strings.ToUpper(verb) {
	case "PASS", "AUTH", "APOP":
		return verb + " ..."
	}
	return line
}
