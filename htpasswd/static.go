package htpasswd

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Static is a fixed set of users given as "user:password" pairs (pop3d's
// POP3D_AUTH environment variable, for containers). The passwords are
// hashed at once (SHA-512-crypt) and the clear text is not kept.
type Static struct {
	users map[string]string // name -> hash
	dummy string
}

// ParseStatic parses space-separated "user:password" pairs. A user name
// must not contain ':'; the password is everything after the first ':'
// (it may contain ':' but no space). A duplicate user is an error.
func ParseStatic(s string) (*Static, error) {
	st := &Static{users: make(map[string]string)}
	for i, pair := range strings.Fields(s) {
		user, pass, ok := strings.Cut(pair, ":")
		if !ok || pass == "" {
			return nil, fmt.Errorf("entry %d: expected user:password", i+1)
		}
		if err := validUser(user); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		if _, dup := st.users[user]; dup {
			return nil, fmt.Errorf("entry %d: duplicate user %q", i+1, user)
		}
		h, err := hashSha512Crypt([]byte(pass))
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		st.users[user] = h
		st.dummy = h
	}
	if len(st.users) == 0 {
		return nil, errors.New("no users")
	}
	return st, nil
}

// Len is the number of users.
func (s *Static) Len() int { return len(s.users) }

// Has reports whether user is one of s's users.
func (s *Static) Has(user string) bool {
	_, ok := s.users[user]
	return ok
}

// Authenticate verifies user/pass like File.Authenticate: unknown user and
// wrong password both give ErrBadCredentials after the same work.
func (s *Static) Authenticate(ctx context.Context, user, pass string) (User, error) {
	if err := ctx.Err(); err != nil {
		return User{}, err
	}
	h, known := s.users[user]
	if len(pass) > maxPasswordLen {
		// Never right, but hashed like any other attempt (bounded).
		pass, known = pass[:maxPasswordLen], false
	}
	if !known {
		h = s.dummy
	}
	v, _, err := parseHash(h)
	if err != nil {
		return User{}, fmt.Errorf("htpasswd: static hash: %w", err)
	}
	if !v.verify([]byte(pass)) || !known {
		return User{}, ErrBadCredentials
	}
	return User{Name: user}, nil
}
