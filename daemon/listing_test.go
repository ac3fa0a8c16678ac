package daemon_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pop3d/pop3d/daemon"
)

// TestListingLarge: full LIST and UIDL answers longer than the engine's
// line buffer, with deleted messages left out and long unique-ids, come
// out line for line.
func TestListingLarge(t *testing.T) {
	const n = 3000
	b := newMemBackend()
	msgs := make([]memMessage, n)
	for i := range msgs {
		msgs[i] = memMessage{data: []byte(strings.Repeat("x", i%50) + "\n"),
			uid: fmt.Sprintf("%d-%s", i+1, strings.Repeat("u", i%200))}
	}
	b.addUser("ann", "pw", msgs...)
	ts := startServer(t, b, daemon.ModePlain, nil)
	c := ts.login(t, "ann", "pw")
	for _, i := range []int{2, 999, 2999} {
		c.cmd(fmt.Sprintf("DELE %d", i), fmt.Sprintf("+OK message %d deleted", i))
	}
	for _, cmd := range []string{"LIST", "UIDL"} {
		c.send(cmd)
		if l := c.line(); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("%s: %q", cmd, l)
		}
		lines := c.multi()
		var want []string
		for i, m := range msgs {
			if i+1 == 2 || i+1 == 999 || i+1 == 2999 {
				continue
			}
			v := fmt.Sprint(m.size)
			if cmd == "UIDL" {
				v = m.uid
			}
			want = append(want, fmt.Sprintf("%d %s", i+1, v))
		}
		if len(lines) != len(want) {
			t.Fatalf("%s: %d lines, want %d", cmd, len(lines), len(want))
		}
		for i := range want {
			if lines[i] != want[i] {
				t.Fatalf("%s line %d: %q, want %q", cmd, i, lines[i], want[i])
			}
		}
	}
}
