package maildir

import (
	"io"

	"github.com/pop3d/pop3d/internal/wireform"
)

// WireSize returns the length of the wire form of the message read from r:
// every LF not preceded by CR counts two octets, a bare CR one, and a
// non-empty message whose last byte is not LF gets a CRLF (two octets)
// appended. An empty message has size 0. Dot-stuffing is not counted. The
// rules live in package internal/wireform, shared with the engine that
// sends the message.
func WireSize(r io.Reader) (int64, error) { return wireform.Size(r) }
