package htpasswd

import (
	"context"
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
)

// AuthenticateAPOP verifies an RFC 1939 APOP login: digest must be the
// lower- or upper-case hex MD5 of challenge (the greeting's timestamp,
// angle brackets included) followed by the user's secret. Only users whose
// stored secret is plain text ({PLAIN}, {CLEARTEXT}) can use APOP; for
// everyone else, unknown users and users with hashed passwords alike, it
// fails as a wrong password would, after the same work. The comparison is
// constant-time.
func (f *File) AuthenticateAPOP(ctx context.Context, user, challenge, digest string) (User, error) {
	f.refresh()
	t := f.cur.Load().t
	e, ok := t.lookup(user)
	secret, usable := "", false
	if ok && !e.refused {
		if v, _, err := parseHash(e.hash); err == nil {
			if pv, isPlain := v.(plainVerifier); isPlain {
				secret, usable = pv.raw, true
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return User{}, err
	}
	want := md5.Sum([]byte(challenge + secret))
	// The length first: hex.Decode writes past a short destination (a
	// panic on a client's over-long digest).
	var got [md5.Size]byte
	decErr := error(hex.ErrLength)
	if len(digest) == 2*md5.Size {
		_, decErr = hex.Decode(got[:], []byte(digest))
	}
	match := subtle.ConstantTimeCompare(want[:], got[:]) == 1
	if !usable || decErr != nil || !match {
		reason := "wrong digest"
		switch {
		case !ok:
			reason = "unknown user"
		case !usable:
			reason = "no plain-text secret for APOP"
		}
		f.logger.Debug("APOP check failed", "file", f.path, "user", user, "reason", reason)
		return User{}, ErrBadCredentials
	}
	return User{Name: user, Home: e.home, Extra: e.extra}, nil
}
