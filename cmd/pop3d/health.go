package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/pires/go-proxyproto"
)

// checkTimeout bounds one health check: connecting and reading the
// greeting. A backend slower than this is as good as down for a client.
const checkTimeout = 3 * time.Second

// health tracks which backends answer with a POP3 greeting, so that the
// auth_http server can fail a login at once when the user's backend is
// down instead of letting nginx connect and wait out its timeout. A
// backend is up until a check fails (one it has not checked yet included)
// and down until a check succeeds; both changes are logged.
type health struct {
	logger *slog.Logger
	proxy  bool // start each check with a PROXY v2 LOCAL header
	dial   func(ctx context.Context, network, addr string) (net.Conn, error)

	mu    sync.Mutex
	known map[netip.AddrPort]backendState
}

type backendState struct {
	down  bool
	since time.Time
	err   string
}

func newHealth(logger *slog.Logger, proxy bool) *health {
	var d net.Dialer
	return &health{logger: logger, proxy: proxy, dial: d.DialContext, known: make(map[netip.AddrPort]backendState)}
}

// up reports whether b answered its last check; a backend not known yet
// is added to the checks and counts as up.
func (h *health) up(b netip.AddrPort) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	st, ok := h.known[b]
	if !ok {
		h.known[b] = backendState{since: time.Now()}
	}
	return !st.down
}

// watch adds backends to the checks.
func (h *health) watch(bs []netip.AddrPort) {
	for _, b := range bs {
		h.up(b)
	}
}

// run checks every known backend each interval until ctx ends. A zero
// interval checks nothing: every backend then counts as up.
func (h *health) run(ctx context.Context, interval func() time.Duration) {
	for {
		d := interval()
		if d <= 0 {
			d = time.Second // look again: a reload may turn checks on
		} else {
			h.checkAll(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
	}
}

// checkAll checks the known backends concurrently and records the results.
func (h *health) checkAll(ctx context.Context) {
	h.mu.Lock()
	targets := make([]netip.AddrPort, 0, len(h.known))
	for b := range h.known {
		targets = append(targets, b)
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, b := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := h.check(ctx, b)
			if ctx.Err() != nil {
				return
			}
			h.record(b, err)
		}()
	}
	wg.Wait()
}

func (h *health) record(b netip.AddrPort, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.known[b]
	down := err != nil
	if down != st.down {
		st = backendState{down: down, since: time.Now()}
		if down {
			st.err = err.Error()
			h.logger.Warn("backend down", "backend", b.String(), "err", err)
		} else {
			h.logger.Info("backend up", "backend", b.String())
		}
	}
	h.known[b] = st
}

// errBadGreeting is a backend that answered, but not with +OK.
var errBadGreeting = errors.New("no +OK greeting")

// check connects to b, reads its greeting and says QUIT.
func (h *health) check(ctx context.Context, b netip.AddrPort) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	c, err := h.dial(ctx, "tcp", b.String())
	if err != nil {
		return err
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	if h.proxy {
		// LOCAL: a connection of the proxy host itself, for health
		// checks; the backend keeps the real peer address.
		hdr := &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
		if _, err := hdr.WriteTo(c); err != nil {
			return err
		}
	}
	line, err := bufio.NewReaderSize(c, 512).ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading the greeting: %w", err)
	}
	if !strings.HasPrefix(line, "+OK") {
		return fmt.Errorf("%w: %q", errBadGreeting, strings.TrimSpace(line))
	}
	_, err = c.Write([]byte("QUIT\r\n"))
	return err
}
