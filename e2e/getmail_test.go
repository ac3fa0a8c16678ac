package e2e

import (
	"bytes"
	"fmt"
	"github.com/pop3d/pop3d/internal/wireform"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// getmailRun runs getmail6 with a retriever against addr. It delivers through
// MDA_external (testdata/mda.sh, one file per message): getmail's Maildir
// and mboxrd destinations refuse to deliver as root, which the tests may be.
type getmailRun struct {
	dir, rc, out string
}

func newGetmail(t *testing.T, retriever, addr string, extraRetriever string, del bool) *getmailRun {
	t.Helper()
	requireTool(t, "getmail")
	dir := t.TempDir()
	g := &getmailRun{dir: dir, rc: filepath.Join(dir, "getmailrc"), out: filepath.Join(dir, "out")}
	if err := os.Mkdir(g.out, 0o700); err != nil {
		t.Fatal(err)
	}
	mda, err := filepath.Abs("testdata/mda.sh")
	if err != nil {
		t.Fatal(err)
	}
	host, port := splitHostPort(t, addr)
	rc := fmt.Sprintf(`[retriever]
type = %s
server = %s
port = %s
username = %s
password = %s
timeout = 30
%s

[destination]
type = MDA_external
path = %s
arguments = ("%s", "0.3")
allow_root_commands = true
unixfrom = false

[options]
verbose = 1
read_all = true
delete = %v
delivered_to = false
received = false
`, retriever, host, port, alice, alicePass, extraRetriever, mda, g.out, del)
	writeFile(t, g.rc, []byte(rc), 0o600)
	return g
}

// fetch runs getmail and returns the message files it delivered.
func (g *getmailRun) fetch(t *testing.T) [][]byte {
	t.Helper()
	runCmd(t, 2*time.Minute, []string{"HOME=" + g.dir}, "getmail", "--rcfile", g.rc, "--getmaildir", g.dir)
	var got [][]byte
	ents, err := os.ReadDir(g.out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(g.out, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, data)
	}
	return got
}

// getmailForm is what getmail delivers for a message whose RETR octets were
// W(b): LF line ends, and a bare CR turned into a line break (Python's
// email package reads with universal newlines).
func getmailForm(b []byte) []byte {
	return bytes.ReplaceAll(toLF(wireform.Reference(b)), []byte("\r"), []byte("\n"))
}

// stripReturnPath removes the Return-Path header getmail prepends.
func stripReturnPath(msgs [][]byte) [][]byte {
	var out [][]byte
	for _, m := range msgs {
		if bytes.HasPrefix(m, []byte("Return-Path:")) {
			if i := bytes.IndexByte(m, '\n'); i >= 0 {
				m = m[i+1:]
			}
		}
		out = append(out, m)
	}
	return out
}

// TestGetmail: SimplePOP3Retriever retrieves all into a Maildir and leaves
// them; with delete = true they are removed from disk.
func TestGetmail(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	// getmail parses each message with Python's email package; the shapes
	// without a header/body separator or with no content at all are
	// rewritten by it, so they are checked by the other clients.
	var msgs []message
	for _, sh := range shapes() {
		if sh.name == "empty" || sh.name == "noheadersep" {
			continue
		}
		msgs = append(msgs, s.deliver(t, alice, sh.name, sh.data, false))
	}
	srv := startServer(t, s)

	g := newGetmail(t, "SimplePOP3Retriever", srv.addr, "", false)
	sameBodies(t, "getmail", stripReturnPath(g.fetch(t)), msgs, getmailForm)
	if left := listMaildir(t, s.maildir(alice)); len(left) != len(msgs) {
		t.Errorf("getmail with delete = false left %d of %d files: %v", len(left), len(msgs), left)
	}

	g = newGetmail(t, "SimplePOP3Retriever", srv.addr, "", true)
	sameBodies(t, "getmail delete=true", stripReturnPath(g.fetch(t)), msgs, getmailForm)
	if left := listMaildir(t, s.maildir(alice)); len(left) != 0 {
		t.Errorf("getmail with delete = true left %v", left)
	}
}

// TestGetmailSSL: SimplePOP3SSLRetriever with the test CA.
func TestGetmailSSL(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	var msgs []message
	for _, sh := range shapes()[:3] {
		msgs = append(msgs, s.deliver(t, alice, sh.name, sh.data, false))
	}
	srv := startTLSServer(t, s)
	g := newGetmail(t, "SimplePOP3SSLRetriever", srv.tlsAdr, "ca_certs = "+s.caFile+"\nssl_cert_hostname = localhost", false)
	sameBodies(t, "getmail SSL", stripReturnPath(g.fetch(t)), msgs, getmailForm)
	if !strings.Contains(srv.stderr.String(), "tls=true") {
		t.Error("no login line with tls=true after getmail over pop3s")
	}
}
