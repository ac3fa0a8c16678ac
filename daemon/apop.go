package daemon

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
)

// APOP is RFC 1939 section 7: the client proves it knows the secret by
// sending the MD5 of the greeting's timestamp followed by the secret. MD5
// and a plain-text-equivalent secret on the server make it weak
// (CVE-2007-1558); TLS with PASS or AUTH PLAIN is better. It is offered
// only when Config.APOP is set and the Backend is an APOPBackend, and it
// obeys the same TLS rule, failure delay and limits as PASS. CAPA does not
// change: APOP has no capability.

// apopAvailable reports whether this session offers APOP.
func (s *session) apopAvailable() bool {
	if !s.cfg.APOP {
		return false
	}
	_, ok := s.srv.backend.(APOPBackend)
	return ok
}

// newChallenge returns a greeting timestamp unique to this session:
// <pid.random.time@hostname>.
func (s *session) newChallenge() string {
	host := s.cfg.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	if host == "" || strings.ContainsAny(host, "<> \r\n") {
		host = "localhost"
	}
	var r [8]byte
	rand.Read(r[:])
	return "<" + strconv.Itoa(os.Getpid()) + "." + hex.EncodeToString(r[:]) + "." +
		strconv.FormatInt(s.start.UnixNano(), 10) + "@" + host + ">"
}

// cmdApop is APOP name digest.
func (s *session) cmdApop(rest string, _ bool) error {
	ab, ok := s.srv.backend.(APOPBackend)
	if s.challenge == "" || !ok {
		// Not a refusal: without the timestamp there is nothing to prove.
		return badCommand("APOP is not available")
	}
	if !s.authAllowed() {
		return s.tlsRefusal("APOP")
	}
	args := splitArgs(rest)
	if len(args) != 2 {
		return badCommand("APOP takes two arguments: the user name and the digest")
	}
	s.user = ""
	user, digest := args[0], args[1]
	return s.login(user, "APOP", func(ci ConnInfo) (Mailbox, error) {
		return ab.LoginAPOP(s.ctx, user, s.challenge, digest, ci)
	})
}
