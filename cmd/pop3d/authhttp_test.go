package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pop3d/pop3d/daemon"
	"github.com/pop3d/pop3d/internal/testlog"
)

// greeter is a POP3 backend stand-in for health checks: it greets and
// closes.
func greeter(t testing.TB, greeting string) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(greeting + "\r\n"))
			c.Close()
		}
	}()
	return netip.MustParseAddrPort(l.Addr().String())
}

// closedPort is an address nobody listens on.
func closedPort(t testing.TB) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddrPort(l.Addr().String())
	l.Close()
	return a
}

type authFixture struct {
	srv    *httptest.Server
	log    *testlog.Buffer
	up     netip.AddrPort
	down   netip.AddrPort
	health *health
	server *daemon.Server // its brute-force penalty
}

func newAuthFixture(t testing.TB) authFixture {
	t.Helper()
	fx := authFixture{log: &testlog.Buffer{}, up: greeter(t, "+OK POP3 server ready"), down: closedPort(t)}
	pw, _ := passwdFixture(t,
		"alice@example.org:"+shaHash("secret"),
		"pct:"+shaHash("p%ss w+rd"),
		"downuser:"+shaHash("d")+":::::: host="+fx.down.Addr().String()+" port="+strconv.Itoa(int(fx.down.Port())),
		"upuser:"+shaHash("u")+":::::: host="+fx.up.Addr().String()+" port="+strconv.Itoa(int(fx.up.Port())),
		"badhost:"+shaHash("b")+":::::: host=mail.example.org",
		"user with space:"+shaHash("s"),
		"disabled:"+shaHash("x")+`:::::: nologin reason="moved to imap.example.org"`,
		"netuser:"+shaHash("n")+":::::: allow_nets=10.0.0.0/8",
	)
	logger := slog.New(slog.NewTextHandler(fx.log, nil))
	b := newBackend(backendSettings{passwd: pw, template: t.TempDir() + "/%n", auth: authConfig{
		place:       placement{backends: []netip.AddrPort{fx.up}},
		maxFailures: 3,
	}}, logger)
	dc := daemon.DefaultConfig()
	dc.AuthFailureDelay = 1500 * time.Millisecond
	fx.server = daemon.New(b, dc, logger)
	fx.health = newHealth(logger, false)
	fx.health.watch([]netip.AddrPort{fx.up, fx.down})
	fx.health.checkAll(context.Background())
	fx.srv = httptest.NewServer(authHTTPServer(&authHTTP{backend: b, health: fx.health, penalty: fx.server, logger: logger}, logger).Handler)
	t.Cleanup(fx.srv.Close)
	return fx
}

// ask sends a request as nginx builds it.
func (fx authFixture) ask(t *testing.T, path string, hdr map[string]string) (http.Header, time.Duration) {
	t.Helper()
	req, err := http.NewRequest("GET", fx.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Auth-Method", "plain")
	req.Header.Set("Auth-Protocol", "pop3")
	req.Header.Set("Auth-Login-Attempt", "1")
	req.Header.Set("Client-IP", "192.0.2.42")
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && path == authPath {
		t.Fatalf("status %d", resp.StatusCode)
	}
	return resp.Header, time.Since(start)
}

func TestAuthHTTP(t *testing.T) {
	fx := newAuthFixture(t)
	up := fx.up
	tests := []struct {
		name           string
		hdr            map[string]string
		status, server string
		port, wait     string
		logged         string
	}{
		{"good login", map[string]string{"Auth-User": "alice@example.org", "Auth-Pass": "secret"},
			"OK", up.Addr().String(), strconv.Itoa(int(up.Port())), "", `msg="auth_http login" remote_ip=192.0.2.42 user=alice@example.org`},
		{"percent-encoded user and password", map[string]string{"Auth-User": "alice%40example.org", "Auth-Pass": "secret"},
			"OK", up.Addr().String(), strconv.Itoa(int(up.Port())), "", ""},
		{"percent, space and plus in the password", map[string]string{"Auth-User": "pct", "Auth-Pass": "p%25ss%20w+rd"},
			"OK", up.Addr().String(), strconv.Itoa(int(up.Port())), "", ""},
		{"space in the user name", map[string]string{"Auth-User": "user%20with%20space", "Auth-Pass": "s"},
			"OK", up.Addr().String(), strconv.Itoa(int(up.Port())), "", ""},
		{"wrong password", map[string]string{"Auth-User": "alice@example.org", "Auth-Pass": "nope"},
			"[AUTH] authentication failed", "", "", "2",
			`msg="login failed" remote_ip=192.0.2.42 user=alice@example.org mech=auth_http reason="bad credentials"`},
		{"unknown user", map[string]string{"Auth-User": "mallory", "Auth-Pass": "secret", "Client-IP": "192.0.2.43"},
			"[AUTH] authentication failed", "", "", "2", ""},
		{"bad percent-encoding", map[string]string{"Auth-User": "alice%zz", "Auth-Pass": "secret"},
			"[AUTH] authentication failed", "", "", "", "bad percent-encoding"},
		{"password in clear where a mechanism needs it", map[string]string{"Auth-User": "alice@example.org", "Auth-Pass": "secret", "Auth-Method": "apop"},
			"[AUTH] authentication mechanism not supported", "", "", "", ""},
		{"not POP3", map[string]string{"Auth-User": "alice@example.org", "Auth-Pass": "secret", "Auth-Protocol": "imap"},
			"[SYS/PERM] only POP3 is served here", "", "", "", ""},
		{"backend down", map[string]string{"Auth-User": "downuser", "Auth-Pass": "d"},
			"[SYS/TEMP] mailbox server unavailable, try again later", "", "", "",
			`msg="login refused" remote_ip=192.0.2.42 user=downuser mech=auth_http reason="backend down"`},
		{"host= field", map[string]string{"Auth-User": "upuser", "Auth-Pass": "u"},
			"OK", up.Addr().String(), strconv.Itoa(int(up.Port())), "", ""},
		{"nologin", map[string]string{"Auth-User": "disabled", "Auth-Pass": "x", "Client-IP": "192.0.2.50"},
			"[AUTH] moved to imap.example.org", "", "", "2",
			`msg="login refused" remote_ip=192.0.2.50 user=disabled mech=auth_http reason="account disabled"`},
		{"nologin with a wrong password", map[string]string{"Auth-User": "disabled", "Auth-Pass": "nope", "Client-IP": "192.0.2.51"},
			"[AUTH] authentication failed", "", "", "2", ""},
		{"allow_nets: Client-IP outside", map[string]string{"Auth-User": "netuser", "Auth-Pass": "n", "Client-IP": "192.0.2.52"},
			"[AUTH] authentication failed", "", "", "2",
			`msg="login failed" remote_ip=192.0.2.52 user=netuser mech=auth_http reason="network not allowed"`},
		{"allow_nets: Client-IP inside", map[string]string{"Auth-User": "netuser", "Auth-Pass": "n", "Client-IP": "10.1.2.3"},
			"OK", up.Addr().String(), strconv.Itoa(int(up.Port())), "", ""},
		{"host= not an address", map[string]string{"Auth-User": "badhost", "Auth-Pass": "b"},
			"[SYS/PERM] mailbox unavailable", "", "", "", "host=mail.example.org is not an IP address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, took := fx.ask(t, authPath, tt.hdr)
			if got := h.Get("Auth-Status"); got != tt.status {
				t.Errorf("Auth-Status = %q, want %q", got, tt.status)
			}
			if got := h.Get("Auth-Server"); got != tt.server {
				t.Errorf("Auth-Server = %q, want %q", got, tt.server)
			}
			if got := h.Get("Auth-Port"); got != tt.port {
				t.Errorf("Auth-Port = %q, want %q", got, tt.port)
			}
			if got := h.Get("Auth-Wait"); got != tt.wait {
				t.Errorf("Auth-Wait = %q, want %q", got, tt.wait)
			}
			// nginx waits Auth-Wait; the answer itself is not delayed.
			if tt.status != "OK" && took > time.Second {
				t.Errorf("failure answered after %v", took)
			}
			if tt.logged != "" && !strings.Contains(fx.log.String(), tt.logged) {
				t.Errorf("log lacks %q:\n%s", tt.logged, fx.log.String())
			}
		})
	}
}

// Failures from one client address double its Auth-Wait, across
// requests (nginx opens one per attempt); a success forgets them.
func TestAuthHTTPPenalty(t *testing.T) {
	fx := newAuthFixture(t)
	bad := map[string]string{"Auth-User": "alice@example.org", "Auth-Pass": "nope", "Client-IP": "198.51.100.7"}
	for _, want := range []string{"2", "3", "6"} {
		if h, _ := fx.ask(t, authPath, bad); h.Get("Auth-Wait") != want {
			t.Errorf("Auth-Wait = %q, want %q", h.Get("Auth-Wait"), want)
		}
	}
	// Another address is not affected.
	other := map[string]string{"Auth-User": "alice@example.org", "Auth-Pass": "nope", "Client-IP": "198.51.100.8"}
	if h, _ := fx.ask(t, authPath, other); h.Get("Auth-Wait") != "2" {
		t.Errorf("other address: Auth-Wait = %q", h.Get("Auth-Wait"))
	}
	good := map[string]string{"Auth-User": "alice@example.org", "Auth-Pass": "secret", "Client-IP": "198.51.100.7"}
	if h, _ := fx.ask(t, authPath, good); h.Get("Auth-Status") != "OK" {
		t.Fatalf("good login: %q", h.Get("Auth-Status"))
	}
	if h, _ := fx.ask(t, authPath, bad); h.Get("Auth-Wait") != "2" {
		t.Errorf("after a success: Auth-Wait = %q, want 2", h.Get("Auth-Wait"))
	}
}

// At the last attempt nginx gets no Auth-Wait (it closes the connection),
// so the failure delay is spent before the answer.
func TestAuthHTTPLastAttempt(t *testing.T) {
	fx := newAuthFixture(t)
	h, took := fx.ask(t, authPath, map[string]string{"Auth-User": "alice@example.org", "Auth-Pass": "nope", "Auth-Login-Attempt": "3"})
	if got := h.Get("Auth-Status"); got != "[AUTH] too many authentication failures" {
		t.Errorf("Auth-Status = %q", got)
	}
	if h.Get("Auth-Wait") != "" {
		t.Errorf("Auth-Wait %q at the last attempt", h.Get("Auth-Wait"))
	}
	if took < 1500*time.Millisecond {
		t.Errorf("answered after %v, before the failure delay", took)
	}
}

func TestAuthHTTPNotFound(t *testing.T) {
	fx := newAuthFixture(t)
	req, _ := http.NewRequest("GET", fx.srv.URL+"/other", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("status %d", resp.StatusCode)
	}
}

func TestHealth(t *testing.T) {
	var log testlog.Buffer
	h := newHealth(slog.New(slog.NewTextHandler(&log, nil)), false)
	good, bad, down := greeter(t, "+OK hello"), greeter(t, "-ERR [SYS/TEMP] busy"), closedPort(t)
	h.watch([]netip.AddrPort{good, bad, down})
	for _, b := range []netip.AddrPort{good, bad, down} {
		if !h.up(b) {
			t.Errorf("%v down before any check", b)
		}
	}
	h.checkAll(context.Background())
	if !h.up(good) || h.up(bad) || h.up(down) {
		t.Errorf("after a check: good %v, bad %v, down %v", h.up(good), h.up(bad), h.up(down))
	}
	if !strings.Contains(log.String(), `msg="backend down" backend=`+bad.String()) {
		t.Errorf("log: %s", log.String())
	}
}

// A backend that expects PROXY headers from this host accepts the check's
// LOCAL header and greets; one that does not trust it fails the check.
func TestHealthProxyLocal(t *testing.T) {
	for _, trusted := range []bool{true, false} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg := daemon.DefaultConfig()
		cfg.HandshakeTimeout = time.Second
		if trusted {
			cfg.ProxyProtocolFrom = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		}
		srv := daemon.New(nil, cfg, nil)
		go srv.Serve(l, daemon.ModePlain)
		h := newHealth(slog.New(slog.DiscardHandler), true)
		err = h.check(context.Background(), netip.MustParseAddrPort(l.Addr().String()))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		srv.Shutdown(ctx)
		cancel()
		// An untrusted backend greets before reading anything: the
		// check passes too, its header is refused after the greeting.
		if err != nil {
			t.Errorf("trusted=%v: %v", trusted, err)
		}
	}
}

// BenchmarkAuthHTTP is one nginx auth request end to end over loopback
// HTTP (a cheap {SHA} hash, so that the server's own cost shows).
func BenchmarkAuthHTTP(b *testing.B) {
	fx := newAuthFixture(b)
	req, _ := http.NewRequest("GET", fx.srv.URL+authPath, nil)
	req.Header.Set("Auth-Method", "plain")
	req.Header.Set("Auth-Protocol", "pop3")
	req.Header.Set("Auth-Login-Attempt", "1")
	req.Header.Set("Client-IP", "192.0.2.42")
	req.Header.Set("Auth-User", "alice%40example.org")
	req.Header.Set("Auth-Pass", "secret")
	for b.Loop() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Auth-Status") != "OK" {
			b.Fatal(resp.Header)
		}
	}
}
