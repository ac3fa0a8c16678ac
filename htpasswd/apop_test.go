package htpasswd

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAuthenticateAPOP(t *testing.T) {
	p := filepath.Join(t.TempDir(), "passwd")
	content := "plain:{PLAIN}tanstaaf\n" +
		"clear:{CLEARTEXT}secret\n" +
		"hashed:{SHA256-CRYPT}$5$rounds=1000$salt$kw3qjQ5bvj7OEOtJbNdkEyrUFQDHuh8Eev3F7xkoWB6\n"
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	const ts = "<1896.697170952@dbc.mtview.ca.us>"
	digest := func(secret string) string {
		s := md5.Sum([]byte(ts + secret))
		return hex.EncodeToString(s[:])
	}
	tests := []struct {
		user, digest string
		ok           bool
	}{
		// The example of RFC 1939 section 7.
		{"plain", "c4c9334bac560ecc979e58001b3e22fb", true},
		{"plain", strings.ToUpper("c4c9334bac560ecc979e58001b3e22fb"), true},
		{"clear", digest("secret"), true},
		{"clear", digest("wrong"), false},
		{"hashed", digest(""), false},
		{"nobody", digest(""), false},
		{"plain", "c4c9334bac560ecc979e58001b3e22f", false},
		{"plain", "zz", false},
		// Longer than a digest: refused, never decoded past the buffer.
		{"plain", "c4c9334bac560ecc979e58001b3e22fb00", false},
		{"plain", strings.Repeat("ab", 100), false},
		{"plain", "", false},
	}
	for _, tt := range tests {
		u, err := f.AuthenticateAPOP(context.Background(), tt.user, ts, tt.digest)
		if tt.ok != (err == nil) || (!tt.ok && !errors.Is(err, ErrBadCredentials)) || (tt.ok && u.Name != tt.user) {
			t.Errorf("APOP %s %s = %+v, %v; want ok=%v", tt.user, tt.digest, u, err, tt.ok)
		}
	}
}

// FuzzAuthenticateAPOP: any digest a client sends is answered, never a
// panic, and only the right one logs in.
func FuzzAuthenticateAPOP(f *testing.F) {
	p := filepath.Join(f.TempDir(), "passwd")
	if err := os.WriteFile(p, []byte("plain:{PLAIN}tanstaaf\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	file, err := Open(p, nil)
	if err != nil {
		f.Fatal(err)
	}
	const ts = "<1896.697170952@dbc.mtview.ca.us>"
	for _, seed := range []string{"c4c9334bac560ecc979e58001b3e22fb", "", "zz", strings.Repeat("0", 40)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, digest string) {
		_, err := file.AuthenticateAPOP(context.Background(), "plain", ts, digest)
		if err == nil && !strings.EqualFold(digest, "c4c9334bac560ecc979e58001b3e22fb") {
			t.Fatalf("digest %q accepted", digest)
		}
	})
}
