package main

import (
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pop3d/pop3d/daemon"
)

// metrics is the Prometheus view of the daemon: a daemon.Observer for the
// engine's events, plus the backend's timings of password checks and
// mailbox opens. Every label value comes from a fixed list (never a user
// name: unbounded cardinality), and every series of a fixed label set
// exists from the start at 0, so that rate() and alerts see the first
// event.
type metrics struct {
	reg *prometheus.Registry

	connections   *prometheus.CounterVec // listener
	active        prometheus.Gauge
	refused       *prometheus.CounterVec // reason
	logins        *prometheus.CounterVec // result, mechanism
	authDuration  prometheus.Histogram
	openDuration  prometheus.Histogram
	mailboxSize   prometheus.Histogram
	commands      *prometheus.CounterVec // command, result
	retrieved     prometheus.Counter
	deleted       prometheus.Counter
	bytesSent     prometheus.Counter
	ended         *prometheus.CounterVec // how
	updateFailed  prometheus.Counter
	commitSeconds prometheus.Histogram

	// commandCounters holds the err and ok counter of each command name,
	// looked up without hashing label values; never changed after
	// newMetrics.
	commandCounters map[string][2]prometheus.Counter
}

var _ daemon.Observer = (*metrics)(nil)

// mailboxBuckets are the latency buckets of the mailbox operations (open
// at login, UPDATE), from a small Maildir to 100k messages on slow storage.
func mailboxBuckets() []float64 {
	return []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
}

// newMetrics registers every metric, the Go and process collectors and
// pop3d_build_info on a registry of its own.
func newMetrics() *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		reg: reg,
		connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pop3d_connections_total",
			Help: "Connections accepted, refused ones included, by listener.",
		}, []string{"listener"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pop3d_connections_active",
			Help: "Sessions running now.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pop3d_connections_refused_total",
			Help: "Connections turned away, by reason.",
		}, []string{"reason"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pop3d_logins_total",
			Help: "Login attempts by result (success, failure = bad credentials, refused = not allowed without TLS, in_use, error = server fault) and mechanism.",
		}, []string{"result", "mechanism"}),
		authDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pop3d_auth_duration_seconds",
			Help:    "Time spent verifying a password.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		openDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pop3d_mailbox_open_seconds",
			Help:    "Time spent opening a mailbox at login: listing it, or reading the header of its listing record.",
			Buckets: mailboxBuckets(),
		}),
		mailboxSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pop3d_mailbox_messages",
			Help:    "Messages in the maildrop at login.",
			Buckets: []float64{0, 1, 10, 100, 1000, 10000, 100000},
		}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pop3d_commands_total",
			Help: "Commands answered, by command (UNKNOWN for any other keyword) and result.",
		}, []string{"command", "result"}),
		retrieved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pop3d_messages_retrieved_total",
			Help: "Messages sent completely in answer to RETR.",
		}),
		deleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pop3d_messages_deleted_total",
			Help: "Messages removed by a successful UPDATE (QUIT after DELE).",
		}),
		bytesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pop3d_bytes_sent_total",
			Help: "Octets written to clients.",
		}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pop3d_sessions_ended_total",
			Help: "Sessions ended, by how: quit, timeout, dropped, shutdown, kicked, refused, closed (too many bad commands or failed logins), error.",
		}, []string{"how"}),
		updateFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pop3d_update_failures_total",
			Help: "UPDATE states (QUIT) whose deletions did not all succeed.",
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pop3d_update_duration_seconds",
			Help:    "Time spent in the UPDATE state: removing deleted and marking retrieved messages.",
			Buckets: mailboxBuckets(),
		}),
	}
	listenerLabels := []string{"pop3", "pop3s"}
	refuseLabels := []daemon.RefuseReason{daemon.RefuseMaxConnections, daemon.RefuseMaxPerIP,
		daemon.RefuseProxyHeader, daemon.RefuseTLSHandshake}
	loginLabels := []daemon.LoginResult{daemon.LoginSuccess, daemon.LoginFailure, daemon.LoginRefused,
		daemon.LoginInUse, daemon.LoginError}
	mechLabels := []string{"user", "plain", "apop"}
	endLabels := []daemon.EndReason{daemon.EndQuit, daemon.EndTimeout, daemon.EndDropped, daemon.EndShutdown,
		daemon.EndKicked, daemon.EndRefused, daemon.EndClosed, daemon.EndError}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "pop3d_build_info",
		Help:        "Always 1; the labels say which pop3d runs.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	buildInfo.Set(1)
	reg.MustRegister(m.connections, m.active, m.refused, m.logins, m.authDuration, m.openDuration,
		m.mailboxSize, m.commands, m.retrieved, m.deleted, m.bytesSent, m.ended, m.updateFailed,
		m.commitSeconds, buildInfo,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, l := range listenerLabels {
		m.connections.WithLabelValues(l)
	}
	for _, r := range refuseLabels {
		m.refused.WithLabelValues(string(r))
	}
	for _, r := range loginLabels {
		for _, mech := range mechLabels {
			m.logins.WithLabelValues(string(r), mech)
		}
	}
	m.commandCounters = make(map[string][2]prometheus.Counter)
	for _, c := range daemon.CommandNames() {
		m.commandCounters[c] = [2]prometheus.Counter{m.commands.WithLabelValues(c, "err"), m.commands.WithLabelValues(c, "ok")}
	}
	for _, h := range endLabels {
		m.ended.WithLabelValues(string(h))
	}
	return m
}

// Connect implements daemon.Observer.
func (m *metrics) Connect(s *daemon.Session) {
	m.connections.WithLabelValues(s.Listener.String()).Inc()
	m.active.Inc()
}

// Refuse implements daemon.Observer. A connection refused before its
// session started was not counted by Connect.
func (m *metrics) Refuse(s *daemon.Session, r daemon.Refusal) {
	if s == nil {
		m.connections.WithLabelValues(r.Listener.String()).Inc()
	}
	m.refused.WithLabelValues(string(r.Reason)).Inc()
}

// Login implements daemon.Observer.
func (m *metrics) Login(_ *daemon.Session, l daemon.Login) {
	mech := strings.ToLower(l.Mech)
	switch mech {
	case "user", "plain", "apop":
	default:
		mech = "other"
	}
	m.logins.WithLabelValues(string(l.Result), mech).Inc()
	if l.Result == daemon.LoginSuccess {
		m.mailboxSize.Observe(float64(l.Messages))
	}
}

// Command implements daemon.Observer.
func (m *metrics) Command(_ *daemon.Session, c daemon.Command) {
	ok := 0
	if c.OK {
		ok = 1
		if c.Name == "RETR" {
			m.retrieved.Inc()
		}
	}
	if cs, found := m.commandCounters[c.Name]; found {
		cs[ok].Inc()
	} else {
		m.commands.WithLabelValues(c.Name, [2]string{"err", "ok"}[ok]).Inc()
	}
	if c.Octets > 0 {
		m.bytesSent.Add(float64(c.Octets))
	}
}

// Update implements daemon.Observer. A failed UPDATE may have removed some
// of the messages; they are not counted, since which is not known here.
func (m *metrics) Update(_ *daemon.Session, u daemon.Update) {
	m.commitSeconds.Observe(u.Duration.Seconds())
	if u.Err != nil {
		m.updateFailed.Inc()
		return
	}
	m.deleted.Add(float64(u.Deleted))
}

// Disconnect implements daemon.Observer.
func (m *metrics) Disconnect(_ *daemon.Session, d daemon.Disconnect) {
	m.active.Dec()
	m.bytesSent.Add(float64(d.Octets))
	m.ended.WithLabelValues(string(d.How)).Inc()
}

// authTimed records a password verification; called by the backend.
func (m *metrics) authTimed(d time.Duration) { m.authDuration.Observe(d.Seconds()) }

// openTimed records a mailbox open; called by the backend.
func (m *metrics) openTimed(d time.Duration) { m.openDuration.Observe(d.Seconds()) }
