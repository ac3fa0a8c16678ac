package htpasswd

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// needTool returns the path of an external tool, skipping the test when it
// is missing (failing under CI=true, where it must be installed).
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s missing: apt-get install -y %s", name, pkg)
		}
		t.Skipf("%s missing (apt-get install -y %s)", name, pkg)
	}
	return p
}

// TestRealTools makes fresh hashes of a random password with htpasswd,
// openssl, mkpasswd and doveadm and verifies them; the refused schemes
// must still be refused.
func TestRealTools(t *testing.T) {
	var rb [6]byte
	rand.Read(rb[:])
	pass := "fresh " + hex.EncodeToString(rb[:]) + " pässwörd €"
	tests := []struct {
		pkg     string
		cmd     []string
		refused bool
	}{
		{"apache2-utils", []string{"htpasswd", "-nbB", "u", pass}, false},
		{"apache2-utils", []string{"htpasswd", "-nbm", "u", pass}, false},
		{"apache2-utils", []string{"htpasswd", "-nbs", "u", pass}, false},
		{"apache2-utils", []string{"htpasswd", "-nbd", "u", pass}, true},
		{"openssl", []string{"openssl", "passwd", "-1", pass}, false},
		{"openssl", []string{"openssl", "passwd", "-apr1", pass}, false},
		{"openssl", []string{"openssl", "passwd", "-5", pass}, false},
		{"openssl", []string{"openssl", "passwd", "-6", pass}, false},
		{"whois", []string{"mkpasswd", pass}, false},
		{"whois", []string{"mkpasswd", "-m", "sha-512", pass}, false},
		{"whois", []string{"mkpasswd", "-m", "sha-256", "-R", "6000", pass}, false},
		{"whois", []string{"mkpasswd", "-m", "md5crypt", pass}, false},
		{"whois", []string{"mkpasswd", "-m", "bcrypt", pass}, false},
		{"whois", []string{"mkpasswd", "-m", "gost-yescrypt", pass}, true},
		{"whois", []string{"mkpasswd", "-m", "scrypt", pass}, true},
		{"dovecot-core", []string{"doveadm", "pw", "-s", "BLF-CRYPT", "-p", pass}, false},
		{"dovecot-core", []string{"doveadm", "pw", "-s", "SHA512-CRYPT", "-p", pass}, false},
		{"dovecot-core", []string{"doveadm", "pw", "-s", "SHA256-CRYPT", "-p", pass}, false},
		{"dovecot-core", []string{"doveadm", "pw", "-s", "MD5-CRYPT", "-p", pass}, false},
		{"dovecot-core", []string{"doveadm", "pw", "-s", "CRYPT", "-p", pass}, false},
		{"dovecot-core", []string{"doveadm", "pw", "-s", "SSHA", "-p", pass}, false},
		{"dovecot-core", []string{"doveadm", "pw", "-s", "SHA256", "-p", pass}, false},
		{"dovecot-core", []string{"doveadm", "pw", "-s", "SSHA256", "-p", pass}, false},
		{"dovecot-core", []string{"doveadm", "pw", "-s", "SHA512", "-p", pass}, false},
		{"dovecot-core", []string{"doveadm", "pw", "-s", "SSHA512", "-p", pass}, false},
		{"dovecot-core", []string{"doveadm", "pw", "-s", "ARGON2ID", "-p", pass}, false},
		{"dovecot-core", []string{"doveadm", "pw", "-s", "ARGON2I", "-p", pass}, false},
		{"dovecot-core", []string{"doveadm", "pw", "-s", "PLAIN", "-p", pass}, false},
		{"dovecot-core", []string{"doveadm", "pw", "-s", "PBKDF2", "-p", pass}, true},
		{"dovecot-core", []string{"doveadm", "pw", "-s", "DES-CRYPT", "-p", pass}, true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.cmd[:len(tt.cmd)-1], " "), func(t *testing.T) {
			needTool(t, tt.cmd[0], tt.pkg)
			out, err := exec.Command(tt.cmd[0], tt.cmd[1:]...).Output()
			if err != nil {
				t.Fatalf("%v: %v", tt.cmd, err)
			}
			hash := strings.TrimSpace(string(out))
			if tt.cmd[0] == "htpasswd" {
				hash = strings.TrimPrefix(hash, "u:")
			}
			v, _, err := parseHash(hash)
			if tt.refused {
				if err == nil {
					t.Errorf("%q accepted", hash)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseHash(%q): %v", hash, err)
			}
			if !v.verify([]byte(pass)) {
				t.Errorf("%q refused the right password", hash)
			}
			if v.verify([]byte(pass + "x")) {
				t.Errorf("%q accepted a wrong password", hash)
			}
		})
	}
}

// TestRealToolsVerifyOurs checks that what `pop3d passwd` writes is
// accepted by htpasswd and doveadm, so that files move back as well.
func TestRealToolsVerifyOurs(t *testing.T) {
	pass := "ours pässwörd"
	bc, err := hashBcrypt([]byte(pass))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := hashSha512Crypt([]byte(pass))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("htpasswd", func(t *testing.T) {
		needTool(t, "htpasswd", "apache2-utils")
		for _, h := range []string{bc, sc} {
			p := filepath.Join(t.TempDir(), "passwd")
			if err := os.WriteFile(p, []byte("u:"+h+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("htpasswd", "-vb", p, "u", pass).CombinedOutput(); err != nil {
				t.Errorf("htpasswd -v %s: %v %s", h, err, out)
			}
			if err := exec.Command("htpasswd", "-vb", p, "u", pass+"x").Run(); err == nil {
				t.Errorf("htpasswd -v %s accepted a wrong password", h)
			}
		}
	})
	t.Run("doveadm", func(t *testing.T) {
		needTool(t, "doveadm", "dovecot-core")
		for _, h := range []string{"{BLF-CRYPT}" + bc, "{SHA512-CRYPT}" + sc} {
			if out, err := exec.Command("doveadm", "pw", "-t", h, "-p", pass).CombinedOutput(); err != nil {
				t.Errorf("doveadm pw -t %s: %v %s", h, err, out)
			}
			if err := exec.Command("doveadm", "pw", "-t", h, "-p", pass+"x").Run(); err == nil {
				t.Errorf("doveadm pw -t %s accepted a wrong password", h)
			}
		}
	})
}
