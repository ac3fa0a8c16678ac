package main

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/pop3d/pop3d/daemon"
	"github.com/pop3d/pop3d/maildir"
)

// wireSeeds are message shapes on which the size the store announces and
// the octets the engine sends have to agree.
var wireSeeds = []string{
	"", "\n", "a", "a\r\n", "\r", "a\rb\n", ".\n", "..x\n.",
	"\r\n", "\n\n", "\r\r\n", "\r\n\r\n", "a\nb", "a\r\nb\n", "a\n\r\nb\r",
	".", "..", ".\r\n.\r\n", "Subject: x\n\nbody\n.\n", "x\r",
	"\n.\n.\n", "line\rline\rline", strings.Repeat("a", 70000) + "\n", strings.Repeat("\n", 100),
	strings.Repeat("ab\r", 30000), "From: a\r\n\r\n" + strings.Repeat(".x\r\n", 2000),
}

func checkWireSize(t *testing.T, data []byte) {
	t.Helper()
	want, err := maildir.WireSize(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("WireSize: %v", err)
	}
	n, err := daemon.WriteMessage(io.Discard, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("WriteMessage: %v", err)
	}
	if n != want {
		t.Errorf("%q: WriteMessage sent %d octets, maildir.WireSize says %d", truncate(data), n, want)
	}
}

func truncate(b []byte) []byte {
	if len(b) > 60 {
		return append(b[:60:60], "..."...)
	}
	return b
}

func TestWireSizeAgrees(t *testing.T) {
	for _, s := range wireSeeds {
		checkWireSize(t, []byte(s))
	}
}

// TestWireSizeKnown pins a few sizes to the wire-form rules themselves, so
// that the two implementations cannot agree on a wrong answer.
func TestWireSizeKnown(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"", 0}, {"\n", 2}, {"a", 3}, {"a\r\n", 3}, {"\r", 3}, {"a\rb\n", 5}, {".\n", 3}, {"..x\n.", 8},
	}
	for _, tt := range tests {
		n, err := daemon.WriteMessage(io.Discard, strings.NewReader(tt.in))
		if err != nil || n != tt.want {
			t.Errorf("WriteMessage(%q) = %d, %v; want %d", tt.in, n, err, tt.want)
		}
	}
}

func FuzzWireSize(f *testing.F) {
	for _, s := range wireSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkWireSize(t, data)
	})
}
