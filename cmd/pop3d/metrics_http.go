package main

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Timeouts of the metrics HTTP server: scrapes are small and local.
const (
	metricsReadTimeout  = 10 * time.Second
	metricsWriteTimeout = 30 * time.Second
	metricsIdleTimeout  = time.Minute
)

// readiness is what /healthz says: 503 until pop3d serves, 200 while it
// does, 503 again once it is stopping, so that a load balancer sends no
// new clients to a server on its way out.
type readiness struct {
	serving atomic.Bool
}

func (h *readiness) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !h.serving.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "not serving\n")
		return
	}
	io.WriteString(w, "ok\n")
}

// newMetricsServer returns the HTTP server of /metrics and /healthz.
func newMetricsServer(m *metrics, h *readiness, logger *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(m.reg,
		promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
			ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelError),
			Registry: m.reg,
		})))
	mux.Handle("GET /healthz", h)
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: metricsReadTimeout,
		ReadTimeout:       metricsReadTimeout,
		WriteTimeout:      metricsWriteTimeout,
		IdleTimeout:       metricsIdleTimeout,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
}

// serveMetrics serves srv on each listener until srv is closed.
func serveMetrics(srv *http.Server, ls []net.Listener, logger *slog.Logger) {
	for _, l := range ls {
		go func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("metrics server failed", "addr", l.Addr().String(), "err", err)
			}
		}()
	}
}
