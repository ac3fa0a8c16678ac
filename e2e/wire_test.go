package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pop3d/pop3d/daemon"
	"github.com/pop3d/pop3d/internal/pop3test"
	"github.com/pop3d/pop3d/internal/wireform"
)

// TestWireForm checks, with a strict client, that every message shape comes
// out of the real binary as W(file): STAT, LIST and "+OK n octets" agree with
// the octets received, TOP follows the rules, UIDL is the unique name, and a
// session without DELE changes nothing on disk.
func TestWireForm(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	msgs := s.deliverShapes(t, alice)
	before := listMaildir(t, s.maildir(alice))
	srv := startServer(t, s)

	p := pop3test.Dial(t, srv.addr)
	p.Login(alice, alicePass)

	var total int64
	for _, m := range msgs {
		total += int64(len(wireform.Reference(m.data)))
	}
	stat := p.OK("STAT")
	if want := fmt.Sprintf("%d %d", len(msgs), total); stat != want {
		t.Errorf("STAT = %q, want %q", stat, want)
	}

	sizes := p.List()
	uids := p.UIDL()
	if len(sizes) != len(msgs) || len(uids) != len(msgs) {
		t.Fatalf("LIST has %d and UIDL %d entries, want %d", len(sizes), len(uids), len(msgs))
	}
	for i, m := range msgs {
		n := i + 1
		w := wireform.Reference(m.data)
		t.Run(m.shape, func(t *testing.T) {
			if sizes[n] != int64(len(w)) {
				t.Errorf("LIST %d = %d, want len(W(file)) = %d", n, sizes[n], len(w))
			}
			if one := p.OK(fmt.Sprintf("LIST %d", n)); one != fmt.Sprintf("%d %d", n, len(w)) {
				t.Errorf("LIST %d = %q", n, one)
			}
			if uids[n] != m.uniq {
				t.Errorf("UIDL %d = %q, want the unique name %q", n, uids[n], m.uniq)
			}
			if one := p.OK(fmt.Sprintf("UIDL %d", n)); one != fmt.Sprintf("%d %s", n, m.uniq) {
				t.Errorf("UIDL %d = %q", n, one)
			}
			status, body := p.Multi(fmt.Sprintf("RETR %d", n))
			if !bytes.Equal(body, w) {
				t.Errorf("RETR %d body differs from W(file):\n got %q\nwant %q", n, pop3test.Trunc(body), pop3test.Trunc(w))
			}
			if int64(len(body)) != sizes[n] {
				t.Errorf("RETR %d sent %d octets, LIST said %d", n, len(body), sizes[n])
			}
			if f := strings.Fields(status); len(f) < 2 || f[0] != strconv.Itoa(len(w)) || f[1] != "octets" {
				t.Errorf("RETR %d status %q, want \"%d octets\"", n, status, len(w))
			}
			for _, k := range []int{0, 1, 2, 1000000} {
				_, top := p.Multi(fmt.Sprintf("TOP %d %d", n, k))
				if want := wireform.TopReference(m.data, k); !bytes.Equal(top, want) && !(len(m.data) == 0 && len(top) == 0) {
					t.Errorf("TOP %d %d:\n got %q\nwant %q", n, k, pop3test.Trunc(top), pop3test.Trunc(want))
				}
			}
		})
	}
	p.Quit()

	// RETR without DELE: nothing deleted; retrieved messages from new/ moved
	// to cur/ with S (mark_read = yes), unique names unchanged.
	after := listMaildir(t, s.maildir(alice))
	if len(after) != len(before) {
		t.Fatalf("Maildir had %v, now %v", before, after)
	}
	for _, m := range msgs {
		want := "cur/" + m.uniq + ":2,S"
		found := false
		for _, a := range after {
			if a == want {
				found = true
			}
		}
		if !found {
			t.Errorf("after RETR+QUIT, %s is not %s (Maildir: %v)", m.uniq, want, after)
		}
	}
}

// TestErrorsAndDelete checks DELE/RSET/QUIT against the files on disk, and
// the errors for bad arguments.
func TestErrorsAndDelete(t *testing.T) {
	s := newSite(t)
	msgs := s.deliverShapes(t, alice)
	srv := startServer(t, s)

	p := pop3test.Dial(t, srv.addr)
	p.Login(alice, alicePass)
	for _, c := range []string{"RETR 0", "RETR 99", "DELE x", "TOP 1", "LIST -1", "NOSUCH", "STLS"} {
		if r := p.Cmd(c); !strings.HasPrefix(r, "-ERR") {
			t.Errorf("%s: got %q, want -ERR", c, r)
		}
	}
	p.OK("DELE 1")
	if r := p.Cmd("RETR 1"); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("RETR of a deleted message: got %q, want -ERR", r)
	}
	if r := p.Cmd("DELE 1"); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("DELE twice: got %q, want -ERR", r)
	}
	p.OK("RSET")
	p.OK("DELE 2")
	p.OK("DELE 5")
	if st := p.OK("STAT"); !strings.HasPrefix(st, strconv.Itoa(len(msgs)-2)+" ") {
		t.Errorf("STAT after 2 DELE = %q", st)
	}
	// Nothing is removed before QUIT.
	for _, i := range []int{1, 4} {
		if _, err := os.Stat(msgs[i].path); err != nil {
			t.Errorf("message %d gone before QUIT: %v", i+1, err)
		}
	}
	p.Quit()
	for i, m := range msgs {
		_, err := os.Stat(m.path)
		_, errCur := os.Stat(filepath.Join(s.maildir(alice), "cur", m.uniq+":2,S"))
		present := err == nil || errCur == nil
		if deleted := i == 1 || i == 4; deleted == present {
			t.Errorf("message %d (%s): present=%v after DELE 2, DELE 5, QUIT", i+1, m.shape, present)
		}
	}

	// A drop without QUIT changes nothing.
	before := listMaildir(t, s.maildir(alice))
	p = pop3test.Dial(t, srv.addr)
	p.Login(alice, alicePass)
	p.OK("DELE 1")
	p.Multi("RETR 2")
	p.NetConn().Close()
	if _, ok := srv.waitLog(func(l logLine) bool { return l["msg"] == "disconnect" && l["user"] == alice }, 5e9); !ok {
		t.Fatal("no disconnect line after the client dropped")
	}
	if after := listMaildir(t, s.maildir(alice)); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("drop without QUIT changed the Maildir:\nbefore %v\nafter  %v", before, after)
	}
}

// TestPipelining sends every command in one write and checks the answers
// come back in order.
func TestPipelining(t *testing.T) {
	s := newSite(t)
	msgs := s.deliverShapes(t, alice)
	srv := startServer(t, s)
	p := pop3test.Dial(t, srv.addr)
	if caps := p.Capa(); !contains(caps, "PIPELINING") {
		t.Errorf("CAPA %q lacks PIPELINING", caps)
	}
	p.Pipeline("USER "+alice, "PASS "+alicePass, "STAT", "RETR 1", "NOOP", "LIST 2", "QUIT")
	p.ExpectOK("USER")
	p.ExpectOK("PASS")
	p.ExpectOK("STAT")
	p.ExpectOK("RETR")
	if body := p.Body(); !bytes.Equal(body, wireform.Reference(msgs[0].data)) {
		t.Errorf("pipelined RETR 1: body %q", pop3test.Trunc(body))
	}
	p.ExpectOK("NOOP")
	if r := p.ExpectOK("LIST 2"); r != fmt.Sprintf("+OK 2 %d", len(wireform.Reference(msgs[1].data))) {
		t.Errorf("pipelined LIST 2 = %q", r)
	}
	p.ExpectOK("QUIT")
	p.ExpectEOF()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// FuzzWriteMessageWire checks daemon.WriteMessage, the engine's RETR
// encoder, as a client sees it: what the strict test client un-stuffs is
// the reference W(data), and n is its length.
func FuzzWriteMessageWire(f *testing.F) {
	for _, sh := range shapes() {
		f.Add(sh.data)
	}
	// Lines longer than bufio's 4096-octet buffer, one of them stuffed: the
	// client once garbled these.
	f.Add(append(bytes.Repeat([]byte("x"), 5000), "\n.y\n"...))
	f.Add(append([]byte("."), bytes.Repeat([]byte("z\r"), 3000)...))
	f.Add([]byte("."))
	f.Add([]byte("\r"))
	f.Add([]byte("a\r\r\n.\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var buf bytes.Buffer
		n, err := daemon.WriteMessage(&buf, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		out := append([]byte(nil), buf.Bytes()...)
		br := bufio.NewReader(&buf)
		body, err := pop3test.ReadBody(br, nil)
		if err != nil {
			t.Fatalf("WriteMessage(%q) output %q: %v", data, out, err)
		}
		if br.Buffered() != 0 || buf.Len() != 0 {
			t.Fatalf("WriteMessage(%q) wrote %q, bytes after the final .CRLF", data, out)
		}
		w := wireform.Reference(data)
		if !bytes.Equal(body, w) {
			t.Fatalf("WriteMessage(%q) un-stuffed = %q, want W = %q", data, body, w)
		}
		if n != int64(len(w)) {
			t.Fatalf("WriteMessage(%q) n = %d, want %d", data, n, len(w))
		}
	})
}

// TestBadCommandCounterResets: as in Dovecot (pop3-client.c resets
// bad_counter after every successful command), only consecutive failed
// commands count towards the limit, so a long session whose client now and
// then asks for a message that is gone is not cut off.
func TestBadCommandCounterResets(t *testing.T) {
	s := newSite(t)
	s.deliverShapes(t, alice)
	srv := startServer(t, s)
	p := pop3test.Dial(t, srv.addr)
	p.Login(alice, alicePass)
	p.OK("DELE 1")
	for i := 0; i < 30; i++ {
		if r := p.Cmd("RETR 1"); !strings.HasPrefix(r, "-ERR") || strings.Contains(r, "too many") {
			t.Fatalf("RETR of a deleted message, round %d: %q; want -ERR and the session kept (a NOOP succeeded in between)", i+1, r)
		}
		p.OK("NOOP")
	}
	p.OK("RSET")
	p.Quit()
}

// TestCaseInsensitiveCommands: command names in any case (RFC 1939).
func TestCaseInsensitiveCommands(t *testing.T) {
	s := newSite(t)
	msgs := s.deliverShapes(t, alice)
	srv := startServer(t, s)
	p := pop3test.Dial(t, srv.addr)
	p.OK("user " + alice)
	p.OK("pAsS " + alicePass)
	if st := p.OK("stat"); !strings.HasPrefix(st, strconv.Itoa(len(msgs))+" ") {
		t.Errorf("stat = %q", st)
	}
	if _, body := p.Multi("Retr 1"); !bytes.Equal(body, wireform.Reference(msgs[0].data)) {
		t.Errorf("Retr 1 = %q", pop3test.Trunc(body))
	}
	p.OK("noop")
	p.OK("quit")
	p.ExpectEOF()
}

// TestDeliveryDuringSession: mail delivered while a session is open is not
// part of it, survives that session's DELE-everything + QUIT, and shows up
// in the next session.
func TestDeliveryDuringSession(t *testing.T) {
	s := newSite(t)
	msgs := s.deliverShapes(t, alice)
	srv := startServer(t, s)
	p := pop3test.Dial(t, srv.addr)
	p.Login(alice, alicePass)
	late := s.deliver(t, alice, "late", []byte("From: late@example.org\nSubject: late\n\narrived mid-session\n"), false)
	if st := p.OK("STAT"); !strings.HasPrefix(st, strconv.Itoa(len(msgs))+" ") {
		t.Errorf("STAT after a delivery mid-session = %q, want the login snapshot of %d", st, len(msgs))
	}
	for i := range msgs {
		p.OK(fmt.Sprintf("DELE %d", i+1))
	}
	if r := p.Cmd(fmt.Sprintf("RETR %d", len(msgs)+1)); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("RETR of a message outside the snapshot: %q", r)
	}
	p.Quit()
	left := listMaildir(t, s.maildir(alice))
	if len(left) != 1 || left[0] != "new/"+late.uniq {
		t.Fatalf("after DELE of the snapshot + QUIT the Maildir holds %v, want only new/%s", left, late.uniq)
	}
	p = pop3test.Dial(t, srv.addr)
	p.Login(alice, alicePass)
	if uids := p.UIDL(); len(uids) != 1 || uids[1] != late.uniq {
		t.Errorf("next session UIDL = %v, want 1 -> %s", uids, late.uniq)
	}
	p.Quit()
}
