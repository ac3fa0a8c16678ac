package e2e

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pop3d/pop3d/internal/pop3test"
	"github.com/pop3d/pop3d/internal/wireform"
)

// This file holds what the tests of the mail readers people use
// (Thunderbird, mpop, mutt, Claws Mail) share: the mail they fetch and the
// byte-exact check of what they stored.

// clientMail is the mail every reader must store byte for byte: lines
// starting with "." (stuffed on the wire) and "From " (escaped by mbox
// writers), CRLF and LF files, and a 1 MiB attachment.
func clientMail() []struct {
	name string
	data []byte
} {
	att := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(14, 14))
	for i := range att {
		att[i] = byte(r.Uint32())
	}
	b64 := base64.StdEncoding.EncodeToString(att)
	var big bytes.Buffer
	big.WriteString("From: bob@example.org\nTo: alice@example.org\nSubject: a 1 MiB attachment\nMessage-ID: <attachment@e2e>\n" +
		"Date: Mon, 1 Dec 2025 10:00:00 +0000\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n" +
		"--b1\nContent-Type: text/plain\n\nThe data is attached.\n.\n.. and a dot line in the text part\n\n" +
		"--b1\nContent-Type: application/octet-stream; name=\"data.bin\"\nContent-Transfer-Encoding: base64\n" +
		"Content-Disposition: attachment; filename=\"data.bin\"\n\n")
	for len(b64) > 76 {
		big.WriteString(b64[:76] + "\n")
		b64 = b64[76:]
	}
	big.WriteString(b64 + "\n--b1--\n")
	return []struct {
		name string
		data []byte
	}{
		{"dots", []byte("From: carol@example.org\nTo: alice@example.org\nSubject: dots and From lines\nMessage-ID: <dots@e2e>\n" +
			"Date: Mon, 1 Dec 2025 09:00:00 +0000\n\n" +
			"first line\n.\n.one leading dot\n..two leading dots\nFrom the start of a line\n From indented\n" +
			"From: looks like a header\n.\n\nlast line\n")},
		{"crlf", []byte("From: dave@example.org\r\nTo: alice@example.org\r\nSubject: CRLF stored\r\nMessage-ID: <crlf@e2e>\r\n" +
			"Date: Mon, 1 Dec 2025 09:30:00 +0000\r\n\r\nbody in CRLF\r\n.dot in CRLF\r\nFrom here on\r\n")},
		{"attachment", big.Bytes()},
	}
}

// deliverClientMail delivers clientMail to user's Maildir in order.
func (s *site) deliverClientMail(t testing.TB, user string) []message {
	t.Helper()
	var msgs []message
	for _, m := range clientMail() {
		msgs = append(msgs, s.deliver(t, user, m.name, m.data, false))
	}
	return msgs
}

// lateMail is a message delivered between two runs of a reader.
var lateMail = []byte("From: erin@example.org\nTo: alice@example.org\nSubject: late\nMessage-ID: <late@e2e>\n" +
	"Date: Mon, 1 Dec 2025 11:00:00 +0000\n\narrived between two fetches\n.late dot\n")

// asLF is a message as readers on Unix store it: W(file) with LF line ends.
func asLF(data []byte) []byte { return toLF(wireform.Reference(data)) }

// stripHeaders removes the header lines named in names (case-insensitive,
// with their continuation lines) from the header of a stored message: the
// headers a reader adds.
func stripHeaders(msg []byte, names ...string) []byte {
	var out bytes.Buffer
	lines := bytes.SplitAfter(msg, []byte("\n"))
	skipping := false
	inHeader := true
	for _, l := range lines {
		if inHeader && (len(bytes.TrimRight(l, "\r\n")) == 0) {
			inHeader = false
		}
		if inHeader {
			if skipping && (bytes.HasPrefix(l, []byte(" ")) || bytes.HasPrefix(l, []byte("\t"))) {
				continue
			}
			skipping = false
			for _, n := range names {
				if len(l) > len(n) && strings.EqualFold(string(l[:len(n)+1]), n+":") {
					skipping = true
				}
			}
			if skipping {
				continue
			}
		}
		out.Write(l)
	}
	return out.Bytes()
}

// sameMail checks that got (what a reader stored, normalised by the
// caller) holds exactly the messages want, in any order, byte for byte.
func sameMail(t *testing.T, who string, got [][]byte, want [][]byte) {
	t.Helper()
	g := make([]string, len(got))
	for i, b := range got {
		g[i] = string(b)
	}
	w := make([]string, len(want))
	for i, b := range want {
		w[i] = string(b)
	}
	sort.Strings(g)
	sort.Strings(w)
	if len(g) != len(w) {
		t.Errorf("%s stored %d messages, want %d", who, len(g), len(w))
	}
	for i := 0; i < len(g) && i < len(w); i++ {
		if g[i] != w[i] {
			t.Errorf("%s stored a message that differs (%d octets, want %d):\n got %q\nwant %q",
				who, len(g[i]), len(w[i]), pop3test.Trunc([]byte(g[i])), pop3test.Trunc([]byte(w[i])))
		}
	}
}

// readMaildirFiles returns the contents of every message file in the
// Maildir md (new/ and cur/).
func readMaildirFiles(t *testing.T, md string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(md, sub))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			b, err := os.ReadFile(filepath.Join(md, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
	}
	return out
}

// dataOf returns the files' contents of msgs, mapped by norm.
func dataOf(msgs []message, norm func([]byte) []byte) [][]byte {
	var out [][]byte
	for _, m := range msgs {
		out = append(out, norm(m.data))
	}
	return out
}

// timed logs how long a reader's test took, for the report in the issue.
func timed(t *testing.T, who string) {
	start := time.Now()
	t.Cleanup(func() { t.Logf("%s: %s", who, time.Since(start).Round(10*time.Millisecond)) })
}

// mustBeGone checks that none of msgs is left in the Maildir.
func mustBeGone(t *testing.T, s *site, user string, msgs []message) {
	t.Helper()
	left := strings.Join(listMaildir(t, s.maildir(user)), " ")
	for _, m := range msgs {
		if strings.Contains(left, m.uniq) {
			t.Errorf("%s (%s) still in the Maildir after a fetch without keep: %s", m.uniq, m.shape, left)
		}
	}
}

// mustBeKept checks that every one of msgs is still in the Maildir.
func mustBeKept(t *testing.T, s *site, user string, msgs []message) {
	t.Helper()
	left := strings.Join(listMaildir(t, s.maildir(user)), " ")
	for _, m := range msgs {
		if !strings.Contains(left, m.uniq) {
			t.Errorf("%s (%s) gone from the Maildir after a fetch with keep: %s", m.uniq, m.shape, left)
		}
	}
}

// conversationLogged checks pop3d's debug log of a reader's session: the
// commands are there, the password in no form (PASS argument, AUTH PLAIN
// response), nor any message text.
func conversationLogged(t *testing.T, srv *server) {
	t.Helper()
	logs := srv.stderr.String()
	if !strings.Contains(logs, "msg=command") || !strings.Contains(logs, `msg=response`) {
		t.Errorf("log_level debug: no conversation in the log:\n%s", logs)
	}
	for _, secret := range []string{alicePass, pop3test.PlainResponse(alice, alicePass), "From the start of a line", "data is attached"} {
		if strings.Contains(logs, secret) {
			t.Errorf("pop3d's log contains %q", secret)
		}
	}
}
