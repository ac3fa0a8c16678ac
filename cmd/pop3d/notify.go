package main

import (
	"log/slog"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
)

// notifier sends sd_notify(3) states to systemd; without NOTIFY_SOCKET it
// does nothing, so pop3d started by hand behaves the same.
type notifier struct {
	logger *slog.Logger
}

// send sends state (newline-separated assignments such as "READY=1").
func (n notifier) send(state string) {
	if _, err := sddaemon.SdNotify(false, state); err != nil {
		n.logger.Warn("sd_notify failed", "state", state, "err", err)
	}
}

func (n notifier) ready(status string) {
	n.send("READY=1\nSTATUS=" + status)
}

// reloading announces a reload; MONOTONIC_USEC is what systemd 253's
// Type=notify-reload wants, and older versions ignore it.
func (n notifier) reloading() {
	n.send("RELOADING=1\n" + sddaemon.SdNotifyMonotonicUsec() + "STATUS=reloading configuration")
}

func (n notifier) stopping() {
	n.send("STOPPING=1\nSTATUS=shutting down")
}
