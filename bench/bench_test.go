package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pop3d/pop3d/bench/mailgen"
	"github.com/pop3d/pop3d/internal/wireform"
)

// stuff dot-stuffs wire-form bytes and adds the terminating line.
func stuff(w []byte) []byte { return wireform.Stuff(w) }

func fakeClient(s string) *client {
	return &client{r: bufio.NewReaderSize(strings.NewReader(s), 16), w: bufio.NewWriter(io.Discard)}
}

func TestClientMulti(t *testing.T) {
	tests := []struct {
		name string
		file string
	}{
		{"empty", ""},
		{"one line", "hello\n"},
		{"dot lines", ".\n..\n.x\nmid.dle\n"},
		{"long line", strings.Repeat("x", 100) + "\n"},
		{"no final newline", "a\nb"},
		{"crlf and bare cr", "a\r\nb\rc\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := mailgen.Wire([]byte(tt.file))
			c := fakeClient(string(stuff(w)) + "+OK next\r\n")
			n, sum, err := c.retrBody(true)
			if err != nil {
				t.Fatal(err)
			}
			want := sha256.Sum256(w)
			if n != int64(len(w)) || !bytes.Equal(sum, want[:]) {
				t.Errorf("got %d octets, want %d (content equal: %v)", n, len(w), bytes.Equal(sum, want[:]))
			}
			if s, err := c.status(); err != nil || s != "next" {
				t.Errorf("after the body: %q, %v; the reader overran the terminator", s, err)
			}
		})
	}
}

func TestClientStatus(t *testing.T) {
	c := fakeClient("-ERR [IN-USE] busy\r\n+OK 2 320\r\n")
	if _, err := c.status(); !errors.Is(err, errServer) {
		t.Errorf("-ERR gave %v, want errServer", err)
	}
	if s, err := c.status(); err != nil || s != "2 320" {
		t.Errorf("got %q, %v", s, err)
	}
	if _, err := c.status(); err == nil {
		t.Error("no error at EOF")
	}
}

func FuzzClientMulti(f *testing.F) {
	f.Add([]byte("a\r\n..b\r\n.\r\n"))
	f.Add([]byte(".\r\n"))
	f.Add([]byte("no terminator\r\n"))
	f.Add([]byte("..\r\n.\r"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c := fakeClient(string(b))
		n, _, err := c.retrBody(true)
		if n > int64(len(b)) {
			t.Fatalf("counted %d octets from %d bytes", n, len(b))
		}
		if err == nil && !bytes.Contains(b, []byte(".\r\n")) {
			t.Fatalf("no error without a terminator in %q", b)
		}
	})
}

func TestParseList(t *testing.T) {
	c := fakeClient("+OK\r\n1 100\r\n2 20\r\n.\r\n+OK\r\n1 a\r\n3 b\r\n.\r\n")
	sizes, err := c.list()
	if err != nil || len(sizes) != 3 || sizes[1] != 100 || sizes[2] != 20 {
		t.Errorf("list: %v, %v", sizes, err)
	}
	if _, err := c.uidl(); err == nil {
		t.Error("UIDL with a gap in the numbers was accepted")
	}
}

func TestPercentile(t *testing.T) {
	v := []float64{5, 1, 4, 2, 3}
	if m := median(v); m != 3 {
		t.Errorf("median = %v", m)
	}
	if m := median([]float64{1, 2, 3, 4}); m != 2.5 {
		t.Errorf("even median = %v", m)
	}
	if p := percentile(v, 99); p != 5 {
		t.Errorf("p99 = %v", p)
	}
	if p := percentile(v, 1); p != 1 {
		t.Errorf("p1 = %v", p)
	}
}

func tinyConfig(cacheDir string) config {
	return config{
		seed: 7, workers: 2, cacheDir: cacheDir,
		sizes: []int{60}, firstRounds: []int{1}, repeatRounds: []int{2}, listRounds: []int{1},
		retrMB: 1, retrRounds: 1,
		concUsers: 4, concMsgs: 5, concClients: []int{2, 4}, concDur: 300 * time.Millisecond, concRounds: 1,
		idleConns: 10, idleMsgs: 2,
		dele: 40, deleRounds: 1,
		bcryptUsers: 2, bcryptDur: 300 * time.Millisecond,
		verifyContent: true,
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func goBinary() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// TestSmoke builds pop3d and runs every scenario of the tool against it on a
// few messages, checking every octet count and the retrieved bytes, so that
// the bench cannot rot. Dovecot is not involved.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pop3d")
	}
	bin := filepath.Join(t.TempDir(), "pop3d")
	build := exec.Command(goBinary(), "build", "-o", bin, "github.com/pop3d/pop3d/cmd/pop3d")
	build.Env = append(os.Environ(), "GOTOOLCHAIN=local", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build pop3d: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b := &bench{cfg: tinyConfig(t.TempDir()), pop3dBin: bin, progressW: testWriter{t}}
	if err := b.run(ctx); err != nil {
		t.Fatal(err)
	}
	if len(b.problems) > 0 {
		t.Fatalf("problems: %s", strings.Join(b.problems, "; "))
	}
	seen := map[string]bool{}
	for _, r := range b.rows {
		seen[strings.Fields(r.name)[0]] = true
		if len(r.vals) != 1 {
			t.Errorf("row %q has %d values for one server", r.name, len(r.vals))
		}
	}
	for _, s := range []string{"idle", "login-stat", "list-uidl", "retr-all", "concurrent", "concurrent-tls", "dele-quit", "bcrypt-10", "poll"} {
		if !seen[s] {
			t.Errorf("no result row for %s", s)
		}
	}
	for _, r := range b.rows {
		if strings.HasSuffix(r.name, "sessions/s") || r.name == "retr-all" || strings.HasPrefix(r.name, "login-stat") {
			if !(r.vals[0] > 0) {
				t.Errorf("%s: %v", r.name, r.vals[0])
			}
		}
	}
	table := b.table()
	if !strings.Contains(table, "| retr-all ") {
		t.Errorf("table lacks retr-all:\n%s", table)
	}
}

func TestCheckList(t *testing.T) {
	m := []mailgen.Message{{Unique: "a", WireSize: 10}, {Unique: "b", WireSize: 20}}
	tests := []struct {
		name  string
		sizes []int64
		ids   []string
		ok    bool
	}{
		{"exact", []int64{0, 10, 20}, []string{"", "a", "b"}, true},
		{"other order", []int64{0, 20, 10}, []string{"", "b", "a"}, true},
		{"wrong size", []int64{0, 10, 21}, []string{"", "a", "b"}, false},
		{"unknown uid", []int64{0, 10, 20}, []string{"", "a", "c"}, false},
		{"duplicate uid", []int64{0, 10, 10}, []string{"", "a", "a"}, false},
		{"missing message", []int64{0, 10}, []string{"", "a"}, false},
	}
	for _, tt := range tests {
		if err := checkList(m, tt.sizes, tt.ids); (err == nil) != tt.ok {
			t.Errorf("%s: checkList = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
	if err := checkStat(m, 2, 30); err != nil {
		t.Errorf("checkStat exact: %v", err)
	}
	if err := checkStat(m, 2, 31); err == nil {
		t.Error("checkStat accepted a wrong octet total")
	}
}
