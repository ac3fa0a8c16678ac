package main

import (
	"slices"

	"github.com/pop3d/pop3d/daemon"
)

// reload is SIGHUP: re-read the config file, the password file and the
// certificate, and apply them to connections accepted from now on. Whatever
// is invalid keeps its old setting and is logged; sessions running keep
// what they started with.
func (st *state) reload() {
	st.notify.reloading()
	defer func() { st.notify.ready(st.status()) }()
	st.logger.Info("reloading")

	cfg, err := st.opts.load()
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		st.logger.Error("reload: config invalid, keeping the old settings", "err", err)
		st.reloadFiles()
		return
	}
	old := st.cfg
	if !slices.Equal(cfg.Listen, old.Listen) || !slices.Equal(cfg.ListenTLS, old.ListenTLS) ||
		cfg.User != old.User || cfg.Group != old.Group || cfg.AuthHTTPListen != old.AuthHTTPListen {
		st.logger.Warn("reload: listen, listen_tls, auth_http_listen, user and group changes need a restart; keeping the old ones")
		cfg.Listen, cfg.ListenTLS, cfg.User, cfg.Group = old.Listen, old.ListenTLS, old.User, old.Group
		cfg.AuthHTTPListen = old.AuthHTTPListen
	}
	for _, w := range cfg.Warnings() {
		st.logger.Warn("config: " + w)
	}

	if cfg.PasswdFile != old.PasswdFile && !passwdOptional(&cfg, st.static) {
		f, err := openPasswd(&cfg, st.logger)
		if err != nil {
			st.logger.Error("reload: new passwd_file unusable, keeping the old one", "passwd_file", old.PasswdFile, "err", err)
			cfg.PasswdFile = old.PasswdFile
			st.reloadPasswd()
		} else {
			st.passwd = f
		}
	} else {
		st.reloadPasswd()
	}
	if st.passwd != nil {
		st.passwd.SetAuthCacheTTL(cfg.AuthCacheTTL)
	}

	if cfg.TLSCert != old.TLSCert || cfg.TLSKey != old.TLSKey {
		st.switchCerts(&cfg, &old)
	} else {
		st.reloadCerts()
	}

	st.cfg = cfg
	st.logLevel.Set(cfg.LogLevel)
	st.backend.set(st.backendSettings(&cfg))
	st.server.SetConfig(st.daemonConfig(&cfg))
	if st.health != nil {
		st.health.watch(cfg.Backends)
		st.checkInterval.Store(int64(cfg.BackendCheck))
	}
	args := []any{"tls", st.certs != nil}
	if st.passwd != nil {
		// Entries survive a reload; those of users whose hash line changed
		// are never hit again and age out (or are evicted).
		n, valid := st.passwd.AuthCacheStats()
		args = append(args, "auth_cache_entries", n, "auth_cache_valid", valid)
	}
	st.logger.Info("reloaded", args...)
}

// switchCerts follows a change of tls_cert/tls_key, keeping the old pair in
// cfg when the new one is unusable.
func (st *state) switchCerts(cfg, old *Config) {
	if cfg.TLSCert == "" {
		if st.tlsNeeded {
			st.logger.Error("reload: implicit-TLS sockets need tls_cert and tls_key; keeping the old certificate")
			cfg.TLSCert, cfg.TLSKey = old.TLSCert, old.TLSKey
			st.reloadCerts()
			return
		}
		st.certs = nil
		return
	}
	r, err := daemon.NewCertReloader(cfg.TLSCert, cfg.TLSKey, st.logger)
	if err != nil {
		st.logger.Error("reload: new certificate unusable, keeping the old one", "tls_cert", cfg.TLSCert, "err", err)
		cfg.TLSCert, cfg.TLSKey = old.TLSCert, old.TLSKey
		st.reloadCerts()
		return
	}
	st.certs = r
}

// reloadFiles re-reads the password file and certificate of the current
// config.
func (st *state) reloadFiles() {
	st.reloadPasswd()
	st.reloadCerts()
}

func (st *state) reloadPasswd() {
	if st.passwd == nil {
		return
	}
	if err := st.passwd.Reload(); err != nil {
		st.logger.Error("reload: password file unreadable, keeping the last good copy", "passwd_file", st.cfg.PasswdFile, "err", err)
	}
}

func (st *state) reloadCerts() {
	if st.certs == nil {
		return
	}
	if err := st.certs.Reload(); err != nil {
		st.logger.Error("reload: certificate unusable, keeping the old one", "tls_cert", st.cfg.TLSCert, "err", err)
	}
}
