package e2e

import (
	"bytes"
	"fmt"
	"github.com/pop3d/pop3d/internal/pop3test"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKillDuringUpdate: pop3d killed with SIGKILL right after QUIT, in the
// middle of UPDATE, leaves every message either present and intact or
// deleted as asked; no unmarked message is lost, and the mailbox lock does
// not outlive the process.
func TestKillDuringUpdate(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	const n = 600
	body := func(i int) []byte {
		return []byte(fmt.Sprintf("From: m%d@example.org\nSubject: message %d\n\nbody %d\n", i, i, i))
	}
	content := map[string][]byte{}
	for i := 0; i < n; i++ {
		m := s.deliver(t, alice, "small", body(i), i%3 == 0)
		content[m.uniq] = m.data
	}
	marked := map[string]bool{} // unique names ever marked for deletion
	for round, delay := range []time.Duration{0, 200 * time.Microsecond, time.Millisecond, 3 * time.Millisecond, 10 * time.Millisecond} {
		srv := startServer(t, s)
		p := pop3test.Dial(t, srv.addr)
		p.Login(alice, alicePass)
		uids := p.UIDL()
		var cmds strings.Builder
		for num, uid := range uids {
			if num%2 == 1 {
				marked[uid] = true
				fmt.Fprintf(&cmds, "DELE %d\r\n", num)
			}
		}
		for num := 2; num <= len(uids); num += 8 {
			fmt.Fprintf(&cmds, "RETR %d\r\n", num)
		}
		p.NetConn().Write([]byte(cmds.String()))
		// Drain the answers so that QUIT is the next command read.
		want := strings.Count(cmds.String(), "\r\n")
		for i := 0; i < want; i++ {
			l := p.Line()
			if strings.HasPrefix(l, "+OK") && strings.Contains(l, "octets") {
				if _, err := pop3test.ReadBody(p.Reader(), nil); err != nil {
					t.Fatal(err)
				}
			}
		}
		p.Send("QUIT")
		time.Sleep(delay)
		srv.cmd.Process.Kill()
		<-srv.done

		present := map[string]bool{}
		for _, f := range listMaildir(t, s.maildir(alice)) {
			uniq := strings.SplitN(filepath.Base(f), ":", 2)[0]
			if present[uniq] {
				t.Errorf("round %d: %s is in the Maildir twice", round, uniq)
			}
			present[uniq] = true
			data, err := os.ReadFile(filepath.Join(s.maildir(alice), f))
			if err != nil {
				t.Errorf("round %d: %v", round, err)
			} else if !bytes.Equal(data, content[uniq]) {
				t.Errorf("round %d: %s changed: %q", round, f, data)
			}
		}
		for uniq := range content {
			if !present[uniq] && !marked[uniq] {
				t.Errorf("round %d (kill %v after QUIT): unmarked message %s lost", round, delay, uniq)
			}
		}
		if tmp, _ := os.ReadDir(filepath.Join(s.maildir(alice), "tmp")); len(tmp) > 0 {
			t.Logf("round %d: tmp/ holds %d entries", round, len(tmp))
		}
		t.Logf("round %d: killed %v after QUIT, %d of %d messages left", round, delay, len(present), n)
	}
	// The lock died with the process.
	srv := startServer(t, s)
	p := pop3test.Dial(t, srv.addr)
	p.Login(alice, alicePass)
	p.Quit()
}
