// Package testlog holds what tests use to collect the output of servers
// and child processes while they run. It is imported by tests only.
package testlog

import (
	"bytes"
	"sync"
)

// Buffer collects writes from many goroutines (a server's logger, a
// child's stderr) while a test reads what has arrived so far.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p; it is safe for concurrent use.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
