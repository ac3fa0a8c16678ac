package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pop3d/pop3d/internal/pop3test"
)

// TestListingRecordBinary: the real binary with a mailbox big enough for a
// listing record (256 messages or more). A repeat login serves the record
// (STAT from its header, LIST and UIDL from its body) exactly as the
// directories are; a delivery between sessions is seen; a session that
// deletes removes the record; a record damaged on disk ends the one session
// that needs its messages with -ERR [SYS/TEMP], changes nothing, and the
// next login lists the directories again.
func TestListingRecordBinary(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	for i := range 300 {
		s.deliver(t, alice, "small", fmt.Appendf(nil, "Subject: %d\n\nbody %d\n", i, i), i%3 == 0)
	}
	md := s.maildir(alice)
	record := filepath.Join(md, "pop3d-listing")
	// The record is trusted only for directories whose timestamps are
	// more than 2 s older than it (the racy-timestamp rule).
	time.Sleep(2100 * time.Millisecond)
	srv := startServer(t, s)

	// session returns STAT's answer, then LIST and UIDL as one sorted
	// set of "n size uid" lines.
	session := func(cmds ...string) (string, []string) {
		t.Helper()
		p := pop3test.Dial(t, srv.addr)
		p.Login(alice, alicePass)
		stat := p.OK("STAT")
		var lines []string
		if len(cmds) > 0 {
			sizes, uids := p.List(), p.UIDL()
			for n, size := range sizes {
				lines = append(lines, fmt.Sprintf("%d %d %s", n, size, uids[n]))
			}
			sort.Strings(lines)
		}
		p.Quit()
		return stat, lines
	}
	stat1, list1 := session("LIST") // lists the directories, writes the record
	if _, err := os.Stat(record); err != nil {
		t.Fatalf("no listing record after a login: %v", err)
	}
	if !strings.HasPrefix(stat1, "300 ") {
		t.Fatalf("STAT %q", stat1)
	}
	if stat2, _ := session(); stat2 != stat1 {
		t.Fatalf("STAT from the record's header %q, listed %q", stat2, stat1)
	}
	if _, list2 := session("LIST"); strings.Join(list2, "\n") != strings.Join(list1, "\n") {
		t.Fatalf("LIST+UIDL from the record differ from the listing")
	}

	// A delivery changes new/: the next login lists and sees it.
	s.deliver(t, alice, "small", []byte("Subject: late\n\nlate\n"), false)
	if stat, _ := session(); !strings.HasPrefix(stat, "301 ") {
		t.Fatalf("after a delivery: STAT %q", stat)
	}

	// A session that deletes removes the record.
	time.Sleep(2100 * time.Millisecond)
	session("LIST") // a fresh record for 301 messages
	p := pop3test.Dial(t, srv.addr)
	p.Login(alice, alicePass)
	p.OK("DELE 1")
	p.Quit()
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Fatalf("record kept after a deletion: %v", err)
	}
	if stat, _ := session(); !strings.HasPrefix(stat, "300 ") {
		t.Fatalf("after DELE: STAT %q", stat)
	}

	// Damage the body of a fresh record: STAT still answers from its
	// header, UIDL ends the session, nothing changes, the record goes.
	time.Sleep(2100 * time.Millisecond)
	statOK, listOK := session("LIST")
	b, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x20
	writeFile(t, record, b, 0o600)
	before := listMaildir(t, md)
	p = pop3test.Dial(t, srv.addr)
	p.Login(alice, alicePass)
	if stat := p.OK("STAT"); stat != statOK {
		t.Fatalf("STAT from a damaged record's header %q, want %q", stat, statOK)
	}
	p.OK("NOOP")
	p.Err("UIDL", "SYS/TEMP")
	p.ExpectClosed()
	if after := listMaildir(t, md); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Fatal("the failed session changed the Maildir")
	}
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Fatalf("damaged record kept: %v", err)
	}
	if stat, list := session("LIST"); stat != statOK || strings.Join(list, "\n") != strings.Join(listOK, "\n") {
		t.Fatalf("after the damaged record: STAT %q, LIST+UIDL differ: %v", stat, strings.Join(list, "\n") != strings.Join(listOK, "\n"))
	}
}
