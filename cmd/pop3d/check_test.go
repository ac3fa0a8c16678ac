package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pop3d/pop3d/internal/testpki"
)

// writeCert writes a self-signed certificate and its key for 127.0.0.1
// and localhost.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	testpki.SelfSigned(t, certFile, keyFile)
	return certFile, keyFile
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir)
	goodPw := filepath.Join(dir, "passwd")
	if err := os.WriteFile(goodPw, []byte("demo:"+shaHash("demo")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badPw := filepath.Join(dir, "bad-passwd")
	if err := os.WriteFile(badPw, []byte("demo:"+shaHash("demo")+"\nnocolon\ndemo:"+shaHash("x")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	plainPw := filepath.Join(dir, "plain-passwd")
	if err := os.WriteFile(plainPw, []byte("demo:{PLAIN}demo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.conf", "passwd_file = "+goodPw+"\nmaildir = "+dir+"/mail/%n\nlisten = 127.0.0.1:1110\nlisten_tls = 127.0.0.1:1995\ntls_cert = "+cert+"\ntls_key = "+key+"\n")
	badSyntax := write("bad.conf", "passwd_file = "+goodPw+"\nmaildir = "+dir+"/mail/%n\nbogus = 1\nidle_timeout = x\n")
	tests := []struct {
		name   string
		args   []string
		status int
		want   []string // substrings of stderr (stdout for OK)
	}{
		{"good", []string{"-config", good}, exitOK, []string{"pop3d: configuration OK"}},
		{"good via flags", []string{"-config", os.DevNull, "-passwd-file", goodPw, "-maildir", dir + "/%u"}, exitOK, []string{"configuration OK"}},
		{"syntax errors, all reported", []string{"-config", badSyntax}, exitFail, []string{"bad.conf:3: unknown key", "bad.conf:4: idle_timeout", "2 problem(s)"}},
		{"password file problems", []string{"-config", good, "-passwd-file", badPw}, exitFail, []string{"bad-passwd:2:", "bad-passwd:3:"}},
		{"plain-text password is a warning", []string{"-config", good, "-passwd-file", plainPw}, exitOK, []string{"warning: " + plainPw + ":1:", "plain-text password", "configuration OK"}},
		{"missing password file", []string{"-config", good, "-passwd-file", dir + "/nope"}, exitFail, []string{"passwd_file:"}},
		{"relative template", []string{"-config", good, "-maildir", "mail/%n"}, exitFail, []string{"maildir:"}},
		{"bad escape in template", []string{"-config", good, "-maildir", "/m/%x"}, exitFail, []string{"maildir:"}},
		{"unusable certificate", []string{"-config", good, "-tls-cert", key}, exitFail, []string{"tls_cert/tls_key:"}},
		{"listen_tls without certificate", []string{"-config", os.DevNull, "-passwd-file", goodPw, "-maildir", "/m/%n", "-listen-tls", ":995"}, exitFail, []string{"listen_tls is set"}},
		{"unknown user", []string{"-config", good, "-user", "no-such-user-pop3d"}, exitFail, []string{"user:"}},
		{"warning only", []string{"-config", good, "-idle-timeout", "1m"}, exitOK, []string{"warning: idle_timeout 1m0s is below the RFC 1939 minimum", "configuration OK"}},
		{"login_timeout 0 is a warning", []string{"-config", good, "-login-timeout", "0"}, exitOK, []string{"warning: login_timeout 0 disables the login timeout", "configuration OK"}},
		{"bad login_timeout", []string{"-config", write("lt.conf", "passwd_file = "+goodPw+"\nmaildir = "+dir+"/mail/%n\nlogin_timeout = soon\n")}, exitFail, []string{"lt.conf:3: login_timeout: \"soon\" is not a duration"}},
		{"empty password file is a warning", []string{"-config", good, "-passwd-file", write("empty-passwd", "")}, exitOK, []string{"warning: " + dir + "/empty-passwd: no users: nobody can log in", "configuration OK"}},
		{"long user name is a warning", []string{"-config", good, "-passwd-file", write("long-passwd", strings.Repeat("u", 256)+":"+shaHash("x")+"\n")}, exitOK, []string{"warning: " + dir + "/long-passwd:1: user name of 256 bytes is longer than pop3d accepts at login (255)", "configuration OK"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			status := run(append([]string{"-check"}, tt.args...), strings.NewReader(""), &stdout, &stderr)
			if status != tt.status {
				t.Errorf("status = %d, want %d\nstdout: %s\nstderr: %s", status, tt.status, stdout.String(), stderr.String())
			}
			all := stdout.String() + stderr.String()
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("output lacks %q:\n%s", w, all)
				}
			}
			if tt.status != exitOK && strings.Contains(all, "configuration OK") {
				t.Error("failed check printed configuration OK")
			}
		})
	}
}

// TestCheckDovecotMD5: -check warns when dovecot_uidl_format has %m (only
// P records count then), and not for the default format.
func TestCheckDovecotMD5(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	if err := os.WriteFile(pw, []byte("demo:"+shaHash("demo")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"-check", "-config", os.DevNull, "-passwd-file", pw, "-maildir", dir + "/%u"}
	for _, tt := range []struct {
		format string
		warn   bool
	}{
		{"", false},
		{"%08Xu%08Xv", false},
		{"%m", true},
		{"%u-%Xm", true},
	} {
		args := base
		if tt.format != "" {
			args = append(args, "-dovecot-uidl-format", tt.format)
		}
		var stdout, stderr bytes.Buffer
		if status := run(args, strings.NewReader(""), &stdout, &stderr); status != exitOK {
			t.Errorf("%q: status %d\n%s", tt.format, status, stderr.String())
		}
		warned := strings.Contains(stderr.String(), "warning: dovecot_uidl_format "+tt.format+" uses %m")
		if warned != tt.warn || (!tt.warn && strings.Contains(stderr.String(), "%m")) {
			t.Errorf("%q: warned %v, want %v:\n%s", tt.format, warned, tt.warn, stderr.String())
		}
	}
}
