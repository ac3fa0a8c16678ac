package daemon_test

import (
	"math"
	"strconv"
	"testing"

	"github.com/pop3d/pop3d/daemon"
)

// TestTotalsSaturate: sizes a backend got from files a user can name or
// fill must never wrap the STAT total to a negative number; a negative size
// counts nothing.
func TestTotalsSaturate(t *testing.T) {
	huge := int64(math.MaxInt64/2 + 1)
	maxS := strconv.FormatInt(math.MaxInt64, 10)
	b := newMemBackend()
	b.addUser("u", "p",
		memMessage{data: []byte("a\n"), size: huge},
		memMessage{data: []byte("b\n"), size: huge},
		memMessage{data: []byte("c\n"), size: -5},
		memMessage{data: []byte("d\n"), size: huge},
	)
	ts := startServer(t, b, daemon.ModePlain, nil)
	c := ts.dial(t)
	c.cmd("USER u", "+OK")
	c.cmd("PASS p", "+OK maildrop has 4 messages ("+maxS+" octets)")
	c.cmd("STAT", "+OK 4 "+maxS)
	c.cmd("DELE 3", "+OK message 3 deleted")
	c.cmd("STAT", "+OK 3 "+maxS)
	c.cmd("DELE 1", "+OK message 1 deleted")
	c.cmd("DELE 2", "+OK message 2 deleted")
	c.cmd("DELE 4", "+OK message 4 deleted")
	c.cmd("STAT", "+OK 0 0")
	c.cmd("RSET", "+OK maildrop has 4 messages ("+maxS+" octets)")
}
