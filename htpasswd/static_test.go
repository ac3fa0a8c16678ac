package htpasswd

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestParseStatic(t *testing.T) {
	s, err := ParseStatic("  alice:pw1 bob:p:w:2\tcarol:x ")
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 3 {
		t.Fatalf("Len = %d", s.Len())
	}
	for _, h := range s.users {
		if strings.Contains(h, "pw1") || !strings.HasPrefix(h, "$6$") {
			t.Fatalf("stored %q: not a hash", h)
		}
	}
	tests := []struct {
		user, pass string
		ok         bool
	}{
		{"alice", "pw1", true},
		{"bob", "p:w:2", true},
		{"alice", "pw2", false},
		{"dave", "pw1", false},
		{"alice", strings.Repeat("x", 2000), false},
	}
	for _, tt := range tests {
		u, err := s.Authenticate(context.Background(), tt.user, tt.pass)
		if tt.ok != (err == nil) || (!tt.ok && !errors.Is(err, ErrBadCredentials)) || (tt.ok && u.Name != tt.user) {
			t.Errorf("%s/%s: %+v %v", tt.user, tt.pass, u, err)
		}
	}
	for _, bad := range []string{"", "alice", "alice:", ":pw", "a:1 a:2", "#x:1"} {
		if _, err := ParseStatic(bad); err == nil {
			t.Errorf("ParseStatic(%q) accepted", bad)
		}
	}
}
