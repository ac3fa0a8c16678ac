package daemon_test

import (
	"bytes"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pop3d/pop3d/daemon"
)

// FuzzSession sends arbitrary command sequences, logged in or not, and
// checks the bookkeeping that protects mail: Commit gets sorted, distinct,
// in-range indexes, no message both deleted and marked retrieved, and a
// session that does not QUIT never commits.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"STAT\nLIST\nRETR 1\nDELE 1\nDELE 1\nRSET\nDELE 2\nRETR 3\n",
		"DELE 3\nDELE 2\nDELE 1\nRETR 1\nLIST\n",
		"TOP 1 0\nUIDL\nNOOP\nCAPA\n",
		"RETR 2\nDELE 2\nRETR 2\n",
		"AUTH PLAIN\n*\nSTLS\nUSER x\nPASS y\n",
		"LIST 99999999999999999999\nTOP 2 -1\nRETR 0\n",
		"\x00\n\xff\xfe\n" + strings.Repeat("z", 600) + "\n",
	} {
		f.Add(s, true, true)
		f.Add(s, false, true)
		f.Add(s, true, false)
	}
	b := aliceBackend()
	ts := startServer(f, b, daemon.ModePlain, func(c *daemon.Config) {
		c.AuthFailureDelay = 0
		c.IdleTimeout = 2 * time.Second
	})
	f.Fuzz(func(t *testing.T, cmds string, login, quit bool) {
		conn, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		var in bytes.Buffer
		if login {
			in.WriteString("USER alice\r\nPASS secret\r\n")
		}
		for _, l := range strings.Split(cmds, "\n") {
			if up := strings.ToUpper(strings.TrimSpace(l)); up == "QUIT" || strings.HasPrefix(up, "QUIT ") {
				continue // the test decides whether the session ends with QUIT
			}
			in.WriteString(l + "\r\n")
		}
		if quit {
			in.WriteString("QUIT\r\n")
		}
		go func() {
			conn.Write(in.Bytes())
			// Without QUIT the session ends at EOF, after the commands.
			conn.(*net.TCPConn).CloseWrite()
		}()
		out, err := io.ReadAll(conn)
		if err != nil {
			t.Fatalf("session did not end: %v; output %q", err, out)
		}
		if len(out) > 0 && !bytes.HasSuffix(out, []byte("\r\n")) {
			t.Fatalf("output does not end in CRLF: %q", out)
		}
		conn.Close()
		// Every session ends in exactly one of Commit or Close, if it
		// logged in.
		if strings.Contains(string(out), "+OK maildrop has") {
			select {
			case rec := <-b.commits:
				if !quit {
					t.Fatalf("Commit %+v without QUIT", rec)
				}
				checkCommit(t, rec, 3)
			case <-b.closes:
			case <-time.After(10 * time.Second):
				t.Fatal("session neither committed nor closed")
			}
		}
		if strings.Contains(ts.logs.String(), "panic") {
			t.Fatalf("panic:\n%s", ts.logs.String())
		}
	})
}

func checkCommit(t *testing.T, rec commitRecord, n int) {
	t.Helper()
	for _, s := range [][]int{rec.deleted, rec.retrieved} {
		if !slices.IsSorted(s) || len(slices.Compact(slices.Clone(s))) != len(s) {
			t.Fatalf("indexes not sorted and distinct: %+v", rec)
		}
		for _, i := range s {
			if i < 0 || i >= n {
				t.Fatalf("index %d out of range: %+v", i, rec)
			}
		}
	}
	for _, i := range rec.deleted {
		if slices.Contains(rec.retrieved, i) {
			t.Fatalf("message %d both deleted and retrieved: %+v", i, rec)
		}
	}
}
