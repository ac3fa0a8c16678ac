package htpasswd

import (
	"crypto/subtle"
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/GehirnInc/crypt"
	"github.com/GehirnInc/crypt/apr1_crypt"
	"github.com/GehirnInc/crypt/md5_crypt"
	"github.com/GehirnInc/crypt/sha256_crypt"
	"github.com/GehirnInc/crypt/sha512_crypt"
	"github.com/openwall/yescrypt-go"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// bcryptVerifier verifies $2a$, $2b$ and $2y$ hashes, which are one
// algorithm: the letters only record which C implementation bugs the writer
// did not have. x/crypto/bcrypt uses the first 72 bytes of a longer
// password, as the C implementations do.
type bcryptVerifier struct {
	hash string
	cost int
}

func parseBcrypt(s string) (verifier, error) {
	const name = "bcrypt"
	// $2y$CC$ + 22 salt characters + 31 hash characters.
	if len(s) != 60 {
		return nil, malformed(name, "length %d, want 60", len(s))
	}
	if s[6] != '$' || s[4] < '0' || s[4] > '9' || s[5] < '0' || s[5] > '9' {
		return nil, malformed(name, "bad cost field %q", s[3:min(len(s), 7)])
	}
	cost := int(s[4]-'0')*10 + int(s[5]-'0')
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, malformed(name, "cost %d out of range %d-%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if !isCryptB64(s[7:]) {
		return nil, malformed(name, "bad character in salt or hash")
	}
	return bcryptVerifier{hash: s, cost: cost}, nil
}

func (v bcryptVerifier) verify(pass []byte) bool {
	return bcrypt.CompareHashAndPassword([]byte(v.hash), pass) == nil
}

func (v bcryptVerifier) expensive() bool { return true }
func (v bcryptVerifier) class() string   { return v.hash[:7] }

// shaCryptKind describes one of the MD5/SHA crypt(3) families.
type shaCryptKind struct {
	name    string
	prefix  string
	saltMax int
	hashLen int
	rounds  bool // accepts "rounds=N$"
	newFn   func() crypt.Crypter
}

var (
	apr1Crypt   = shaCryptKind{"apr1", "$apr1$", 8, 22, false, apr1_crypt.New}
	md5Crypt    = shaCryptKind{"md5-crypt", "$1$", 8, 22, false, md5_crypt.New}
	sha256Crypt = shaCryptKind{"sha256-crypt", "$5$", 16, 43, true, sha256_crypt.New}
	sha512Crypt = shaCryptKind{"sha512-crypt", "$6$", 16, 86, true, sha512_crypt.New}
)

// Rounds limits of SHA-crypt (Drepper's specification); glibc clamps to
// them and writes the clamped figure, so a stored hash is always inside.
const (
	shaRoundsMin = 1000
	shaRoundsMax = 999999999
)

type shaCryptVerifier struct {
	hash    string
	kind    *shaCryptKind
	rounds  int    // 0: the default
	setting string // the prefix and rounds, e.g. "$6$rounds=10000$"
}

// parseShaCrypt checks the whole syntax before GehirnInc/crypt sees the
// string: that package trusts its input (NewFromHash panics on an unknown
// prefix and salts are silently truncated).
func parseShaCrypt(s string, kind *shaCryptKind) (verifier, error) {
	rest, ok := strings.CutPrefix(s, kind.prefix)
	if !ok {
		return nil, malformed(kind.name, "does not start with %s", kind.prefix)
	}
	rounds := 0
	if r, ok := strings.CutPrefix(rest, "rounds="); ok && kind.rounds {
		num, after, ok := strings.Cut(r, "$")
		if !ok {
			return nil, malformed(kind.name, "no '$' after rounds")
		}
		n, err := strconv.Atoi(num)
		if err != nil || num == "" || num[0] < '0' || num[0] > '9' || len(num) > 9 {
			return nil, malformed(kind.name, "bad rounds %q", num)
		}
		if n < shaRoundsMin || n > shaRoundsMax {
			return nil, malformed(kind.name, "rounds %d out of range %d-%d", n, shaRoundsMin, shaRoundsMax)
		}
		rounds, rest = n, after
	}
	salt, sum, ok := strings.Cut(rest, "$")
	if !ok {
		return nil, malformed(kind.name, "no '$' after the salt")
	}
	if len(salt) > kind.saltMax {
		return nil, malformed(kind.name, "salt longer than %d characters", kind.saltMax)
	}
	for i := 0; i < len(salt); i++ {
		if c := salt[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return nil, malformed(kind.name, "bad character in salt")
		}
	}
	if len(sum) != kind.hashLen || !isCryptB64(sum) {
		return nil, malformed(kind.name, "hash part must be %d characters of [./0-9A-Za-z]", kind.hashLen)
	}
	if !crypt.IsHashSupported(s) {
		return nil, malformed(kind.name, "not supported by the crypt library")
	}
	return shaCryptVerifier{hash: s, kind: kind, rounds: rounds, setting: s[:len(s)-len(rest)]}, nil
}

func (v shaCryptVerifier) verify(pass []byte) bool {
	return v.kind.newFn().Verify(v.hash, pass) == nil
}

// expensive: MD5-crypt is 1000 MD5 rounds, cheaper than taking a slot.
func (v shaCryptVerifier) expensive() bool { return v.kind.rounds }

func (v shaCryptVerifier) class() string { return v.setting }

// yescryptVerifier verifies $y$ hashes with the parameter subset that
// libxcrypt (mkpasswd, /etc/shadow) writes: "$y$j" + N + r, no flags.
type yescryptVerifier struct {
	hash string
}

func parseYescrypt(s string) (verifier, error) {
	const name = "yescrypt"
	parts := strings.Split(s, "$") // "", "y", params, salt, hash
	if len(parts) != 5 || parts[0] != "" || parts[1] != "y" {
		return nil, malformed(name, "want $y$PARAMS$SALT$HASH")
	}
	params, salt, sum := parts[2], parts[3], parts[4]
	if len(params) != 3 || params[0] != 'j' {
		return nil, unsupported("yescrypt $y$"+params, "parameters other than libxcrypt's default form; "+noGoImpl)
	}
	nLog2 := strings.IndexByte(cryptB64, params[1]) + 1
	r := strings.IndexByte(cryptB64, params[2]) + 1
	// yescrypt-go handles N = 2^10..2^18 and r = 1..32.
	if nLog2 < 10 || nLog2 > 18 || r < 1 || r > 32 {
		return nil, unsupported("yescrypt $y$"+params, "N or r outside what yescrypt-go supports")
	}
	if salt == "" || !isYescryptB64(salt) {
		return nil, malformed(name, "bad salt encoding")
	}
	if len(sum) != 43 || !isYescryptB64(sum) {
		return nil, malformed(name, "hash part must be 43 characters of [./0-9A-Za-z]")
	}
	return yescryptVerifier{hash: s}, nil
}

// isYescryptB64 checks s the way yescrypt-go decodes it: little-endian
// groups of up to 4 characters, at least 2 per group, unused bits zero.
func isYescryptB64(s string) bool {
	for i := 0; i < len(s); i += 4 {
		group := s[i:min(i+4, len(s))]
		if len(group) < 2 {
			return false
		}
		var value uint32
		for j := 0; j < len(group); j++ {
			c := strings.IndexByte(cryptB64, group[j])
			if c < 0 {
				return false
			}
			value |= uint32(c) << (6 * j)
		}
		if value>>(8*(len(group)*6/8)) != 0 {
			return false
		}
	}
	return true
}

func (v yescryptVerifier) verify(pass []byte) bool {
	got, err := yescrypt.Hash(pass, []byte(v.hash))
	return err == nil && subtle.ConstantTimeCompare(got, []byte(v.hash)) == 1
}

func (v yescryptVerifier) expensive() bool { return true }
func (v yescryptVerifier) class() string   { return v.hash[:7] }

// argon2Verifier verifies PHC strings "$argon2id$v=19$m=M,t=T,p=P$salt$hash"
// as written by Dovecot (libsodium) and the argon2 tool.
type argon2Verifier struct {
	id      bool
	m, t    uint32
	p       uint8
	salt    []byte
	sum     []byte
	setting string // "$argon2id$v=19$m=...,t=...,p=...$"
}

// Limits that keep one verification bounded whatever the file says: 4 GiB
// of memory is libsodium's own maximum.
const (
	argonMaxMemory = 4 << 20 // KiB
	argonMaxTime   = 1 << 16
	argonMaxKey    = 1024
)

func parseArgon2(s string) (verifier, error) {
	const name = "argon2"
	parts := strings.Split(s, "$") // "", alg, v=19, params, salt, hash
	if len(parts) != 6 || parts[0] != "" {
		return nil, malformed(name, "want $argon2id$v=19$m=M,t=T,p=P$SALT$HASH")
	}
	var v argon2Verifier
	switch parts[1] {
	case "argon2id":
		v.id = true
	case "argon2i":
	case "argon2d":
		return nil, unsupported("argon2d", "not a password hash; "+noGoImpl)
	default:
		return nil, malformed(name, "unknown variant %q", parts[1])
	}
	if parts[2] != "v=19" {
		return nil, unsupported(parts[1]+" "+parts[2], "only version 19 (0x13) is implemented")
	}
	var seen [3]bool
	for _, kv := range strings.Split(parts[3], ",") {
		k, val, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(val, 10, 32)
		if !ok || err != nil || val == "" || val[0] == '+' {
			return nil, malformed(name, "bad parameter %q", kv)
		}
		var i int
		switch k {
		case "m":
			i, v.m = 0, uint32(n)
		case "t":
			i, v.t = 1, uint32(n)
		case "p":
			if n > 255 {
				return nil, malformed(name, "p=%d out of range 1-255", n)
			}
			i, v.p = 2, uint8(n)
		default:
			return nil, malformed(name, "unknown parameter %q", k)
		}
		if seen[i] {
			return nil, malformed(name, "parameter %q given twice", k)
		}
		seen[i] = true
	}
	if !seen[0] || !seen[1] || !seen[2] {
		return nil, malformed(name, "m, t and p are all required")
	}
	if v.p < 1 || v.t < 1 || v.t > argonMaxTime || v.m < 8*uint32(v.p) || v.m > argonMaxMemory {
		return nil, malformed(name, "parameters m=%d,t=%d,p=%d out of range", v.m, v.t, v.p)
	}
	var err error
	if v.salt, err = base64.RawStdEncoding.Strict().DecodeString(parts[4]); err != nil || len(v.salt) < 1 {
		return nil, malformed(name, "bad salt encoding")
	}
	if v.sum, err = base64.RawStdEncoding.Strict().DecodeString(parts[5]); err != nil || len(v.sum) < 4 || len(v.sum) > argonMaxKey {
		return nil, malformed(name, "bad hash encoding or length")
	}
	v.setting = s[:len(s)-len(parts[4])-len(parts[5])-1]
	return v, nil
}

func (v argon2Verifier) verify(pass []byte) bool {
	var got []byte
	if v.id {
		got = argon2.IDKey(pass, v.salt, v.t, v.m, v.p, uint32(len(v.sum)))
	} else {
		got = argon2.Key(pass, v.salt, v.t, v.m, v.p, uint32(len(v.sum)))
	}
	return subtle.ConstantTimeCompare(got, v.sum) == 1
}

func (v argon2Verifier) expensive() bool { return true }

func (v argon2Verifier) class() string { return v.setting }
