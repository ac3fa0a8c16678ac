package daemon

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// maxRefusalWindows bounds the clients whose refusals are counted apart at
// once; refusals of further clients share one count, so that a crowd of
// addresses costs bounded memory.
const maxRefusalWindows = 10000

// refusalLog turns a flood of connections refused over a limit into a few
// log lines: the first refusal of a client (clientKey: an IPv4 address or
// an IPv6 /64) for a limit is logged at once, as "connection refused";
// further ones within RefusalLogInterval are counted and logged as one
// "connections refused" line with the count when the interval ends. A
// single client refused 5000 times a second thus writes one line a minute
// instead of 5000 a second, which also keeps journald from dropping the
// lines that matter.
type refusalLog struct {
	mu      sync.Mutex
	windows map[refusalKey]*refusalWindow
	stopped bool // Shutdown: every refusal is logged at once
}

type refusalKey struct {
	ip    netip.Addr // clientKey; zero for refusals beyond maxRefusalWindows and non-IP peers
	limit string
}

// refusalWindow counts one client's refusals after the first, within one
// interval.
type refusalWindow struct {
	listener string
	count    int
	interval time.Duration
	timer    *time.Timer
}

// logRefusal logs, or counts for a later line, a connection from remote
// (whose address is ip) refused over limit.
func (s *Server) logRefusal(remote net.Addr, ip netip.Addr, mode Mode, limit string) {
	interval := s.config().RefusalLogInterval
	r := &s.refusals
	r.mu.Lock()
	defer r.mu.Unlock()
	first := func() {
		s.logger.Warn("connection refused", "remote", remote.String(), "listener", mode.String(), "limit", limit)
	}
	if interval <= 0 || r.stopped {
		first()
		return
	}
	k := refusalKey{limit: limit}
	if ip.IsValid() {
		k.ip = clientKey(ip)
	}
	if w, ok := r.windows[k]; ok {
		w.count++
		w.listener = mode.String()
		return
	}
	if len(r.windows) >= maxRefusalWindows {
		k.ip = netip.Addr{}
		if w, ok := r.windows[k]; ok {
			w.count++
			return
		}
	}
	first()
	if r.windows == nil {
		r.windows = make(map[refusalKey]*refusalWindow)
	}
	w := &refusalWindow{listener: mode.String(), interval: interval}
	r.windows[k] = w
	w.timer = time.AfterFunc(interval, func() { r.flush(s.logger, k, w) })
}

// flush ends an interval of w: it logs the refusals counted, and keeps the
// window for another interval if there were any (a client still hammering
// gets one line per interval), else forgets it.
func (r *refusalLog) flush(logger *slog.Logger, k refusalKey, w *refusalWindow) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.windows[k] != w {
		return // Shutdown flushed it
	}
	if w.count == 0 {
		delete(r.windows, k)
		return
	}
	logCounted(logger, k, w)
	w.count = 0
	w.timer.Reset(w.interval)
}

// stop logs every count pending and stops the timers; refusals from now on
// are logged one by one.
func (r *refusalLog) stop(logger *slog.Logger) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	for k, w := range r.windows {
		w.timer.Stop()
		if w.count > 0 {
			logCounted(logger, k, w)
		}
	}
	r.windows = nil
}

func logCounted(logger *slog.Logger, k refusalKey, w *refusalWindow) {
	who := "other addresses"
	if k.ip.IsValid() {
		who = clientKeyString(k.ip)
	}
	logger.Warn("connections refused", "remote_ip", who, "listener", w.listener, "limit", k.limit,
		"count", w.count, "interval", w.interval)
}
