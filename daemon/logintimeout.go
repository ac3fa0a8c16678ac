package daemon

import (
	"fmt"
	"time"
)

// The login timeout bounds the time from connect to a successful login,
// whatever the client does meanwhile (silence, a PROXY header or TLS
// handshake sent byte by byte, commands that are not a login): a crowd of
// silent connections then holds its slots for LoginTimeout, not for the
// post-login IdleTimeout. Courier allows 60 s, Dovecot 3 min.

// loginDeadline is when the session must have logged in by; zero for none
// (no LoginTimeout, or logged in).
func (s *session) loginDeadline() time.Time {
	if s.cfg.LoginTimeout <= 0 || s.state != stateAuth {
		return time.Time{}
	}
	return s.start.Add(s.cfg.LoginTimeout)
}

// capDeadline returns the earlier of d (zero: none) and the login
// deadline.
func (s *session) capDeadline(d time.Time) time.Time {
	ld := s.loginDeadline()
	if ld.IsZero() || (!d.IsZero() && d.Before(ld)) {
		return d
	}
	return ld
}

// deadlineIn is now+t (zero for t <= 0, no deadline) capped by the login
// deadline.
func (s *session) deadlineIn(t time.Duration) time.Time {
	var d time.Time
	if t > 0 {
		d = time.Now().Add(t)
	}
	return s.capDeadline(d)
}

// loginExpired reports whether the login timeout has run out.
func (s *session) loginExpired() bool {
	ld := s.loginDeadline()
	return !ld.IsZero() && !time.Now().Before(ld)
}

// loginTimedOut logs the expiry and tells the client.
func (s *session) loginTimedOut() {
	s.srv.logger.Info("login timeout", "remote_ip", s.remoteIPString(), "login_timeout", s.cfg.LoginTimeout)
	s.goodbye(fmt.Sprintf("-ERR [SYS/TEMP] login timeout: no login within %s", s.cfg.LoginTimeout))
}
