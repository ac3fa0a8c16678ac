package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pop3d/pop3d/daemon"
	"github.com/pop3d/pop3d/htpasswd"
	"github.com/pop3d/pop3d/maildir"
)

// shutdownGrace is how long SIGTERM waits for sessions in UPDATE to finish
// before closing everything. Other sessions are told and closed within about
// a second whatever this is, so it only bounds a QUIT's deletions in
// progress (many unlinks on NFS can take a while): cutting those short
// loses no mail but leaves the client without its +OK, to fetch again what
// it already has. It stays under the unit's TimeoutStopSec (30 s).
const shutdownGrace = 25 * time.Second

// state is the running daemon: what SIGHUP reloads and SIGTERM stops.
type state struct {
	opts      *options
	cfg       Config
	logger    *slog.Logger
	logLevel  *slog.LevelVar
	notify    notifier
	passwd    *htpasswd.File       // nil: users from POP3D_AUTH only
	static    *htpasswd.Static     // users from POP3D_AUTH; nil: none
	now       func() time.Time     // the clock of LOGIN-DELAY and EXPIRE
	certs     *daemon.CertReloader // nil without TLS
	tlsNeeded bool                 // an implicit-TLS socket is served
	backend   *backend
	server    *daemon.Server
	// pool lends large snapshots their message arrays, across reloads
	// (maildir.SnapshotPool).
	pool      *maildir.SnapshotPool
	listeners []listener

	observer  daemon.Observer // for the engine: metrics and registry; nil when both are off
	metrics   *metrics        // nil without a metrics socket
	metricsLs []net.Listener
	httpSrv   *http.Server
	readiness readiness      // what /healthz says
	control   *controlServer // nil without a control socket
	// The auth_http server (authhttp.go), when auth_http_listen is set.
	authListener  net.Listener
	authServer    *http.Server
	health        *health
	checkInterval atomic.Int64 // backend_check_interval, for the health loop
	stopHealth    context.CancelFunc
}

// serve runs the daemon until SIGTERM or SIGINT and returns the exit status.
func serve(opts *options, cfg Config, stderr io.Writer) int {
	level := new(slog.LevelVar)
	level.Set(cfg.LogLevel)
	journal := false
	if f, ok := stderr.(*os.File); ok {
		journal = isJournal(f, os.Getenv("JOURNAL_STREAM"))
	}
	logger := newLogger(stderr, level, journal)
	st := &state{opts: opts, cfg: cfg, logger: logger, logLevel: level, notify: notifier{logger},
		pool: maildir.NewSnapshotPool()}
	// Before anything else, so that an early SIGHUP (whose default action
	// is to terminate) waits for the loop instead.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	if err := st.start(); err != nil {
		fmt.Fprintf(stderr, "pop3d: %v\n", err)
		return exitFail
	}
	return st.run(sigs)
}

// start does everything that may need root (binding, reading the TLS key
// and the password file), then drops privileges.
func (st *state) start() error {
	cfg := &st.cfg
	for _, w := range append(cfg.Warnings(), envWarnings(st.opts.env)...) {
		st.logger.Warn("config: " + w)
	}
	if err := maildir.CheckTemplate(cfg.Maildir); err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	plan, warning, err := planDrop(syscall.Geteuid(), cfg.User, cfg.Group, osLookup())
	if err != nil {
		return err
	}
	if warning != "" {
		st.logger.Warn(warning)
	}
	if cfg.TLSCert != "" {
		st.certs, err = daemon.NewCertReloader(cfg.TLSCert, cfg.TLSKey, st.logger)
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
	}
	if st.now, err = clockFromEnv(st.opts.env); err != nil {
		return err
	}
	if st.static, err = staticUsers(st.opts.env); err != nil {
		return err
	}
	if st.static != nil {
		st.logger.Info("users from the environment", "variable", envAuth, "users", st.static.Len())
	}
	if !passwdOptional(cfg, st.static) {
		st.passwd, err = openPasswd(cfg, st.logger)
		if err != nil {
			return fmt.Errorf("passwd_file: %w", err)
		}
	}
	if cfg.AuthHTTPListen != "" {
		st.authListener, err = net.Listen("tcp", cfg.AuthHTTPListen)
		if err != nil {
			return fmt.Errorf("auth_http_listen: %w", err)
		}
	}
	st.listeners, st.metricsLs, err = openListeners(cfg, st.certs != nil, st.authListener != nil, st.logger)
	if err != nil {
		st.closeAuthListener()
		return err
	}
	// Like the listeners, before dropping privileges: /run/pop3d may be
	// root's when pop3d starts as root.
	st.openControl(cfg)
	for _, l := range st.listeners {
		if l.mode == daemon.ModeTLS {
			st.tlsNeeded = true
		}
	}
	if plan != nil {
		if err := dropPrivileges(plan); err != nil {
			closeListeners(st.listeners)
			st.closeAuthListener()
			st.closeObservers()
			return fmt.Errorf("dropping privileges to %s: %w", plan.user, err)
		}
		st.logger.Info("dropped privileges", "user", plan.user, "uid", plan.uid, "gid", plan.gid)
	}
	st.backend = newBackend(st.backendSettings(cfg), st.logger)
	var obs observers
	if len(st.metricsLs) > 0 {
		st.metrics = newMetrics()
		st.backend.timer = st.metrics
		st.httpSrv = newMetricsServer(st.metrics, &st.readiness, st.logger)
		obs = append(obs, st.metrics)
	}
	if st.control != nil {
		obs = append(obs, st.control.reg)
	}
	st.observer = engineObserver(obs)
	st.server = daemon.New(st.backend, st.daemonConfig(cfg), st.logger)
	if st.authListener != nil {
		st.health = newHealth(st.logger, cfg.BackendCheckProxy)
		st.health.watch(cfg.Backends)
		st.checkInterval.Store(int64(cfg.BackendCheck))
		st.authServer = authHTTPServer(&authHTTP{backend: st.backend, health: st.health, penalty: st.server, logger: st.logger}, st.logger)
	}
	return nil
}

// openControl creates the control socket. Failing that is logged, not
// fatal: POP3 service matters more than `pop3d who`.
func (st *state) openControl(cfg *Config) {
	if cfg.ControlSocket == "" {
		return
	}
	l, err := listenControl(cfg.ControlSocket)
	if err != nil {
		// The default lives in the unit's RuntimeDirectory=; a pop3d
		// started by hand without that directory is not misconfigured,
		// so that case is worth a line, not a warning every start.
		if cfg.ControlSocket == DefaultConfig().ControlSocket && errors.Is(err, fs.ErrNotExist) {
			st.logger.Info("control socket off: pop3d who and pop3d kick will not work", "err", err)
			return
		}
		st.logger.Warn("control socket off: pop3d who and pop3d kick will not work", "err", err)
		return
	}
	st.control = &controlServer{l: l, reg: newRegistry(), logger: st.logger}
}

// closeObservers closes the metrics and control sockets.
func (st *state) closeObservers() {
	for _, l := range st.metricsLs {
		l.Close()
	}
	if st.control != nil {
		st.control.l.Close()
	}
}

// closeAuthListener closes the auth_http socket, if any.
func (st *state) closeAuthListener() {
	if st.authListener != nil {
		st.authListener.Close()
	}
}

func (st *state) backendSettings(cfg *Config) backendSettings {
	s := backendSettings{
		static:   st.static,
		template: cfg.Maildir,
		opts: maildir.Options{Create: cfg.CreateMaildir, MarkRead: cfg.MarkRead, Logger: st.logger,
			Legacy: cfg.UIDLLegacy, DovecotFormat: cfg.DovecotUIDLFormat, KeepTmp: !cfg.TmpCleanup,
			Pool: st.pool},
		global: globalPolicy{loginDelay: cfg.LoginDelay, expire: cfg.Expire},
		now:    st.now,
		auth: authConfig{
			place:       placement{backends: cfg.Backends},
			maxFailures: cfg.MaxAuthFailures,
		},
	}
	if st.passwd != nil {
		s.passwd = st.passwd
	}
	return s
}

// openPasswd opens the password file with pop3d's checks of the extra
// fields (policy.go).
func openPasswd(cfg *Config, logger *slog.Logger) (*htpasswd.File, error) {
	return htpasswd.OpenWith(cfg.PasswdFile, htpasswd.Options{Logger: logger, CheckExtra: checkExtra, AuthCacheTTL: cfg.AuthCacheTTL})
}

// daemonConfig translates the config for the engine.
func (st *state) daemonConfig(cfg *Config) daemon.Config {
	dc := daemon.DefaultConfig()
	if st.certs != nil {
		dc.TLSConfig = &tls.Config{
			MinVersion:     cfg.TLSMinVersion,
			GetCertificate: st.certs.GetCertificate,
		}
	}
	dc.AllowInsecureAuth = cfg.AllowInsecureAuth
	dc.IdleTimeout = cfg.IdleTimeout
	dc.LoginTimeout = cfg.LoginTimeout
	dc.MaxConnections = cfg.MaxConnections
	dc.MaxConnectionsPerIP = cfg.MaxConnectionsPerIP
	dc.AuthFailureDelay = cfg.AuthFailureDelay
	dc.MaxAuthFailures = cfg.MaxAuthFailures
	dc.ProxyProtocolFrom = cfg.ProxyProtocolFrom
	dc.TLSOffloadFrom = cfg.TLSOffloadFrom
	dc.Implementation = "pop3d-" + version
	dc.Observer = st.observer
	dc.LoginDelay = cfg.LoginDelay
	dc.Expire = cfg.Expire
	dc.APOP = cfg.APOP
	dc.Now = st.now
	if st.backend != nil {
		dc.PerUserPolicy = st.backend.perUser
	}
	return dc
}

// run serves until a stop signal, reloading on SIGHUP.
func (st *state) run(sigs <-chan os.Signal) int {
	errc := make(chan error, len(st.listeners)+1)
	addrs := make([]string, 0, len(st.listeners))
	for _, l := range st.listeners {
		addrs = append(addrs, fmt.Sprintf("%s=%s", l.name, l.Addr()))
		go func(l listener) { errc <- st.server.Serve(l.Listener, l.mode) }(l)
	}
	if st.httpSrv != nil {
		serveMetrics(st.httpSrv, st.metricsLs, st.logger)
		for _, l := range st.metricsLs {
			addrs = append(addrs, "metrics="+l.Addr().String())
		}
	}
	if st.control != nil {
		go st.control.serve()
		addrs = append(addrs, "control="+st.control.l.Addr().String())
	}
	st.readiness.serving.Store(true)
	if st.authServer != nil {
		addrs = append(addrs, "auth_http="+st.authListener.Addr().String())
		ctx, cancel := context.WithCancel(context.Background())
		st.stopHealth = cancel
		go st.health.run(ctx, func() time.Duration { return time.Duration(st.checkInterval.Load()) })
		go func() {
			err := st.authServer.Serve(st.authListener)
			if errors.Is(err, http.ErrServerClosed) {
				err = daemon.ErrServerClosed
			}
			errc <- fmt.Errorf("auth_http: %w", err)
		}()
	}
	st.logger.Info("pop3d started", "version", version, "listeners", strings.Join(addrs, ","), "tls", st.certs != nil)
	st.notify.ready(st.status())

	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				st.reload()
				continue
			}
			st.logger.Info("shutting down", "signal", sig.String())
			st.shutdown()
			st.logger.Info("stopped")
			return exitOK
		case err := <-errc:
			if errors.Is(err, daemon.ErrServerClosed) {
				continue
			}
			st.logger.Error("listener failed, shutting down", "err", err)
			st.shutdown()
			return exitFail
		}
	}
}

func (st *state) shutdown() {
	st.notify.stopping()
	st.readiness.serving.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if st.authServer != nil {
		st.stopHealth()
		// Answers in progress (a failure delay at most) finish first.
		go st.authServer.Shutdown(ctx)
	}
	if err := st.server.Shutdown(ctx); err != nil {
		st.logger.Warn("shutdown: sessions closed forcibly", "err", err)
	}
	// /metrics and /healthz answered until the sessions were gone.
	if st.httpSrv != nil {
		hctx, hcancel := context.WithTimeout(context.Background(), time.Second)
		defer hcancel()
		st.httpSrv.Shutdown(hctx)
	}
	if st.control != nil {
		st.control.l.Close()
	}
	if st.authServer != nil {
		st.authServer.Shutdown(ctx)
	}
}

func (st *state) status() string {
	return fmt.Sprintf("serving %d socket(s)", len(st.listeners))
}
