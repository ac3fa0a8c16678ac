package htpasswd

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
)

// verifier checks a password against one parsed hash.
type verifier interface {
	// verify reports whether pass matches; it never panics.
	verify(pass []byte) bool
	// expensive reports whether verification is costly enough (a KDF) to
	// be counted against the concurrency limit.
	expensive() bool
	// class names the scheme and its cost parameters, e.g. "bcrypt $2y$10";
	// hashes of one class cost the same to verify.
	class() string
}

// hashError is why a hash string was refused.
type hashError struct {
	scheme      string // "" when not even the scheme was recognised
	unsupported bool   // a known scheme this package cannot verify
	msg         string
}

func (e *hashError) Error() string {
	switch {
	case e.scheme == "":
		return e.msg
	case e.unsupported:
		return "unsupported scheme " + e.scheme + ": " + e.msg
	default:
		return "malformed " + e.scheme + " hash: " + e.msg
	}
}

func malformed(scheme, format string, args ...any) error {
	return &hashError{scheme: scheme, msg: fmt.Sprintf(format, args...)}
}

func unsupported(scheme, why string) error {
	return &hashError{scheme: scheme, unsupported: true, msg: why}
}

const noGoImpl = "no maintained Go implementation; set a new password with `pop3d passwd`"

// hashInfo is what parseHash learned besides the verifier.
type hashInfo struct {
	scheme    string // human name, e.g. "bcrypt", "{SSHA256}"
	plaintext bool   // the password is stored in clear ({PLAIN}, {CLEARTEXT})
}

// parseHash parses the password field of a line: a crypt(3) string as
// written by htpasswd, mkpasswd or openssl, or a Dovecot "{SCHEME}data"
// string. A string that matches no known form is refused, never taken as a
// plain-text password.
func parseHash(s string) (verifier, hashInfo, error) {
	if strings.HasPrefix(s, "{") {
		return parseDovecot(s)
	}
	v, scheme, err := parseCrypt(s) // refuses "" too
	return v, hashInfo{scheme: scheme}, err
}

// parseCrypt parses a crypt(3)-style hash and names its scheme.
func parseCrypt(s string) (verifier, string, error) {
	switch {
	case s == "":
		return nil, "", &hashError{msg: "empty password hash"}
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		v, err := parseBcrypt(s)
		return v, "bcrypt", err
	case strings.HasPrefix(s, "$2x$"), strings.HasPrefix(s, "$2$"):
		return nil, "bcrypt", unsupported("bcrypt "+s[:strings.IndexByte(s[1:], '$')+2], "obsolete bcrypt variant; "+noGoImpl)
	case strings.HasPrefix(s, "$apr1$"):
		v, err := parseShaCrypt(s, &apr1Crypt)
		return v, "apr1", err
	case strings.HasPrefix(s, "$1$"):
		v, err := parseShaCrypt(s, &md5Crypt)
		return v, "md5-crypt", err
	case strings.HasPrefix(s, "$5$"):
		v, err := parseShaCrypt(s, &sha256Crypt)
		return v, "sha256-crypt", err
	case strings.HasPrefix(s, "$6$"):
		v, err := parseShaCrypt(s, &sha512Crypt)
		return v, "sha512-crypt", err
	case strings.HasPrefix(s, "$y$"):
		v, err := parseYescrypt(s)
		return v, "yescrypt", err
	case strings.HasPrefix(s, "$argon2"):
		v, err := parseArgon2(s)
		return v, "argon2", err
	case strings.HasPrefix(s, "$gy$"):
		return nil, "gost-yescrypt", unsupported("gost-yescrypt ($gy$)", noGoImpl)
	case strings.HasPrefix(s, "$7$"):
		return nil, "scrypt", unsupported("scrypt ($7$)", noGoImpl)
	case strings.HasPrefix(s, "$md5"):
		return nil, "sunmd5", unsupported("SunMD5 ($md5$)", noGoImpl)
	case strings.HasPrefix(s, "$3$"):
		return nil, "nt", unsupported("NT-Hash ($3$)", noGoImpl)
	case strings.HasPrefix(s, "$sha1$"):
		return nil, "sha1-crypt", unsupported("sha1crypt ($sha1$)", noGoImpl)
	case len(s) == 20 && s[0] == '_' && isCryptB64(s[1:]):
		return nil, "bsdicrypt", unsupported("BSDi extended DES crypt", noGoImpl)
	case len(s) == 13 && isCryptB64(s):
		return nil, "descrypt", unsupported("DES crypt (htpasswd -d)", "weak, truncates passwords to 8 characters, "+noGoImpl)
	case s[0] == '$':
		end := strings.IndexByte(s[1:], '$')
		if end < 0 {
			end = len(s) - 1
		}
		return nil, "", &hashError{msg: fmt.Sprintf("unknown crypt scheme %q", s[:end+1])}
	}
	return nil, "", &hashError{msg: "unrecognized password hash (a plain-text password needs a {PLAIN} prefix)"}
}

// cryptB64 is the alphabet of crypt(3) hashes.
const cryptB64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func isCryptB64(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '.' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// dovecotUnsupported lists Dovecot schemes that are deliberately refused.
var dovecotUnsupported = map[string]string{
	"PBKDF2":        noGoImpl,
	"DES-CRYPT":     "weak, truncates passwords to 8 characters, " + noGoImpl,
	"PLAIN-MD4":     "weak, " + noGoImpl,
	"PLAIN-TRUNC":   noGoImpl,
	"CRAM-MD5":      "a challenge-response secret, " + noGoImpl,
	"HMAC-MD5":      "a challenge-response secret, " + noGoImpl,
	"DIGEST-MD5":    "a challenge-response secret, " + noGoImpl,
	"SCRAM-SHA-1":   "a challenge-response secret, " + noGoImpl,
	"SCRAM-SHA-256": "a challenge-response secret, " + noGoImpl,
	"OTP":           noGoImpl,
	"SKEY":          noGoImpl,
	"RPA":           noGoImpl,
	"LANMAN":        noGoImpl,
	"NTLM":          noGoImpl,
}

// parseDovecot parses "{SCHEME}data" and "{SCHEME.ENCODING}data".
func parseDovecot(s string) (verifier, hashInfo, error) {
	end := strings.IndexByte(s, '}')
	if end < 0 {
		return nil, hashInfo{}, &hashError{msg: "'{' without '}' in password hash"}
	}
	full := strings.ToUpper(s[1:end])
	data := s[end+1:]
	name, enc, _ := strings.Cut(full, ".")
	info := hashInfo{scheme: "{" + full + "}"}
	if why, ok := dovecotUnsupported[name]; ok {
		return nil, info, unsupported(info.scheme, why)
	}
	switch enc {
	case "", "HEX", "B64", "BASE64":
	default:
		return nil, info, malformed(info.scheme, "unknown encoding %q", enc)
	}
	cryptKind := func(want string) (verifier, hashInfo, error) {
		if enc != "" {
			return nil, info, malformed(info.scheme, "an encoding suffix is not allowed here")
		}
		v, got, err := parseCrypt(data)
		if err != nil {
			return nil, info, err
		}
		if want != "" && got != want {
			return nil, info, malformed(info.scheme, "holds a %s hash", got)
		}
		return v, info, nil
	}
	switch name {
	case "BLF-CRYPT":
		return cryptKind("bcrypt")
	case "SHA512-CRYPT":
		return cryptKind("sha512-crypt")
	case "SHA256-CRYPT":
		return cryptKind("sha256-crypt")
	case "MD5-CRYPT", "MD5":
		return cryptKind("md5-crypt")
	case "CRYPT":
		return cryptKind("")
	case "ARGON2ID", "ARGON2I":
		if enc != "" {
			return nil, info, malformed(info.scheme, "an encoding suffix is not allowed here")
		}
		v, err := parseArgon2(data)
		if err != nil {
			return nil, info, err
		}
		if want := "$" + strings.ToLower(name) + "$"; !strings.HasPrefix(data, want) {
			return nil, info, malformed(info.scheme, "does not start with %s", want)
		}
		return v, info, nil
	case "PLAIN", "CLEARTEXT", "CLEAR":
		info.plaintext = true
		pw := []byte(data)
		if enc != "" {
			var err error
			if pw, err = decodeDovecot(data, enc, -1); err != nil {
				return nil, info, malformed(info.scheme, "%v", err)
			}
		}
		return plainVerifier{pw: sha256.Sum256(pw), raw: string(pw)}, info, nil
	}
	d, ok := digestSchemes[name]
	if !ok {
		return nil, info, &hashError{msg: fmt.Sprintf("unknown scheme %s", info.scheme)}
	}
	v, err := parseDigest(data, d, enc)
	if err != nil {
		return nil, info, malformed(info.scheme, "%v", err)
	}
	return v, info, nil
}

// digestScheme is a plain or salted message digest scheme: the stored value
// is digest(password || salt) || salt.
type digestScheme struct {
	name   string
	newH   func() hash.Hash
	size   int
	salted bool
	hex    bool // default encoding is hex rather than base64
}

var digestSchemes = map[string]digestScheme{
	"SHA":       {"{SHA}", sha1.New, sha1.Size, false, false},
	"SHA1":      {"{SHA1}", sha1.New, sha1.Size, false, false},
	"SSHA":      {"{SSHA}", sha1.New, sha1.Size, true, false},
	"SHA256":    {"{SHA256}", sha256.New, sha256.Size, false, false},
	"SSHA256":   {"{SSHA256}", sha256.New, sha256.Size, true, false},
	"SHA512":    {"{SHA512}", sha512.New, sha512.Size, false, false},
	"SSHA512":   {"{SSHA512}", sha512.New, sha512.Size, true, false},
	"PLAIN-MD5": {"{PLAIN-MD5}", md5.New, md5.Size, false, true},
	"LDAP-MD5":  {"{LDAP-MD5}", md5.New, md5.Size, false, false},
	"SMD5":      {"{SMD5}", md5.New, md5.Size, true, false},
}

// decodeDovecot decodes data as hex (enc "HEX") or base64 (anything else;
// padding optional). Like Dovecot, a value in the default encoding ("")
// whose length is that of the hex form of want bytes is read as hex.
func decodeDovecot(data, enc string, want int) ([]byte, error) {
	useHex := enc == "HEX"
	if enc == "" && want > 0 && len(data) == 2*want {
		useHex = true
	}
	if useHex {
		b, err := hex.DecodeString(data)
		if err != nil {
			return nil, errors.New("bad hex encoding")
		}
		return b, nil
	}
	b, err := base64.StdEncoding.Strict().DecodeString(data)
	if err != nil {
		// Some tools leave out the padding.
		if b, err = base64.RawStdEncoding.Strict().DecodeString(data); err != nil {
			return nil, errors.New("bad base64 encoding")
		}
	}
	return b, nil
}

func parseDigest(data string, d digestScheme, enc string) (verifier, error) {
	if enc == "" && d.hex {
		enc = "HEX"
	}
	want := -1
	if !d.salted {
		want = d.size
	}
	raw, err := decodeDovecot(data, enc, want)
	if err != nil {
		return nil, err
	}
	switch {
	case !d.salted && len(raw) != d.size:
		return nil, fmt.Errorf("digest is %d bytes, want %d", len(raw), d.size)
	case d.salted && len(raw) <= d.size:
		return nil, fmt.Errorf("salted digest is %d bytes, want more than %d", len(raw), d.size)
	}
	return digestVerifier{newH: d.newH, name: d.name, sum: raw[:d.size], salt: raw[d.size:]}, nil
}

type digestVerifier struct {
	newH func() hash.Hash
	name string
	sum  []byte
	salt []byte
}

func (v digestVerifier) verify(pass []byte) bool {
	h := v.newH()
	h.Write(pass)
	h.Write(v.salt)
	return subtle.ConstantTimeCompare(h.Sum(nil), v.sum) == 1
}

func (v digestVerifier) expensive() bool { return false }
func (v digestVerifier) class() string   { return v.name }

// plainVerifier holds a digest of the clear-text password so that the
// comparison takes the same time whatever the lengths.
type plainVerifier struct {
	pw  [sha256.Size]byte
	raw string // the secret itself: APOP needs it (apop.go)
}

func (v plainVerifier) verify(pass []byte) bool {
	got := sha256.Sum256(pass)
	return subtle.ConstantTimeCompare(got[:], v.pw[:]) == 1
}

func (v plainVerifier) expensive() bool { return false }
func (v plainVerifier) class() string   { return "{PLAIN}" }
