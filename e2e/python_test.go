package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"github.com/pop3d/pop3d/internal/pop3test"
	"github.com/pop3d/pop3d/internal/wireform"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// poplibResult is what testdata/poplib_client.py prints.
type poplibResult struct {
	Welcome    string            `json:"welcome"`
	CapaBefore []string          `json:"capa_before"`
	CapaAfter  []string          `json:"capa_after"`
	STLS       string            `json:"stls"`
	Cipher     string            `json:"cipher"`
	Stat       [2]int64          `json:"stat"`
	List       [][2]int64        `json:"list"`
	UIDL       [][2]any          `json:"uidl"`
	Retr       map[string]string `json:"retr"`
	RetrOctets map[string]int64  `json:"retr_octets"`
	Top0       map[string]string `json:"top0"`
	Top1       map[string]string `json:"top1"`
	Dele       []string          `json:"dele"`
	Quit       string            `json:"quit"`
}

func runPoplib(t *testing.T, mode, addr, cafile, del string) poplibResult {
	t.Helper()
	requireTool(t, "python3")
	host, port := splitHostPort(t, addr)
	var r poplibResult
	runClient(t, &r, "python3", "testdata/poplib_client.py", mode, host, port, alice, alicePass, cafile, del)
	return r
}

// checkPoplib compares what poplib fetched with the files delivered.
func checkPoplib(t *testing.T, r poplibResult, msgs []message) {
	t.Helper()
	if !strings.HasPrefix(r.Welcome, "+OK") {
		t.Errorf("welcome %q", r.Welcome)
	}
	var total int64
	for _, m := range msgs {
		total += int64(len(wireform.Reference(m.data)))
	}
	if r.Stat != [2]int64{int64(len(msgs)), total} {
		t.Errorf("poplib stat() = %v, want [%d %d]", r.Stat, len(msgs), total)
	}
	if len(r.List) != len(msgs) || len(r.UIDL) != len(msgs) {
		t.Fatalf("poplib list() has %d and uidl() %d entries, want %d", len(r.List), len(r.UIDL), len(msgs))
	}
	for i, m := range msgs {
		n := strconv.Itoa(i + 1)
		w := wireform.Reference(m.data)
		if r.List[i] != [2]int64{int64(i + 1), int64(len(w))} {
			t.Errorf("%s: list() entry %v, want [%d %d]", m.shape, r.List[i], i+1, len(w))
		}
		if uid, _ := r.UIDL[i][1].(string); uid != m.uniq {
			t.Errorf("%s: uidl() = %v, want %s", m.shape, r.UIDL[i], m.uniq)
		}
		body := b64(t, r.Retr[n])
		// poplib drops line ends, so a bare CR at a line end and CR/LF
		// distinctions inside lines are compared as poplib sees them.
		if !bytes.Equal(body, w) {
			t.Errorf("%s: retr(%s) body differs:\n got %q\nwant %q", m.shape, n, pop3test.Trunc(body), pop3test.Trunc(w))
		}
		if r.RetrOctets[n] != int64(len(w)) {
			t.Errorf("%s: retr(%s) read %d octets, LIST said %d", m.shape, n, r.RetrOctets[n], len(w))
		}
		if top := b64(t, r.Top0[n]); !bytes.Equal(top, wireform.TopReference(m.data, 0)) && !(len(m.data) == 0 && len(top) == 0) {
			t.Errorf("%s: top(%s, 0) = %q, want %q", m.shape, n, pop3test.Trunc(top), pop3test.Trunc(wireform.TopReference(m.data, 0)))
		}
		if top := b64(t, r.Top1[n]); !bytes.Equal(top, wireform.TopReference(m.data, 1)) && !(len(m.data) == 0 && len(top) == 0) {
			t.Errorf("%s: top(%s, 1) = %q, want %q", m.shape, n, pop3test.Trunc(top), pop3test.Trunc(wireform.TopReference(m.data, 1)))
		}
	}
}

func b64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPythonPoplib: list, uidl, retr, top, dele + quit, and the deleted
// files really unlinked while the others stay.
func TestPythonPoplib(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	msgs := s.deliverShapes(t, alice)
	srv := startServer(t, s)
	r := runPoplib(t, "plain", srv.addr, "", "1,3,8")
	checkPoplib(t, r, msgs)
	if len(r.Dele) != 3 || !strings.HasPrefix(r.Quit, "+OK") {
		t.Errorf("dele %q, quit %q", r.Dele, r.Quit)
	}
	for i, m := range msgs {
		deleted := i == 0 || i == 2 || i == 7
		left := listMaildir(t, s.maildir(alice))
		present := false
		for _, f := range left {
			if strings.HasSuffix(f, "/"+m.uniq) || strings.Contains(f, "/"+m.uniq+":") {
				present = true
			}
		}
		if present == deleted {
			t.Errorf("%s (message %d): present=%v after dele(1,3,8)+quit; Maildir %v", m.shape, i+1, present, left)
		}
	}
	if _, err := os.Stat(msgs[0].path); !os.IsNotExist(err) {
		t.Errorf("deleted %s still there: %v", msgs[0].path, err)
	}
}

// TestPythonPoplibTLS: stls() and POP3_SSL with the test CA.
func TestPythonPoplibTLS(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	msgs := s.deliverShapes(t, alice)
	srv := startTLSServer(t, s)

	r := runPoplib(t, "stls", srv.addr, s.caFile, "")
	checkPoplib(t, r, msgs)
	if !contains(r.CapaBefore, "STLS") {
		t.Errorf("CAPA before STLS = %v, want STLS in it", r.CapaBefore)
	}
	if contains(r.CapaAfter, "STLS") {
		t.Errorf("CAPA after STLS = %v still offers STLS", r.CapaAfter)
	}
	if !contains(r.CapaAfter, "USER") || !contains(r.CapaAfter, "SASL") {
		t.Errorf("CAPA after STLS = %v, want USER and SASL", r.CapaAfter)
	}
	if r.Cipher == "" {
		t.Error("no TLS cipher after stls()")
	}

	r = runPoplib(t, "ssl", srv.tlsAdr, s.caFile, "")
	checkPoplib(t, r, msgs)
	if contains(r.CapaBefore, "STLS") {
		t.Errorf("CAPA on pop3s = %v offers STLS", r.CapaBefore)
	}
}

// runClient runs a client script that prints its findings as JSON and
// decodes them into v.
func runClient(t *testing.T, v any, name string, args ...string) {
	t.Helper()
	out := runCmd(t, 2*time.Minute, nil, name, args...)
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("%s %s output %q: %v", name, args[0], pop3test.Trunc(out), err)
	}
}
