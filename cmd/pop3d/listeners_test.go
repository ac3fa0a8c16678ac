package main

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/pop3d/pop3d/daemon"
)

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestActivatedListeners(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	byName := map[string][]net.Listener{
		"pop3":         {listenLoopback(t)},
		"pop3s":        {listenLoopback(t), listenLoopback(t)},
		"pop3d.socket": {listenLoopback(t)},
	}
	ls := activatedListeners(byName, logger)
	modes := map[string][]daemon.Mode{}
	for _, l := range ls {
		modes[l.name] = append(modes[l.name], l.mode)
	}
	if len(ls) != 4 {
		t.Fatalf("got %d listeners, want 4", len(ls))
	}
	if got := modes["pop3"]; len(got) != 1 || got[0] != daemon.ModePlain {
		t.Errorf("pop3 modes = %v", got)
	}
	if got := modes["pop3s"]; len(got) != 2 || got[0] != daemon.ModeTLS || got[1] != daemon.ModeTLS {
		t.Errorf("pop3s modes = %v", got)
	}
	if got := modes["pop3d.socket"]; len(got) != 1 || got[0] != daemon.ModePlain {
		t.Errorf("other name modes = %v", got)
	}
	if !strings.Contains(logs.String(), "name=pop3d.socket") {
		t.Errorf("unknown fd name not logged: %s", logs.String())
	}
}

func TestCheckListeners(t *testing.T) {
	plain := listener{Listener: listenLoopback(t), mode: daemon.ModePlain, name: "listen"}
	tlsL := listener{Listener: listenLoopback(t), mode: daemon.ModeTLS, name: "pop3s"}
	tests := []struct {
		name    string
		ls      []listener
		haveTLS bool
		err     string
	}{
		{"none", nil, true, "no sockets"},
		{"plain without tls", []listener{plain}, false, ""},
		{"pop3s without tls", []listener{plain, tlsL}, false, "pop3s socket"},
		{"pop3s with tls", []listener{plain, tlsL}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkListeners(tt.ls, tt.haveTLS)
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("checkListeners = %v, want %q", err, tt.err)
			}
		})
	}
}

func TestBindListeners(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listen = []string{"127.0.0.1:0", "127.0.0.1:0"}
	cfg.ListenTLS = []string{"127.0.0.1:0"}
	ls, err := bindListeners(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer closeListeners(ls)
	if len(ls) != 3 || ls[0].mode != daemon.ModePlain || ls[1].mode != daemon.ModePlain || ls[2].mode != daemon.ModeTLS {
		t.Errorf("got %+v", ls)
	}

	// A busy address fails the whole set and releases what was bound.
	busy := listenLoopback(t)
	cfg.Listen = []string{"127.0.0.1:0", busy.Addr().String()}
	cfg.ListenTLS = nil
	if _, err := bindListeners(&cfg); err == nil || !strings.Contains(err.Error(), "listen:") {
		t.Errorf("busy address: err = %v", err)
	}
}

func TestInheritedListenersWithoutActivation(t *testing.T) {
	t.Setenv("LISTEN_FDS", "")
	m, activated, err := inheritedListeners()
	if m != nil || activated || err != nil {
		t.Errorf("got %v %v %v, want nothing", m, activated, err)
	}
}

func TestInheritedListenersWrongPID(t *testing.T) {
	t.Setenv("LISTEN_FDS", "1")
	t.Setenv("LISTEN_PID", "1")
	t.Setenv("LISTEN_FDNAMES", "pop3")
	_, activated, err := inheritedListeners()
	if !activated || err == nil || !strings.Contains(err.Error(), "no listening sockets") {
		t.Errorf("activated=%v err=%v, want an error about missing sockets", activated, err)
	}
}
