package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sort"

	"github.com/coreos/go-systemd/v22/activation"

	"github.com/pop3d/pop3d/daemon"
)

// Names of systemd socket-activation file descriptors (FileDescriptorName=).
const (
	fdNamePlain = "pop3"
	fdNameTLS   = "pop3s"
)

// listener is a bound socket and how its connections start.
type listener struct {
	net.Listener
	mode daemon.Mode
	name string // fd name or config key, for logs
}

// inheritedListeners returns the sockets passed by systemd, by fd name, and
// whether socket activation is in use. It clears LISTEN_FDS and friends, so
// it must be called once.
func inheritedListeners() (map[string][]net.Listener, bool, error) {
	if os.Getenv("LISTEN_FDS") == "" {
		return nil, false, nil
	}
	pid := os.Getenv("LISTEN_PID")
	byName, err := activation.ListenersWithNames()
	if err != nil {
		return nil, true, fmt.Errorf("socket activation: %w", err)
	}
	if len(byName) == 0 {
		return nil, true, fmt.Errorf("socket activation: LISTEN_FDS is set but no listening sockets were passed (LISTEN_PID=%s, pid %d)", pid, os.Getpid())
	}
	return byName, true, nil
}

// activatedListeners maps inherited sockets to modes: "pop3" is plain with
// STLS, "pop3s" implicit TLS, and any other name (systemd defaults it to the
// socket unit's name) plain, which is logged.
func activatedListeners(byName map[string][]net.Listener, logger *slog.Logger) []listener {
	names := make([]string, 0, len(byName))
	for name := range byName {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []listener
	for _, name := range names {
		mode := daemon.ModePlain
		switch name {
		case fdNamePlain:
		case fdNameTLS:
			mode = daemon.ModeTLS
		default:
			logger.Info("socket with unknown fd name served as plain POP3 with STLS; name it pop3 or pop3s with FileDescriptorName=", "name", name)
		}
		for _, l := range byName[name] {
			out = append(out, listener{Listener: l, mode: mode, name: name})
		}
	}
	return out
}

// bindListeners listens on the listen and listen_tls addresses. On error
// the sockets already bound are closed.
func bindListeners(cfg *Config) ([]listener, error) {
	var out []listener
	bind := func(addrs []string, mode daemon.Mode, keyName string) error {
		for _, addr := range addrs {
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("%s: %w", keyName, err)
			}
			out = append(out, listener{Listener: l, mode: mode, name: keyName})
		}
		return nil
	}
	err := bind(cfg.Listen, daemon.ModePlain, "listen")
	if err == nil {
		err = bind(cfg.ListenTLS, daemon.ModeTLS, "listen_tls")
	}
	if err != nil {
		closeListeners(out)
		return nil, err
	}
	return out, nil
}

// openListeners returns the sockets to serve: the inherited ones under
// socket activation, else those of the config. It refuses to start with
// none (unless authOnly: the auth_http server is all this pop3d serves), and
// with an implicit-TLS socket but no certificate.
func openListeners(cfg *Config, haveTLS, authOnly bool, logger *slog.Logger) ([]listener, error) {
	byName, activated, err := inheritedListeners()
	if err != nil {
		return nil, err
	}
	var ls []listener
	if activated {
		logger.Info("socket-activated: listen and listen_tls are ignored")
		ls = activatedListeners(byName, logger)
	} else {
		ls, err = bindListeners(cfg)
		if err != nil {
			return nil, err
		}
	}
	if len(ls) == 0 && authOnly {
		return nil, nil
	}
	if err := checkListeners(ls, haveTLS); err != nil {
		closeListeners(ls)
		return nil, err
	}
	return ls, nil
}

// checkListeners refuses configurations that cannot serve anybody.
func checkListeners(ls []listener, haveTLS bool) error {
	if len(ls) == 0 {
		return errors.New("no sockets to listen on: listen and listen_tls are empty and pop3d is not socket-activated")
	}
	if haveTLS {
		return nil
	}
	for _, l := range ls {
		if l.mode == daemon.ModeTLS {
			return fmt.Errorf("%s socket %s needs TLS, but tls_cert and tls_key are not set", l.name, l.Addr())
		}
	}
	return nil
}

func closeListeners(ls []listener) {
	for _, l := range ls {
		l.Close()
	}
}
