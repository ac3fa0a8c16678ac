package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pop3d/pop3d/daemon"
	"golang.org/x/crypto/bcrypt"
)

// reloadFixture is a started (not serving) daemon state with a config file
// the test rewrites before calling reload.
type reloadFixture struct {
	st   *state
	conf string
	logs *syncBuffer
	dir  string
	cert string
	key  string
	pw   string
}

func newReloadFixture(t *testing.T, extra string) *reloadFixture {
	t.Helper()
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("LISTEN_FDS", "")
	dir := t.TempDir()
	fx := &reloadFixture{dir: dir, conf: filepath.Join(dir, "pop3d.conf"), logs: &syncBuffer{}}
	fx.cert, fx.key = writeCert(t, dir)
	fx.pw = filepath.Join(dir, "passwd")
	if err := os.WriteFile(fx.pw, []byte("demo:"+shaHash("demo")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	makeMaildir(t, filepath.Join(dir, "mail", "demo"), "a\n")
	fx.write(t, extra)
	opts, err := parseArgs([]string{"-config", fx.conf}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := opts.load()
	if err != nil {
		t.Fatal(err)
	}
	level := new(slog.LevelVar)
	logger := newLogger(fx.logs, level, false)
	fx.st = &state{opts: opts, cfg: cfg, logger: logger, logLevel: level, notify: notifier{logger}}
	if err := fx.st.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		closeListeners(fx.st.listeners)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		fx.st.server.Shutdown(ctx)
	})
	return fx
}

// write sets the config file to the base settings plus extra lines.
func (fx *reloadFixture) write(t *testing.T, extra string) {
	t.Helper()
	base := "passwd_file = " + fx.pw + "\nmaildir = " + fx.dir + "/mail/%n\nlisten = 127.0.0.1:0\n" +
		"tls_cert = " + fx.cert + "\ntls_key = " + fx.key + "\n"
	if err := os.WriteFile(fx.conf, []byte(base+extra), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (fx *reloadFixture) login(user, pass string) error {
	mb, err := fx.st.backend.Login(context.Background(), user, pass, loopbackInfo)
	if err == nil {
		mb.Close()
	}
	return err
}

func TestReloadInvalidConfigKeepsOld(t *testing.T) {
	fx := newReloadFixture(t, "idle_timeout = 20m\n")
	old := fx.st.cfg
	fx.write(t, "idle_timeout = 30m\nnonsense\n")
	fx.st.reload()
	if !reflect.DeepEqual(fx.st.cfg, old) {
		t.Errorf("config changed by an invalid file: %+v", fx.st.cfg)
	}
	if !strings.Contains(fx.logs.String(), "config invalid") {
		t.Errorf("not logged:\n%s", fx.logs.String())
	}
}

func TestReloadApplies(t *testing.T) {
	fx := newReloadFixture(t, "")
	if err := fx.login("demo", "demo"); err != nil {
		t.Fatalf("login before reload: %v", err)
	}
	// New password file, new template, new log level, a listen change.
	pw2 := filepath.Join(fx.dir, "passwd2")
	if err := os.WriteFile(pw2, []byte("other:"+shaHash("pw")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	makeMaildir(t, filepath.Join(fx.dir, "mail2", "other"))
	if err := os.WriteFile(fx.conf, []byte("passwd_file = "+pw2+"\nmaildir = "+fx.dir+"/mail2/%n\nlisten = 127.0.0.1:1\n"+
		"tls_cert = "+fx.cert+"\ntls_key = "+fx.key+"\nlog_level = debug\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fx.st.reload()
	if fx.st.cfg.PasswdFile != pw2 || fx.st.cfg.Maildir != fx.dir+"/mail2/%n" {
		t.Errorf("not applied: %+v", fx.st.cfg)
	}
	if fx.st.logLevel.Level() != slog.LevelDebug {
		t.Errorf("log level %v, want debug", fx.st.logLevel.Level())
	}
	if !reflect.DeepEqual(fx.st.cfg.Listen, []string{"127.0.0.1:0"}) || !strings.Contains(fx.logs.String(), "need a restart") {
		t.Errorf("listen change: Listen=%q, log:\n%s", fx.st.cfg.Listen, fx.logs.String())
	}
	if err := fx.login("other", "pw"); err != nil {
		t.Errorf("login with the new password file: %v", err)
	}
	if daemon.CodeOf(fx.login("demo", "demo")) != daemon.CodeAuth {
		t.Error("user of the old password file can still log in")
	}
}

func TestReloadBadNewPasswdFileKeepsOld(t *testing.T) {
	fx := newReloadFixture(t, "")
	if err := os.WriteFile(fx.conf, []byte("passwd_file = "+fx.dir+"/missing\nmaildir = "+fx.dir+"/mail/%n\nlisten = 127.0.0.1:0\n"+
		"tls_cert = "+fx.cert+"\ntls_key = "+fx.key+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fx.st.reload()
	if fx.st.cfg.PasswdFile != fx.pw {
		t.Errorf("PasswdFile = %q, want the old %q", fx.st.cfg.PasswdFile, fx.pw)
	}
	if err := fx.login("demo", "demo"); err != nil {
		t.Errorf("login after failed switch: %v", err)
	}
}

func TestReloadCertificates(t *testing.T) {
	t.Run("bad new pair keeps the old", func(t *testing.T) {
		fx := newReloadFixture(t, "")
		certs := fx.st.certs
		fx.write(t, "")
		// Swap cert and key: unusable.
		data, _ := os.ReadFile(fx.conf)
		swapped := strings.NewReplacer("tls_cert = "+fx.cert, "tls_cert = "+fx.key, "tls_key = "+fx.key, "tls_key = "+fx.cert).Replace(string(data))
		os.WriteFile(fx.conf, []byte(swapped), 0o644)
		fx.st.reload()
		if fx.st.certs != certs || fx.st.cfg.TLSCert != fx.cert {
			t.Errorf("certificate replaced by an unusable pair (cert %q)", fx.st.cfg.TLSCert)
		}
	})
	t.Run("TLS removed with only plain sockets", func(t *testing.T) {
		fx := newReloadFixture(t, "")
		os.WriteFile(fx.conf, []byte("passwd_file = "+fx.pw+"\nmaildir = "+fx.dir+"/mail/%n\nlisten = 127.0.0.1:0\n"), 0o644)
		fx.st.reload()
		if fx.st.certs != nil || fx.st.daemonConfig(&fx.st.cfg).TLSConfig != nil {
			t.Error("TLS still configured after removing tls_cert/tls_key")
		}
	})
	t.Run("TLS kept while implicit-TLS sockets exist", func(t *testing.T) {
		fx := newReloadFixture(t, "listen_tls = 127.0.0.1:0\n")
		if !fx.st.tlsNeeded {
			t.Fatal("no implicit-TLS listener")
		}
		os.WriteFile(fx.conf, []byte("passwd_file = "+fx.pw+"\nmaildir = "+fx.dir+"/mail/%n\nlisten = 127.0.0.1:0\n"), 0o644)
		fx.st.reload()
		if fx.st.certs == nil {
			t.Error("TLS dropped although pop3s sockets are served")
		}
	})
	t.Run("min version applied", func(t *testing.T) {
		fx := newReloadFixture(t, "")
		fx.write(t, "tls_min_version = 1.3\n")
		fx.st.reload()
		if v := fx.st.daemonConfig(&fx.st.cfg).TLSConfig.MinVersion; v != 0x0304 {
			t.Errorf("MinVersion %#x, want TLS 1.3", v)
		}
	})
}

// TestReloadAuthCache: a bcrypt user's verified password is counted in the
// reload summary; a reload that changes the line locks the old password
// out at once; auth_cache_ttl = 0 on reload empties the cache.
func TestReloadAuthCache(t *testing.T) {
	fx := newReloadFixture(t, "")
	h1, _ := bcrypt.GenerateFromPassword([]byte("old"), bcrypt.MinCost)
	if err := os.WriteFile(fx.pw, []byte("demo:"+string(h1)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fx.st.reload()
	for range 2 {
		if err := fx.login("demo", "old"); err != nil {
			t.Fatalf("login: %v", err)
		}
	}
	fx.st.reload()
	if !strings.Contains(fx.logs.String(), "auth_cache_entries=1 auth_cache_valid=1") {
		t.Errorf("reload summary without the cache count:\n%s", fx.logs.String())
	}
	h2, _ := bcrypt.GenerateFromPassword([]byte("new"), bcrypt.MinCost)
	replace := filepath.Join(fx.dir, "passwd.new")
	if err := os.WriteFile(replace, []byte("demo:"+string(h2)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(replace, fx.pw); err != nil {
		t.Fatal(err)
	}
	fx.st.reload()
	if daemon.CodeOf(fx.login("demo", "old")) != daemon.CodeAuth {
		t.Error("the old password still logs in after the line changed")
	}
	if err := fx.login("demo", "new"); err != nil {
		t.Errorf("new password: %v", err)
	}
	fx.write(t, "auth_cache_ttl = 0\n")
	fx.st.reload()
	if n, _ := fx.st.passwd.AuthCacheStats(); n != 0 {
		t.Errorf("auth_cache_ttl = 0: %d entries left", n)
	}
}
