package htpasswd

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// readNoEcho turns echo off on the terminal f, writes prompt to w, reads one
// line and restores the terminal's settings. Echo goes off before the
// prompt appears so that nothing typed after it is shown.
func readNoEcho(f *os.File, w io.Writer, prompt string) ([]byte, error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	quiet.Iflag |= unix.ICRNL
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return nil, err
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
	io.WriteString(w, prompt)
	defer io.WriteString(w, "\n") // the user's Enter was not echoed
	// Byte by byte: nothing after the line may be consumed, the second
	// prompt reads it.
	var line []byte
	var b [1]byte
	for {
		n, err := f.Read(b[:])
		if n == 1 {
			if b[0] == '\n' {
				return line, nil
			}
			line = append(line, b[0])
		}
		if errors.Is(err, io.EOF) {
			if len(line) == 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return line, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
