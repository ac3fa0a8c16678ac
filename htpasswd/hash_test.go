package htpasswd

import (
	"bufio"
	"errors"
	"os"
	"strings"
	"testing"
)

// vector is one committed test vector: a hash made by a real tool.
type vector struct {
	cmd  string // the command that made it
	pass string
	hash string
}

func readVectors(t testing.TB, name string) []vector {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vs []vector
	var cmd string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if c, ok := strings.CutPrefix(line, "# "); ok {
			cmd = c
			continue
		}
		pass, hash, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("%s: bad line %q", name, line)
		}
		vs = append(vs, vector{cmd: cmd, pass: pass, hash: hash})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatalf("%s: no vectors", name)
	}
	return vs
}

// TestVectors verifies every hash made by htpasswd, openssl, mkpasswd and
// doveadm: the right password matches, a wrong one, a truncated hash and a
// hash with a changed character do not.
func TestVectors(t *testing.T) {
	for _, v := range readVectors(t, "vectors.txt") {
		t.Run(v.cmd, func(t *testing.T) {
			ver, info, err := parseHash(v.hash)
			if err != nil {
				t.Fatalf("parseHash(%q): %v", v.hash, err)
			}
			if !ver.verify([]byte(v.pass)) {
				t.Errorf("%s: right password %q refused", v.hash, v.pass)
			}
			for _, wrong := range []string{"", v.pass + "x", v.pass[:len(v.pass)-1], strings.ToUpper(v.pass)} {
				if ver.verify([]byte(wrong)) {
					t.Errorf("%s: wrong password %q accepted", v.hash, wrong)
				}
			}
			wantPlain := strings.HasPrefix(v.hash, "{PLAIN}") || strings.HasPrefix(v.hash, "{CLEARTEXT}")
			if info.plaintext != wantPlain {
				t.Errorf("plaintext = %v, want %v", info.plaintext, wantPlain)
			}
			if wantPlain {
				return // no structure to damage
			}
			// Padding alone may go (unpadded base64 is accepted): cut
			// a character of data.
			trunc := strings.TrimRight(v.hash, "=")
			trunc = trunc[:len(trunc)-1]
			if tv, _, err := parseHash(trunc); err == nil && tv.verify([]byte(v.pass)) {
				t.Errorf("truncated hash %q accepted the password", trunc)
			}
			// Change one character of the hash part (past any prefix).
			b := []byte(v.hash)
			i := len(b) - 3
			if b[i] == 'A' {
				b[i] = 'B'
			} else {
				b[i] = 'A'
			}
			if cv, _, err := parseHash(string(b)); err == nil && cv.verify([]byte(v.pass)) {
				t.Errorf("changed hash %q accepted the password", b)
			}
		})
	}
}

// TestRefused checks that hashes with no maintained Go implementation (and
// htpasswd -p plain text) are refused with a message naming the scheme.
func TestRefused(t *testing.T) {
	wantName := map[string]string{
		"htpasswd -nbd":         "DES crypt",
		"htpasswd -nbp":         "unrecognized password hash",
		"mkpasswd -m descrypt":  "DES crypt",
		"mkpasswd -m bsdicrypt": "BSDi",
		"mkpasswd -m gost-":     "$gy$",
		"mkpasswd -m scrypt":    "$7$",
		"mkpasswd -m sunmd5":    "SunMD5",
		"mkpasswd -m nt":        "NT-Hash",
		"doveadm pw -s PBKDF2":  "{PBKDF2}",
		"doveadm pw -s DES":     "{DES-CRYPT}",
		"doveadm pw -s PLAIN-M": "{PLAIN-MD4}",
		"doveadm pw -s CRAM":    "{CRAM-MD5}",
		"doveadm pw -s SCRAM":   "{SCRAM-SHA-256}",
	}
	for _, v := range readVectors(t, "refused.txt") {
		t.Run(v.cmd, func(t *testing.T) {
			_, _, err := parseHash(v.hash)
			if err == nil {
				t.Fatalf("parseHash(%q) accepted", v.hash)
			}
			var he *hashError
			if !errors.As(err, &he) {
				t.Fatalf("error %v is not a *hashError", err)
			}
			for prefix, name := range wantName {
				if strings.HasPrefix(v.cmd, prefix) && !strings.Contains(err.Error(), name) {
					t.Errorf("error %q does not name %q", err, name)
				}
			}
		})
	}
}

func TestParseHashMalformed(t *testing.T) {
	tests := []struct {
		name, hash, want string
	}{
		{"empty", "", "empty password hash"},
		{"plain text", "secret", "unrecognized password hash"},
		{"unknown crypt id", "$9$abc$def", `unknown crypt scheme "$9"`},
		{"dollar only", "$", "unknown crypt scheme"},
		{"unclosed brace", "{SHA256abc", "without '}'"},
		{"unknown dovecot scheme", "{FOO}abc", "unknown scheme {FOO}"},
		{"unknown encoding", "{SHA.ROT13}abc", `unknown encoding "ROT13"`},
		{"bcrypt short", "$2y$10$abc", "malformed bcrypt hash: length"},
		{"bcrypt cost", "$2y$99$" + strings.Repeat("a", 53), "cost 99 out of range"},
		{"bcrypt cost letters", "$2y$1a$" + strings.Repeat("a", 53), "bad cost field"},
		{"bcrypt bad char", "$2y$10$" + strings.Repeat("a", 52) + "!", "bad character"},
		{"bcrypt 2x", "$2x$10$" + strings.Repeat("a", 53), "unsupported scheme bcrypt $2x$"},
		{"sha512 rounds low", "$6$rounds=10$salt$" + strings.Repeat("a", 86), "rounds 10 out of range"},
		{"sha512 rounds junk", "$6$rounds=1e4$salt$" + strings.Repeat("a", 86), "bad rounds"},
		{"sha512 rounds sign", "$6$rounds=+5000$salt$" + strings.Repeat("a", 86), "bad rounds"},
		{"sha512 no hash", "$6$salt", "no '$' after the salt"},
		{"sha512 short", "$6$salt$abc", "hash part must be 86"},
		{"sha512 long salt", "$6$" + strings.Repeat("s", 17) + "$" + strings.Repeat("a", 86), "salt longer than 16"},
		{"md5 no rounds", "$1$rounds=1000$salt$" + strings.Repeat("a", 22), "salt longer than 8"},
		{"apr1 long salt", "$apr1$123456789$" + strings.Repeat("a", 22), "salt longer than 8"},
		{"yescrypt flags", "$y$jC5//$salt$" + strings.Repeat("a", 43), "unsupported scheme yescrypt $y$jC5//"},
		{"yescrypt N", "$y$j/T$abcd$" + strings.Repeat("a", 43), "N or r outside"},
		{"yescrypt parts", "$y$j9T$abcd", "want $y$PARAMS$SALT$HASH"},
		{"yescrypt salt", "$y$j9T$!!$" + strings.Repeat("a", 43), "bad salt encoding"},
		{"argon2 version", "$argon2id$v=16$m=65536,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2g", "only version 19"},
		{"argon2 no version", "$argon2id$m=65536,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2g", "want $argon2id$v=19"},
		{"argon2 params", "$argon2id$v=19$m=65536,t=0,p=1$c2FsdHNhbHQ$aGFzaGhhc2g", "out of range"},
		{"argon2 memory", "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g", "out of range"},
		{"argon2 dup", "$argon2id$v=19$m=65536,m=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g", "given twice"},
		{"argon2 missing", "$argon2id$v=19$m=65536,p=1$c2FsdHNhbHQ$aGFzaGhhc2g", "all required"},
		{"argon2d", "$argon2d$v=19$m=65536,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2g", "unsupported scheme argon2d"},
		{"argon2 salt", "$argon2id$v=19$m=65536,t=3,p=1$!!$aGFzaGhhc2g", "bad salt"},
		{"dovecot argon2 mismatch", "{ARGON2I}$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2g", "does not start with $argon2i$"},
		{"dovecot blf holds sha", "{BLF-CRYPT}$6$salt$" + strings.Repeat("a", 86), "holds a sha512-crypt hash"},
		{"dovecot crypt des", "{CRYPT}ObmWNLeQPNxBU", "DES crypt"},
		{"dovecot crypt encoding", "{CRYPT.HEX}$2y$", "encoding suffix"},
		{"sha short", "{SHA}aGVsbG8=", "digest is 5 bytes, want 20"},
		{"sha bad base64", "{SHA256}!!!!", "bad base64"},
		{"ssha no salt", "{SSHA}h0Vy56WuaklGamrFeLmK26eMaqY=", "want more than 20"},
		{"hex bad", "{SHA256.HEX}zz", "bad hex"},
		{"plain bad base64", "{PLAIN.B64}!!", "bad base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := parseHash(tt.hash)
			if err == nil {
				t.Fatalf("parseHash(%q) accepted", tt.hash)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseHash(%q) = %q, want it to contain %q", tt.hash, err, tt.want)
			}
		})
	}
}

// TestParseHashForms covers accepted forms the tools do not write by default.
func TestParseHashForms(t *testing.T) {
	tests := []struct {
		name, hash, pass string
	}{
		// echo -n 'Tr0ub4dor&3' | sha256sum, upper-case hex, default encoding.
		{"sha256 hex by length", "{SHA256}48486E1514E842346FF405B1E45F44059AE82619F2306F99D0940DCB386E91F7", "Tr0ub4dor&3"},
		{"lower-case scheme", "{sha}h0Vy56WuaklGamrFeLmK26eMaqY=", "Tr0ub4dor&3"},
		{"plain base64", "{PLAIN.BASE64}VHIwdWI0ZG9yJjM=", "Tr0ub4dor&3"},
		{"plain empty", "{PLAIN}", ""},
		{"sha unpadded base64", "{SHA}h0Vy56WuaklGamrFeLmK26eMaqY", "Tr0ub4dor&3"},
		{"bare argon2id", "$argon2id$v=19$m=65536,t=3,p=1$exNjeqNBituZh6W66fyNEg$F2PpndpaHIkzPG2O3BiNnu45mTFD6HXkOgQ7y9kB4zI", "Tr0ub4dor&3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _, err := parseHash(tt.hash)
			if err != nil {
				t.Fatalf("parseHash(%q): %v", tt.hash, err)
			}
			if !v.verify([]byte(tt.pass)) {
				t.Errorf("right password refused")
			}
			if v.verify([]byte(tt.pass + "x")) {
				t.Errorf("wrong password accepted")
			}
		})
	}
}

// TestBcryptLong checks that bcrypt, like the C implementations, uses the
// first 72 bytes of a longer password.
func TestBcryptLong(t *testing.T) {
	pw := strings.Repeat("p", 72)
	h, err := hashBcrypt([]byte(pw))
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := parseHash(h)
	if err != nil {
		t.Fatal(err)
	}
	if !v.verify([]byte(pw + "ignored")) {
		t.Errorf("72-byte prefix not enough")
	}
	if v.verify([]byte(pw[:71])) {
		t.Errorf("71-byte prefix accepted")
	}
}

func TestIsCryptB64(t *testing.T) {
	for c := 0; c < 256; c++ {
		want := strings.IndexByte(cryptB64, byte(c)) >= 0
		if got := isCryptB64(string([]byte{byte(c)})); got != want {
			t.Errorf("isCryptB64(%q) = %v, want %v", byte(c), got, want)
		}
	}
}
