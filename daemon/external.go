package daemon

import (
	"net/netip"
	"time"
)

// ExternalLoginFailed counts a failed login that reached this server by
// another way than a POP3 connection (nginx's auth_http requests, which
// the proxy host's pop3d answers) against the client address ip, and
// returns the failure delay that login is to get: the brute-force penalty
// is one per address whichever way the guesses come.
func (s *Server) ExternalLoginFailed(ip netip.Addr) time.Duration {
	cfg := s.config()
	return s.penalty.fail(ip, cfg.AuthFailureDelay, cfg.now())
}

// ExternalLoginSucceeded forgets ip's failed logins, as a successful POP3
// login does.
func (s *Server) ExternalLoginSucceeded(ip netip.Addr) {
	s.penalty.reset(ip)
}

// ExternalLoginRefused is the failure delay for a login from ip whose
// credentials were right but which a policy refuses (a disabled account):
// as long as a failure would wait, without counting one.
func (s *Server) ExternalLoginRefused(ip netip.Addr) time.Duration {
	cfg := s.config()
	return s.penalty.current(ip, cfg.AuthFailureDelay, cfg.now())
}
