package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pop3d/pop3d/daemon"
)

func session(id, remote string, start time.Time) *daemon.Session {
	addr, _ := net.ResolveTCPAddr("tcp", remote)
	return &daemon.Session{ID: id, RemoteAddr: addr, Start: start}
}

// TestRegistry: the registry follows the events, and who shows them.
func TestRegistry(t *testing.T) {
	r := newRegistry()
	t0 := time.Date(2026, 11, 22, 4, 5, 6, 0, time.UTC)
	a := session("00000000000000a1", "192.0.2.7:5000", t0)
	b := session("00000000000000b2", "[2001:db8::1]:6000", t0.Add(time.Second))
	c := session("00000000000000c3", "192.0.2.9:7000", t0.Add(2*time.Second))
	r.Connect(a)
	r.Connect(b)
	r.Connect(c)
	r.Login(a, daemon.Login{Mech: "USER", Result: daemon.LoginSuccess, User: "alice", Messages: 3})
	r.Login(b, daemon.Login{Mech: "PLAIN", Result: daemon.LoginFailure, User: "mallory"})
	r.Command(a, daemon.Command{Name: "RETR", OK: true, Octets: 100})
	r.Command(a, daemon.Command{Name: "RETR", OK: true, Octets: 50})
	r.Command(b, daemon.Command{Name: "STLS", OK: true, TLS: true, Octets: 20})
	r.Login(c, daemon.Login{Mech: "USER", Result: daemon.LoginSuccess, User: "a b", Messages: 0})
	r.Update(c, daemon.Update{})

	var out bytes.Buffer
	if err := r.writeWho(&out, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	want := `SESSION           USER   REMOTE              TLS  STATE          SINCE                        MESSAGES  SENT
00000000000000a1  alice  192.0.2.7:5000      no   TRANSACTION    2026-11-22T04:05:06Z (1m0s)  3         150
00000000000000b2  -      [2001:db8::1]:6000  yes  AUTHORIZATION  2026-11-22T04:05:07Z (59s)   0         20
00000000000000c3  "a b"  192.0.2.9:7000      no   UPDATE         2026-11-22T04:05:08Z (58s)   0         0
`
	if out.String() != want {
		t.Errorf("who:\n%s\nwant:\n%s", out.String(), want)
	}

	// A user named like another session's id: the id wins.
	d := session("00000000000000d4", "192.0.2.10:1", t0)
	r.Connect(d)
	r.Login(d, daemon.Login{Result: daemon.LoginSuccess, User: "00000000000000a1"})
	for _, tt := range []struct {
		target string
		want   int
	}{
		{"nobody", 0},
		{"00000000000000a1", 1},
		{"alice", 1},
		{"", 0},
	} {
		if got := r.kick(tt.target); got != tt.want {
			t.Errorf("kick(%q) = %d, want %d", tt.target, got, tt.want)
		}
	}
	r.Disconnect(a, daemon.Disconnect{})
	r.Disconnect(b, daemon.Disconnect{})
	r.Disconnect(c, daemon.Disconnect{})
	r.Disconnect(d, daemon.Disconnect{})
	if n := len(r.snapshot()); n != 0 {
		t.Errorf("%d sessions after every Disconnect", n)
	}
	// Events of a session unknown (already gone) change nothing.
	r.Command(a, daemon.Command{Octets: 1})
	if n := len(r.snapshot()); n != 0 {
		t.Errorf("a Command after Disconnect added a session")
	}
}

// TestReadiness: /healthz is 503 until serving, 200 while serving, 503
// once stopping.
func TestReadiness(t *testing.T) {
	var h readiness
	for _, tt := range []struct {
		serving bool
		code    int
		body    string
	}{
		{false, http.StatusServiceUnavailable, "not serving\n"},
		{true, http.StatusOK, "ok\n"},
		{false, http.StatusServiceUnavailable, "not serving\n"},
	} {
		h.serving.Store(tt.serving)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
		if rec.Code != tt.code || rec.Body.String() != tt.body {
			t.Errorf("serving=%v: %d %q, want %d %q", tt.serving, rec.Code, rec.Body.String(), tt.code, tt.body)
		}
	}
}

// TestControlSocket: requests and answers over a real Unix socket, and how
// an existing path is treated.
func TestControlSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "ctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "control")

	// Anything but a socket is left alone.
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := listenControl(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("over a regular file: %v", err)
	}
	os.Remove(path)
	// A stale socket (its server gone) is replaced.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	l, err := listenControl(path)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != controlMode {
		t.Fatalf("socket mode: %v %v", fi, err)
	}
	reg := newRegistry()
	srv := &controlServer{l: l, reg: reg, logger: slog.New(slog.DiscardHandler)}
	go srv.serve()
	t.Cleanup(func() { l.Close() })
	// A live one is not taken over.
	if _, err := listenControl(path); err == nil || !strings.Contains(err.Error(), "another pop3d") {
		t.Fatalf("over a live socket: %v", err)
	}
	if _, err := listenControl(filepath.Join(dir, "missing", "control")); err == nil || !strings.Contains(err.Error(), "RuntimeDirectory=") {
		t.Fatalf("in a missing directory: %v", err)
	}

	s := session("00000000000000e5", "127.0.0.1:1", time.Now())
	reg.Connect(s)
	reg.Login(s, daemon.Login{Result: daemon.LoginSuccess, User: "alice"})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, tt := range []struct {
		request, want, wantErr string
	}{
		{"who", "00000000000000e5  alice", ""},
		{"kick nobody", "0\n", ""},
		{"who extra", "", "unknown request \"who\""},
		{"kick", "", "unknown request \"kick\""},
		{"shutdown", "", "unknown request \"shutdown\""},
		{strings.Repeat("x", 2000), "", "request not understood"},
	} {
		got, err := controlRequest(ctx, path, tt.request)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%.20q: %q, %v; want error %q", tt.request, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !strings.Contains(got, tt.want) {
			t.Errorf("%.20q: %q, %v; want %q", tt.request, got, err, tt.want)
		}
	}
	if _, err := controlRequest(ctx, filepath.Join(dir, "nothing"), "who"); err == nil || !strings.Contains(err.Error(), "is pop3d running") {
		t.Errorf("no socket: %v", err)
	}
}
