package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUIDLSubcommand: `pop3d uidl USER` prints number, UIDL, source, wire
// size and file per message, in the order a session numbers them; it
// creates no Maildir and reports usage errors.
func TestUIDLSubcommand(t *testing.T) {
	root := t.TempDir()
	md := filepath.Join(root, "demo")
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(md, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"cur/1700000001.a.host:2,S": "Subject: a\n\nformat\n",
		"cur/1700000002.b.host:2,S": "Subject: b\n\nsaved P\n",
		"new/1700000003.c.host":     "Subject: c\n\nafter the switch\n",
	}
	for p, data := range files {
		if err := os.WriteFile(filepath.Join(md, p), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	uidlist := "3 V1234 N10 G00112233445566778899aabbccddeeff\n1 :1700000001.a.host:2,S\n2 Pold-one :1700000002.b.host\n"
	if err := os.WriteFile(filepath.Join(md, "dovecot-uidlist"), []byte(uidlist), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"uidl", "-config", os.DevNull, "-maildir", root + "/%u"}
	tests := []struct {
		name   string
		args   []string
		status int
		stdout string
		stderr string
	}{
		{"dovecot", append(base, "demo"), exitOK,
			"1 00000001000004d2 dovecot-format 22 cur/1700000001.a.host:2,S\n" +
				"2 old-one dovecot-P 23 cur/1700000002.b.host:2,S\n" +
				"3 1700000003.c.host pop3d 32 new/1700000003.c.host\n", ""},
		{"another format", append(append([]string(nil), base...), "-dovecot-uidl-format", "%v.%u", "demo"), exitOK,
			"1 1234.1 dovecot-format 22 cur/1700000001.a.host:2,S\n" +
				"2 old-one dovecot-P 23 cur/1700000002.b.host:2,S\n" +
				"3 1700000003.c.host pop3d 32 new/1700000003.c.host\n", ""},
		{"no Maildir", append(base, "nobody-here"), exitFail, "", "pop3d uidl:"},
		{"no user", []string{"uidl"}, exitUsage, "", "usage: pop3d uidl"},
		{"bad flag", []string{"uidl", "-no-such-flag", "x", "demo"}, exitUsage, "", ""},
		{"bad format", append(append([]string(nil), base...), "-dovecot-uidl-format", "%z", "demo"), exitUsage, "", "Dovecot refuses"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			status := run(tt.args, strings.NewReader(""), &stdout, &stderr)
			if status != tt.status {
				t.Errorf("status %d, want %d\nstderr: %s", status, tt.status, stderr.String())
			}
			if tt.stdout != "" || tt.status != exitOK {
				if stdout.String() != tt.stdout {
					t.Errorf("stdout:\n%s\nwant:\n%s", stdout.String(), tt.stdout)
				}
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, stderr.String())
			}
			if tt.status == exitOK && stderr.Len() > 0 {
				t.Errorf("stderr: %s", stderr.String())
			}
		})
	}
	// A preview pins nothing: the second format's run saw no record.
	if _, err := os.Stat(filepath.Join(md, "pop3d-uidl")); !os.IsNotExist(err) {
		t.Errorf("pop3d uidl wrote the UIDL record: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "nobody-here")); !os.IsNotExist(err) {
		t.Errorf("pop3d uidl created a Maildir: %v", err)
	}
}
