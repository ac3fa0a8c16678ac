package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pop3d/pop3d/internal/pop3test"
	"github.com/pop3d/pop3d/internal/testpki"
	"github.com/pop3d/pop3d/internal/wireform"
)

func splitHostPort(t testing.TB, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

// curlURL is scheme://alice:pass@addr/path.
func curlURL(scheme, addr, path string) string {
	u := url.URL{Scheme: scheme, User: url.UserPassword(alice, alicePass), Host: addr, Path: "/" + path}
	return u.String()
}

func curl(t *testing.T, args ...string) []byte {
	t.Helper()
	return runCmd(t, time.Minute, nil, "curl", append([]string{"-sS", "--max-time", "50"}, args...)...)
}

// TestCurl: LIST, RETR of every shape, UIDL and TOP over plain POP3 (curl
// authenticates with SASL PLAIN or USER/PASS, whichever CAPA offers).
func TestCurl(t *testing.T) {
	t.Parallel()
	requireTool(t, "curl")
	s := newSite(t)
	msgs := s.deliverShapes(t, alice)
	srv := startServer(t, s)
	checkCurl(t, msgs, "pop3", srv.addr)
}

// TestCurlTLS: pop3s:// with --cacert, and pop3:// with --ssl-reqd (STLS).
func TestCurlTLS(t *testing.T) {
	t.Parallel()
	requireTool(t, "curl")
	s := newSite(t)
	msgs := s.deliverShapes(t, alice)
	srv := startTLSServer(t, s)
	t.Run("pop3s", func(t *testing.T) { checkCurl(t, msgs, "pop3s", srv.tlsAdr, "--cacert", s.caFile) })
	t.Run("stls", func(t *testing.T) { checkCurl(t, msgs, "pop3", srv.addr, "--ssl-reqd", "--cacert", s.caFile) })
	// Without the CA, curl must refuse the certificate: TLS is real.
	if _, _, err := runCmdErr(time.Minute, nil, "curl", "-sS", "--max-time", "20", curlURL("pop3s", srv.tlsAdr, "")); err == nil {
		t.Error("curl pop3s:// without --cacert succeeded; the server certificate should not be trusted")
	}
	// --ssl-reqd with a wrong CA fails rather than falling back to plain text.
	bad := s.dir + "/other-ca.pem"
	testpki.NewCA(t).WriteCert(t, bad)
	if _, _, err := runCmdErr(time.Minute, nil, "curl", "-sS", "--max-time", "20", "--ssl-reqd", "--cacert", bad, curlURL("pop3", srv.addr, "")); err == nil {
		t.Error("curl --ssl-reqd with an unrelated CA succeeded")
	}
}

func checkCurl(t *testing.T, msgs []message, scheme, addr string, extra ...string) {
	t.Helper()
	list := curl(t, append(extra, curlURL(scheme, addr, ""))...)
	var want bytes.Buffer
	for i, m := range msgs {
		fmt.Fprintf(&want, "%d %d\r\n", i+1, len(wireform.Reference(m.data)))
	}
	if !bytes.Equal(list, want.Bytes()) {
		t.Errorf("curl LIST:\n got %q\nwant %q", list, want.Bytes())
	}
	for i, m := range msgs {
		body := curl(t, append(extra, curlURL(scheme, addr, fmt.Sprint(i+1)))...)
		w := wireform.Reference(m.data)
		if len(w) == 0 && string(body) == "\r\n" {
			// curl 7.88 counts the status line's CRLF as body when the
			// body is empty ("+OK 0 octets\r\n.\r\n"); the strict client
			// and poplib check that nothing is sent.
			continue
		}
		if !bytes.Equal(body, w) {
			t.Errorf("curl RETR %d (%s):\n got %q\nwant %q", i+1, m.shape, pop3test.Trunc(body), pop3test.Trunc(w))
		}
	}
	uidl := curl(t, append(extra, "-X", "UIDL", curlURL(scheme, addr, ""))...)
	want.Reset()
	for i, m := range msgs {
		fmt.Fprintf(&want, "%d %s\r\n", i+1, m.uniq)
	}
	if !bytes.Equal(uidl, want.Bytes()) {
		t.Errorf("curl -X UIDL:\n got %q\nwant %q", uidl, want.Bytes())
	}
	top := curl(t, append(extra, "-X", "TOP 1 0", curlURL(scheme, addr, ""))...)
	if w := wireform.TopReference(msgs[0].data, 0); !bytes.Equal(top, w) {
		t.Errorf("curl -X 'TOP 1 0':\n got %q\nwant %q", top, w)
	}
	if strings.Contains(string(top), "line one") {
		t.Error("TOP 1 0 sent body lines")
	}
}
