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

// An over-long password is checked against the dummy hash, which is the
// last user's: it must fail for every user even when its first
// maxPasswordLen bytes are that user's password.
func TestStaticLongPasswordNeverBorrowsTheDummy(t *testing.T) {
	last := strings.Repeat("p", maxPasswordLen)
	s, err := ParseStatic("alice:a-secret bob:" + last)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(context.Background(), "bob", last); err != nil {
		t.Fatalf("bob with his own password: %v", err)
	}
	for _, user := range []string{"alice", "bob", "nobody"} {
		if _, err := s.Authenticate(context.Background(), user, last+"x"); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("%s with an over-long password: %v, want ErrBadCredentials", user, err)
		}
	}
}
