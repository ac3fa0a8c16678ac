package main

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pop3d/pop3d/daemon"
)

// authPath is where the auth_http server answers; nginx is configured with
// `auth_http 127.0.0.1:9180/auth;`.
const authPath = "/auth"

// authHTTP answers nginx's mail auth_http requests
// (https://nginx.org/en/docs/mail/ngx_mail_auth_http_module.html): it
// verifies the login as a POP3 login would be (the same password file,
// rules and failure delay), and names the backend that serves the user.
//
// nginx sends the credentials percent-encoded in Auth-User and Auth-Pass,
// the client's address in Client-IP and the attempt number in
// Auth-Login-Attempt. The answer is in headers only: `Auth-Status: OK` with
// Auth-Server (an IP address) and Auth-Port, or `Auth-Status: TEXT`, which
// nginx sends to the client as "-ERR TEXT". With `Auth-Wait: N` nginx
// waits N seconds before that and lets the client try again; without it,
// nginx answers at once and closes the connection, which is what a user
// whose backend is down gets.
type authHTTP struct {
	backend *backend
	health  *health
	penalty penalty
	logger  *slog.Logger
}

// penalty is the brute-force penalty per client address, shared with the
// POP3 listeners of the same pop3d (*daemon.Server).
type penalty interface {
	ExternalLoginFailed(ip netip.Addr) time.Duration
	ExternalLoginRefused(ip netip.Addr) time.Duration
	ExternalLoginSucceeded(ip netip.Addr)
}

// authConfig is what a SIGHUP may change in the auth_http server; it
// lives in backendSettings.
type authConfig struct {
	place       placement
	maxFailures int // max_auth_failures
}

func (a *authHTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != authPath {
		http.NotFound(w, r)
		return
	}
	ans := a.answer(r.Context(), r.Header)
	h := w.Header()
	h.Set("Auth-Status", ans.status)
	if ans.ok {
		h.Set("Auth-Server", ans.server.Addr().String())
		h.Set("Auth-Port", strconv.Itoa(int(ans.server.Port())))
	}
	if ans.wait > 0 {
		h.Set("Auth-Wait", strconv.Itoa(ans.wait))
	}
	w.WriteHeader(http.StatusOK)
}

// authAnswer is the answer to one request.
type authAnswer struct {
	ok     bool
	status string         // "OK" or the text nginx puts after "-ERR "
	server netip.AddrPort // when ok
	wait   int            // Auth-Wait seconds; 0: none (nginx closes)
}

func failed(status string) authAnswer { return authAnswer{status: status} }

// answer decides one request.
func (a *authHTTP) answer(ctx context.Context, h http.Header) authAnswer {
	s := a.backend.settings.Load()
	client := clientAddr(h.Get("Client-IP"))
	clientIP := client.IP.String()
	if client.IP == nil {
		clientIP = ""
	}
	if p := strings.ToLower(h.Get("Auth-Protocol")); p != "pop3" {
		a.logger.Warn("auth_http: protocol not served", "remote_ip", clientIP, "protocol", p)
		return failed("[SYS/PERM] only POP3 is served here")
	}
	if m := strings.ToLower(h.Get("Auth-Method")); m != "plain" {
		// APOP and CRAM-MD5 need the password in clear text on the
		// server side, which a hashed password file does not have.
		a.logger.Info("login refused", "remote_ip", clientIP, "mech", m, "reason", "mechanism not supported")
		return failed("[AUTH] authentication mechanism not supported")
	}
	user, err1 := url.PathUnescape(h.Get("Auth-User"))
	pass, err2 := url.PathUnescape(h.Get("Auth-Pass"))
	if err1 != nil || err2 != nil {
		a.logger.Warn("auth_http: bad percent-encoding in Auth-User or Auth-Pass", "remote_ip", clientIP)
		return failed("[AUTH] authentication failed")
	}
	attempt, _ := strconv.Atoi(h.Get("Auth-Login-Attempt"))
	info := daemon.ConnInfo{RemoteAddr: client, TLS: strings.EqualFold(h.Get("Auth-SSL"), "on")}
	// The password and the policy (nologin, allow_nets against the
	// client's address) as for a POP3 login; LOGIN-DELAY and EXPIRE need
	// the mailbox and are the backend's, which checks the replayed login.
	u, _, err := s.verify(ctx, user, pass, info)
	var de *daemon.Error
	switch {
	case err == nil:
	case errors.As(err, &de) && de.Code == daemon.CodeAuth && de.Verified:
		reason := de.Reason
		if reason == "" {
			reason = de.Text
		}
		a.logger.Info("login refused", "remote_ip", clientIP, "user", user, "mech", "auth_http", "reason", reason)
		return a.authFailure(ctx, "[AUTH] "+de.Text, a.penalty.ExternalLoginRefused(addrOf(client)), attempt, s.auth.maxFailures)
	case errors.As(err, &de) && de.Code == daemon.CodeAuth:
		reason := de.Reason
		if reason == "" {
			reason = "bad credentials"
		}
		// The line fail2ban counts, as a POP3 login writes it.
		a.logger.Warn("login failed", "remote_ip", clientIP, "user", user, "mech", "auth_http", "reason", reason)
		// auth_failure_delay, doubled per recent failure of the address.
		return a.authFailure(ctx, "[AUTH] "+de.Text, a.penalty.ExternalLoginFailed(addrOf(client)), attempt, s.auth.maxFailures)
	case errors.As(err, &de):
		a.logger.Error("login error", "remote_ip", clientIP, "user", user, "mech", "auth_http", "reason", de.Text, "err", err)
		return failed("[" + de.Code + "] " + de.Text)
	default:
		a.logger.Error("login error", "remote_ip", clientIP, "user", user, "mech", "auth_http", "reason", "internal error", "err", err)
		return failed("[SYS/TEMP] internal error")
	}
	b, err := s.auth.place.place(u)
	if err != nil {
		a.logger.Error("login error", "remote_ip", clientIP, "user", user, "mech", "auth_http", "reason", "no backend", "err", err)
		return failed("[SYS/PERM] mailbox unavailable")
	}
	if !a.health.up(b) {
		a.logger.Warn("login refused", "remote_ip", clientIP, "user", user, "mech", "auth_http",
			"reason", "backend down", "backend", b.String())
		return failed("[SYS/TEMP] mailbox server unavailable, try again later")
	}
	a.penalty.ExternalLoginSucceeded(addrOf(client))
	a.logger.Info("auth_http login", "remote_ip", clientIP, "user", user, "backend", b.String(), "tls", info.TLS)
	return authAnswer{ok: true, status: "OK", server: b}
}

// authFailure is the answer to a refused login: nginx waits Auth-Wait
// (the failure delay, rounded up to seconds) before telling the client,
// except at the last attempt max_auth_failures allows, where nginx closes
// the connection at once and the delay is spent here instead.
func (a *authHTTP) authFailure(ctx context.Context, status string, delay time.Duration, attempt, maxFailures int) authAnswer {
	if maxFailures > 0 && attempt >= maxFailures {
		sleepCtx(ctx, delay)
		return failed("[AUTH] too many authentication failures")
	}
	ans := failed(status)
	ans.wait = int(math.Ceil(delay.Seconds()))
	return ans
}

// clientAddr is nginx's Client-IP as an address (nil IP when missing or
// invalid).
func clientAddr(v string) *net.TCPAddr {
	ip, err := netip.ParseAddr(strings.TrimSpace(v))
	if err != nil {
		return &net.TCPAddr{}
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip.Unmap(), 0))
}

func addrOf(a *net.TCPAddr) netip.Addr {
	ip, _ := netip.AddrFromSlice(a.IP)
	return ip.Unmap()
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// authHTTPServer is the http.Server of the auth_http listener. nginx sends
// one small request per connection (HTTP/1.0), so the limits are tight.
func authHTTPServer(a *authHTTP, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           a,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      time.Minute, // a failure delay may be spent before answering
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}
