package daemon

import (
	"net/netip"
	"time"
)

// WriteTop exposes writeTop to the black-box tests.
var WriteTop = writeTop

// PenaltyDelay is the failure delay the next failed login from ip would
// start from (tests of the brute-force penalty across connections).
func (s *Server) PenaltyDelay(ip netip.Addr) time.Duration {
	cfg := s.config()
	return s.penalty.current(ip, cfg.AuthFailureDelay, cfg.now())
}
