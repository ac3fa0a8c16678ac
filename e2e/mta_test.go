package e2e

import (
	"bytes"
	"fmt"
	"github.com/pop3d/pop3d/internal/pop3test"
	"github.com/pop3d/pop3d/internal/wireform"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRealMTADelivery: messages delivered by Debian's maildrop and procmail
// (maildrop writes ",S=" one short for a message without a final newline)
// are listed with the sizes pop3d really sends and retrieved intact.
func TestRealMTADelivery(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	md := s.maildir(alice)
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(md, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	delivered := 0
	for _, mta := range []string{"maildrop", "procmail"} {
		requireTool(t, mta)
		rc := filepath.Join(s.dir, mta+".rc")
		var args []string
		switch mta {
		case "maildrop":
			writeFile(t, rc, []byte(fmt.Sprintf("to \"%s/\"\n", md)), 0o600)
			args = []string{rc}
		case "procmail":
			writeFile(t, rc, []byte(fmt.Sprintf("DEFAULT=%s/\nLOGFILE=%s/procmail.log\n", md, s.dir)), 0o600)
			args = []string{"-m", rc}
		}
		for _, sh := range shapes() {
			if sh.name == "empty" || sh.name == "big" {
				continue
			}
			cmd := exec.Command(mta, args...)
			cmd.Stdin = bytes.NewReader(sh.data)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s delivering %s: %v\n%s", mta, sh.name, err, out)
			}
			delivered++
		}
	}
	files := map[string][]byte{} // unique name -> file content
	for _, f := range listMaildir(t, md) {
		data, err := os.ReadFile(filepath.Join(md, f))
		if err != nil {
			t.Fatal(err)
		}
		files[strings.SplitN(filepath.Base(f), ":", 2)[0]] = data
	}
	lies := 0
	for uniq, d := range files {
		var n int
		if i := strings.Index(uniq, ",S="); i >= 0 {
			if _, err := fmt.Sscanf(uniq[i+3:], "%d", &n); err == nil && n != len(d) {
				lies++
			}
		}
	}
	t.Logf("%d of %d delivered names carry a wrong ,S= size", lies, len(files))
	if len(files) != delivered {
		t.Fatalf("%d files in the Maildir after %d deliveries", len(files), delivered)
	}

	srv := startServer(t, s)
	p := pop3test.Dial(t, srv.addr)
	p.Login(alice, alicePass)
	sizes := p.List()
	uids := p.UIDL()
	if len(sizes) != delivered {
		t.Fatalf("LIST has %d messages, want %d", len(sizes), delivered)
	}
	seen := map[string]bool{}
	for n := 1; n <= delivered; n++ {
		_, body := p.Multi(fmt.Sprintf("RETR %d", n))
		name := ""
		for uniq, d := range files {
			// UIDL is the unique name, or an id derived from a long one.
			if !seen[uniq] && (uids[n] == uniq || !isPlainUID(uniq)) && bytes.Equal(body, wireform.Reference(d)) {
				name = uniq
				break
			}
		}
		if name == "" {
			t.Errorf("RETR %d (UIDL %s) matches no file in wire form: %q", n, uids[n], pop3test.Trunc(body))
			continue
		}
		seen[name] = true
		if w := wireform.Reference(files[name]); sizes[n] != int64(len(w)) || int64(len(body)) != sizes[n] {
			t.Errorf("%s: LIST %d = %d, RETR sent %d, want %d (file %d bytes)", name, n, sizes[n], len(body), len(w), len(files[name]))
		}
	}
	p.Quit()
}

// isPlainUID reports whether a unique name can be the UIDL as is (RFC 1939:
// 1 to 70 characters in 0x21..0x7E).
func isPlainUID(s string) bool {
	if len(s) == 0 || len(s) > 70 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
