package e2e

import (
	"bytes"
	"github.com/pop3d/pop3d/internal/pop3test"
	"github.com/pop3d/pop3d/internal/wireform"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

type netpop3Result struct {
	Banner  string            `json:"banner"`
	TLS     bool              `json:"tls"`
	Count   int               `json:"count"`
	List    map[string]int64  `json:"list"`
	UIDL    map[string]string `json:"uidl"`
	Get     map[string]string `json:"get"`
	Deleted []int             `json:"deleted"`
}

func runNetPOP3(t *testing.T, mode, addr, cafile, del string) netpop3Result {
	t.Helper()
	requireTool(t, "perl")
	if err := exec.Command("perl", "-MNet::POP3", "-MJSON::PP", "-e1").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("Perl Net::POP3/JSON::PP missing: apt-get install -y perl-modules-5.36")
		}
		t.Skip("Perl Net::POP3/JSON::PP missing")
	}
	if mode != "plain" {
		if err := exec.Command("perl", "-MIO::Socket::SSL", "-e1").Run(); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("IO::Socket::SSL missing: apt-get install -y libio-socket-ssl-perl")
			}
			t.Skip("IO::Socket::SSL missing (apt-get install -y libio-socket-ssl-perl)")
		}
	}
	host, port := splitHostPort(t, addr)
	var r netpop3Result
	runClient(t, &r, "perl", "testdata/netpop3_client.pl", mode, host, port, alice, alicePass, cafile, del)
	return r
}

func checkNetPOP3(t *testing.T, r netpop3Result, msgs []message) {
	t.Helper()
	if r.Count != len(msgs) || len(r.List) != len(msgs) || len(r.UIDL) != len(msgs) {
		t.Fatalf("Net::POP3 login count %d, list %d, uidl %d entries; want %d", r.Count, len(r.List), len(r.UIDL), len(msgs))
	}
	for i, m := range msgs {
		n := strconv.Itoa(i + 1)
		w := wireform.Reference(m.data)
		if r.List[n] != int64(len(w)) {
			t.Errorf("%s: list{%s} = %d, want %d", m.shape, n, r.List[n], len(w))
		}
		if r.UIDL[n] != m.uniq {
			t.Errorf("%s: uidl{%s} = %q, want %q", m.shape, n, r.UIDL[n], m.uniq)
		}
		// Net::POP3 hands back lines ending in "\n" over plain text but
		// keeps "\r\n" over SSL (IO::Socket::SSL reads them differently).
		if got := toLF(b64(t, r.Get[n])); !bytes.Equal(got, toLF(w)) {
			t.Errorf("%s: get(%s):\n got %q\nwant %q", m.shape, n, pop3test.Trunc(got), pop3test.Trunc(toLF(w)))
		}
	}
}

// TestPerlNetPOP3: login, list, uidl, get, delete, quit, then the files.
func TestPerlNetPOP3(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	msgs := s.deliverShapes(t, alice)
	srv := startServer(t, s)
	r := runNetPOP3(t, "plain", srv.addr, "", "2,4")
	checkNetPOP3(t, r, msgs)
	for i, m := range msgs {
		_, err := os.Stat(m.path)
		gone := os.IsNotExist(err)
		if deleted := i == 1 || i == 3; deleted != gone {
			// A kept message may have moved new/ -> cur/ (mark_read).
			if !deleted && gone {
				if _, err := os.Stat(s.maildir(alice) + "/cur/" + m.uniq + ":2,S"); err == nil {
					continue
				}
			}
			t.Errorf("%s (message %d): gone=%v after delete(2,4)+quit", m.shape, i+1, gone)
		}
	}
}

// TestPerlNetPOP3TLS: starttls (Net::POP3 >= 3.0) and SSL => 1.
func TestPerlNetPOP3TLS(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	msgs := s.deliverShapes(t, alice)
	srv := startTLSServer(t, s)
	r := runNetPOP3(t, "starttls", srv.addr, s.caFile, "")
	if !r.TLS {
		t.Error("Net::POP3 starttls did not switch to SSL")
	}
	checkNetPOP3(t, r, msgs)
	r = runNetPOP3(t, "ssl", srv.tlsAdr, s.caFile, "")
	checkNetPOP3(t, r, msgs)
}
