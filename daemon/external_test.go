package daemon_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/pop3d/pop3d/daemon"
)

// Failures counted from outside double the delay like POP3 ones do, per
// address, and a success forgets them.
func TestExternalLoginPenalty(t *testing.T) {
	cfg := daemon.DefaultConfig()
	cfg.AuthFailureDelay = time.Second
	srv := daemon.New(nil, cfg, nil)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	steps := []struct {
		ip      netip.Addr
		succeed bool
		want    time.Duration
	}{
		{a, false, time.Second},
		{a, false, 2 * time.Second},
		{a, false, 4 * time.Second},
		{b, false, time.Second},
		{a, true, 0},
		{a, false, time.Second},
	}
	for i, st := range steps {
		if st.succeed {
			srv.ExternalLoginSucceeded(st.ip)
			continue
		}
		if got := srv.ExternalLoginFailed(st.ip); got != st.want {
			t.Errorf("step %d (%v): delay %v, want %v", i, st.ip, got, st.want)
		}
	}
}
