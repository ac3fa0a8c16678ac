package daemon

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestClientKey(t *testing.T) {
	for _, tc := range []struct{ in, key, logged string }{
		{"192.0.2.7", "192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::", "2001:db8:1:2::/64"},
		{"2001:db8:1:2::1", "2001:db8:1:2::", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::", "fe80::/64"},
		{"::1", "::", "::/64"},
	} {
		k := clientKey(netip.MustParseAddr(tc.in))
		if k.String() != tc.key || clientKeyString(k) != tc.logged {
			t.Errorf("clientKey(%s) = %s logged as %s, want %s, %s", tc.in, k, clientKeyString(k), tc.key, tc.logged)
		}
	}
}

// TestRefusalWindowsBounded checks that refusals from more clients than
// maxRefusalWindows share one count instead of growing without bound, and
// that Shutdown logs what is pending.
func TestRefusalWindowsBounded(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	cfg := DefaultConfig()
	cfg.RefusalLogInterval = time.Hour
	srv := New(nopBackend{}, cfg, slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil)))
	remote := &net.TCPAddr{Port: 1}
	for i := range maxRefusalWindows + 500 {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		for range 2 {
			srv.logRefusal(remote, ip, ModePlain, "max_connections")
		}
	}
	srv.refusals.mu.Lock()
	n := len(srv.refusals.windows)
	srv.refusals.mu.Unlock()
	if n != maxRefusalWindows+1 {
		t.Errorf("%d windows, want %d", n, maxRefusalWindows+1)
	}
	srv.Shutdown(t.Context())
	mu.Lock()
	defer mu.Unlock()
	out := logs.String()
	if got := strings.Count(out, `msg="connection refused"`); got != maxRefusalWindows+1 {
		t.Errorf("%d single refusal lines, want %d", got, maxRefusalWindows+1)
	}
	if !strings.Contains(out, `msg="connections refused" remote_ip="other addresses" listener=pop3 limit=max_connections count=999 interval=1h0m0s`) {
		t.Errorf("no line for the other addresses")
	}
	if got := strings.Count(out, `msg="connections refused"`); got != maxRefusalWindows+1 {
		t.Errorf("%d counted lines at shutdown, want %d", got, maxRefusalWindows+1)
	}
}
