package e2e

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pop3d/pop3d/internal/testpki"
)

// Test users. alice's entry is made by Apache's htpasswd -B, bob's by
// `pop3d passwd`.
const (
	alice     = "alice"
	alicePass = "Al1ce-secret"
	bob       = "bob@example.org"
	bobPass   = "b0b pass with spaces"
)

// site is one test installation: a password file, a Maildir root and a test
// CA with a server certificate.
type site struct {
	dir      string
	passwd   string
	mailRoot string
	caFile   string // PEM of the test CA
	certFile string // server certificate (leaf), PEM
	keyFile  string
	ca       *testpki.CA
	serial   *big.Int // serial of the certificate in certFile
}

// newSite makes a site with alice (htpasswd -B) and bob (pop3d passwd) and
// empty mailboxes.
func newSite(t testing.TB) *site {
	t.Helper()
	requireTool(t, "htpasswd")
	dir := t.TempDir()
	s := &site{
		dir:      dir,
		passwd:   filepath.Join(dir, "passwd"),
		mailRoot: filepath.Join(dir, "mail"),
	}
	runCmd(t, 30*time.Second, nil, "htpasswd", "-B", "-C", "5", "-b", "-c", s.passwd, alice, alicePass)
	s.addUserWithPop3d(t, bob, bobPass)
	s.ca = testpki.NewCA(t)
	s.caFile = filepath.Join(dir, "ca.pem")
	s.ca.WriteCert(t, s.caFile)
	s.certFile = filepath.Join(dir, "cert.pem")
	s.keyFile = filepath.Join(dir, "key.pem")
	s.serial = s.ca.Issue(t, 100, s.certFile, s.keyFile).SerialNumber
	return s
}

// addUserWithPop3d adds a user with `pop3d passwd -f FILE USER`, the
// password on stdin.
func (s *site) addUserWithPop3d(t testing.TB, user, pass string) {
	t.Helper()
	cmd := exec.Command(binPath, "passwd", "-f", s.passwd, user)
	cmd.Stdin = strings.NewReader(pass + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pop3d passwd -f %s %s: %v\n%s", s.passwd, user, err, out)
	}
	data, err := os.ReadFile(s.passwd)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte("\n"+user+":")) && !bytes.HasPrefix(data, []byte(user+":")) {
		t.Fatalf("pop3d passwd did not add %s to %s:\n%s", user, s.passwd, data)
	}
	if bytes.Contains(data, []byte(pass)) {
		t.Fatalf("pop3d passwd wrote the clear-text password to %s", s.passwd)
	}
}

// maildirTemplate is the -maildir value: one Maildir per full user name.
func (s *site) maildirTemplate() string { return filepath.Join(s.mailRoot, "%u") }

// maildir returns user's Maildir path under the template.
func (s *site) maildir(user string) string { return filepath.Join(s.mailRoot, user) }

// message is one delivered file.
type message struct {
	shape string
	data  []byte
	path  string // where it was delivered (new/ or cur/)
	uniq  string // unique name: file name before ":2,"
}

// shapes are the message forms every client must get right.
func shapes() []struct {
	name string
	data []byte
} {
	big := &bytes.Buffer{}
	big.WriteString("From: big@example.org\nTo: alice@example.org\nSubject: two megabytes\nMessage-ID: <big@e2e>\n\n")
	for i := 0; big.Len() < 2<<20; i++ {
		if i%50 == 0 {
			big.WriteString(".dot line that needs stuffing\n")
		}
		fmt.Fprintf(big, "line %07d of a large message, padded to look like base64 text ABCDEFGHIJKLMNOPQRSTUVWXYZ\n", i)
	}
	return []struct {
		name string
		data []byte
	}{
		{"lf", []byte("From: lf@example.org\nTo: alice@example.org\nSubject: LF only\nMessage-ID: <lf@e2e>\n\nline one\nline two\n\nline four after an empty line\n")},
		{"crlf", []byte("From: crlf@example.org\r\nTo: alice@example.org\r\nSubject: CRLF\r\nMessage-ID: <crlf@e2e>\r\n\r\nbody in CRLF\r\nsecond\r\n")},
		{"nofinal", []byte("From: nofinal@example.org\nSubject: no final newline\nMessage-ID: <nofinal@e2e>\n\nthe last line has no newline")},
		{"dots", []byte("From: dots@example.org\nSubject: dots\nMessage-ID: <dots@e2e>\n\n.one leading dot\n..two leading dots\n.\nafter a lone dot\n. \n...\nend\n")},
		{"mixed", []byte("From: mixed@example.org\r\nSubject: mixed endings\nMessage-ID: <mixed@e2e>\n\r\nCRLF line\r\nLF line\nbare\rCR inside\nlast\r\n")},
		{"noheadersep", []byte("From: nosep@example.org\nSubject: headers only, no empty line\nMessage-ID: <nosep@e2e>\n")},
		{"empty", []byte{}},
		{"big", big.Bytes()},
	}
}

// deliverShapes delivers every shape to user's Maildir, the first half
// MTA-style into new/, the rest into cur/ with :2,S as a mail reader leaves
// them, oldest first. It returns the messages in delivery order, which is
// the order pop3d must number them.
func (s *site) deliverShapes(t testing.TB, user string) []message {
	t.Helper()
	var msgs []message
	sh := shapes()
	for i, m := range sh {
		msgs = append(msgs, s.deliver(t, user, m.name, m.data, i >= len(sh)/2))
	}
	return msgs
}

// deliver writes data into user's Maildir the way an MTA does (write in
// tmp/, rename into new/); with seen it lands in cur/ with the S flag. The
// unique name's leading timestamp increases with every call.
func (s *site) deliver(t testing.TB, user, shape string, data []byte, seen bool) message {
	t.Helper()
	md := s.maildir(user)
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(md, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	ts := nextDeliveryTime(md)
	uniq := fmt.Sprintf("%d.M%dP%d.e2e.example.org", ts, ts%1000003, os.Getpid())
	tmp := filepath.Join(md, "tmp", uniq)
	writeFile(t, tmp, data, 0o600)
	mt := time.Unix(ts, 0)
	if err := os.Chtimes(tmp, mt, mt); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(md, "new", uniq)
	if seen {
		dst = filepath.Join(md, "cur", uniq+":2,S")
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
	return message{shape: shape, data: data, path: dst, uniq: uniq}
}

// nextDeliveryTime returns a timestamp later than every message already in
// the Maildir md, so that delivery order is name order is mtime order.
func nextDeliveryTime(md string) int64 {
	last := int64(1763700000)
	for _, sub := range []string{"new", "cur"} {
		ents, _ := os.ReadDir(filepath.Join(md, sub))
		for _, e := range ents {
			var ts int64
			if _, err := fmt.Sscanf(e.Name(), "%d.", &ts); err == nil && ts > last {
				last = ts
			}
		}
	}
	return last + 1
}

// listMaildir returns the file names in new/ and cur/ (sorted, "new/x").
func listMaildir(t testing.TB, md string) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(md, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), ".") {
				out = append(out, sub+"/"+e.Name())
			}
		}
	}
	sort.Strings(out)
	return out
}

// toLF turns every CRLF into LF, for clients that deliver with Unix line
// endings.
func toLF(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }

func writeFile(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
}

// tlsConfig trusts only the test CA, for server name 127.0.0.1.
func (s *site) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: s.ca.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}
