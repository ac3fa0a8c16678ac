//go:build !linux

package htpasswd

import (
	"errors"
	"io"
	"os"
)

// isTerminal is false off Linux: the password is read as a line of stdin.
func isTerminal(f *os.File) bool { return false }

func readNoEcho(f *os.File, w io.Writer, prompt string) ([]byte, error) {
	return nil, errors.New("reading from a terminal is only implemented on Linux")
}
