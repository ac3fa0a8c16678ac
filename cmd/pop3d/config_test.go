package main

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pop3d/pop3d/maildir"
)

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	want := Config{
		PasswdFile:          "/etc/pop3d/passwd",
		Maildir:             "/var/mail/vhosts/%d/%n",
		CreateMaildir:       true,
		MarkRead:            true,
		DovecotUIDLFormat:   mustFormat(t, "%08Xu%08Xv"),
		TmpCleanup:          true,
		Listen:              []string{":110"},
		TLSMinVersion:       tls.VersionTLS12,
		IdleTimeout:         10 * time.Minute,
		LoginTimeout:        time.Minute,
		MaxConnections:      1000,
		MaxConnectionsPerIP: 50,
		AuthFailureDelay:    2 * time.Second,
		AuthCacheTTL:        15 * time.Minute,
		MaxAuthFailures:     3,
		BackendCheck:        5 * time.Second,
		BackendCheckProxy:   true,
		LogLevel:            slog.LevelInfo,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("DefaultConfig() = %+v\nwant %+v", c, want)
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name  string
		input string
		check func(t *testing.T, c Config)
	}{
		{"empty", "", func(t *testing.T, c Config) {
			if !reflect.DeepEqual(c, DefaultConfig()) {
				t.Errorf("empty file changed the defaults: %+v", c)
			}
		}},
		{"comments and blanks", "# comment\n\n   # indented comment\n\t\n", func(t *testing.T, c Config) {
			if !reflect.DeepEqual(c, DefaultConfig()) {
				t.Errorf("comments changed the defaults: %+v", c)
			}
		}},
		{"paths with spaces and hash", "passwd_file =  /etc/p#d/passwd  \nmaildir=/srv/mail/%d/%n/Maildir\n", func(t *testing.T, c Config) {
			if c.PasswdFile != "/etc/p#d/passwd" {
				t.Errorf("PasswdFile = %q", c.PasswdFile)
			}
			if c.Maildir != "/srv/mail/%d/%n/Maildir" {
				t.Errorf("Maildir = %q", c.Maildir)
			}
		}},
		{"CRLF and BOM", "\xef\xbb\xbfmark_read = no\r\ncreate_maildir = off\r\n", func(t *testing.T, c Config) {
			if c.MarkRead || c.CreateMaildir {
				t.Errorf("MarkRead=%v CreateMaildir=%v, want false", c.MarkRead, c.CreateMaildir)
			}
		}},
		{"booleans", "allow_insecure_auth = TRUE\nmark_read = 0\ncreate_maildir = On", func(t *testing.T, c Config) {
			if !c.AllowInsecureAuth || c.MarkRead || !c.CreateMaildir {
				t.Errorf("got %v %v %v", c.AllowInsecureAuth, c.MarkRead, c.CreateMaildir)
			}
		}},
		{"listen lists", "listen = 127.0.0.1:1110, [::1]:1110\nlisten_tls = :995,:pop3s", func(t *testing.T, c Config) {
			if !reflect.DeepEqual(c.Listen, []string{"127.0.0.1:1110", "[::1]:1110"}) {
				t.Errorf("Listen = %q", c.Listen)
			}
			if !reflect.DeepEqual(c.ListenTLS, []string{":995", ":pop3s"}) {
				t.Errorf("ListenTLS = %q", c.ListenTLS)
			}
		}},
		{"empty listen", "listen =", func(t *testing.T, c Config) {
			if len(c.Listen) != 0 {
				t.Errorf("Listen = %q, want none", c.Listen)
			}
		}},
		{"numbers and durations", "idle_timeout = 30m\nlogin_timeout = 20s\nmax_connections = 0\nmax_connections_per_ip=7\nauth_failure_delay = 500ms\nmax_auth_failures = 5", func(t *testing.T, c Config) {
			if c.IdleTimeout != 30*time.Minute || c.LoginTimeout != 20*time.Second || c.MaxConnections != 0 || c.MaxConnectionsPerIP != 7 ||
				c.AuthFailureDelay != 500*time.Millisecond || c.MaxAuthFailures != 5 {
				t.Errorf("got %+v", c)
			}
		}},
		{"proxy prefixes", "proxy_protocol_from = 10.0.0.0/8, 192.168.1.7, ::1, 2001:db8::1/48", func(t *testing.T, c Config) {
			want := []netip.Prefix{
				netip.MustParsePrefix("10.0.0.0/8"),
				netip.MustParsePrefix("192.168.1.7/32"),
				netip.MustParsePrefix("::1/128"),
				netip.MustParsePrefix("2001:db8::/48"),
			}
			if !reflect.DeepEqual(c.ProxyProtocolFrom, want) {
				t.Errorf("ProxyProtocolFrom = %v, want %v", c.ProxyProtocolFrom, want)
			}
		}},
		{"tls and log", "tls_cert = /c.pem\ntls_key = /k.pem\ntls_min_version = 1.3\nlog_level = DEBUG\nuser = pop3d\ngroup = mail", func(t *testing.T, c Config) {
			if c.TLSCert != "/c.pem" || c.TLSKey != "/k.pem" || c.TLSMinVersion != tls.VersionTLS13 ||
				c.LogLevel != slog.LevelDebug || c.User != "pop3d" || c.Group != "mail" {
				t.Errorf("got %+v", c)
			}
		}},
		{"value containing equals", "maildir = /srv/a=b/%u", func(t *testing.T, c Config) {
			if c.Maildir != "/srv/a=b/%u" {
				t.Errorf("Maildir = %q", c.Maildir)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			if err := ParseConfig(&c, "test.conf", strings.NewReader(tt.input)); err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []string // each error line, in order
	}{
		{"unknown key", "\nfoo = bar", []string{"x.conf:2: unknown key \"foo\""}},
		{"no equals", "listen :110", []string{"x.conf:1: expected key = value"}},
		{"missing key", " = 3", []string{"x.conf:1: missing key"}},
		{"duplicate", "listen = :1\n# c\nlisten = :2", []string{"x.conf:3: duplicate key \"listen\" (first set on line 1)"}},
		{"bad bool", "mark_read = maybe", []string{"x.conf:1: mark_read: \"maybe\" is not a boolean"}},
		{"trailing comment is a value", "mark_read = yes # comment", []string{"x.conf:1: mark_read: \"yes # comment\" is not a boolean (yes/no, true/false, on/off, 1/0) (a '#' after a value is part of the value, not a comment)"}},
		{"bad duration", "idle_timeout = 10", []string{"x.conf:1: idle_timeout: \"10\" is not a duration"}},
		{"negative duration", "idle_timeout = -1s", []string{"x.conf:1: idle_timeout: \"-1s\" is negative"}},
		{"negative int", "max_connections = -1", []string{"x.conf:1: max_connections:"}},
		{"huge int", "max_connections = 99999999999999", []string{"x.conf:1: max_connections:"}},
		{"bad listen", "listen = 110", []string{"x.conf:1: listen: \"110\" is not host:port"}},
		{"bad port", "listen = :99999", []string{"x.conf:1: listen: \":99999\": bad port"}},
		{"stray comma", "listen = :110,", []string{"x.conf:1: listen: empty element"}},
		{"bad cidr", "proxy_protocol_from = 10.0.0.0/33", []string{"x.conf:1: proxy_protocol_from:"}},
		{"bad ip", "proxy_protocol_from = example.com", []string{"x.conf:1: proxy_protocol_from:"}},
		{"bad tls version", "tls_min_version = 1.1", []string{"x.conf:1: tls_min_version:"}},
		{"bad log level", "log_level = loud", []string{"x.conf:1: log_level:"}},
		{"empty passwd_file", "passwd_file =", []string{"x.conf:1: passwd_file: must not be empty"}},
		{"control char", "maildir = /a\x01b", []string{"x.conf:1: maildir: control character"}},
		{"bad user", "user = a b", []string{"x.conf:1: user:"}},
		{"all reported", "a = 1\nb = 2\nmark_read = x", []string{"x.conf:1:", "x.conf:2:", "x.conf:3:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			err := ParseConfig(&c, "x.conf", strings.NewReader(tt.input))
			if err == nil {
				t.Fatal("ParseConfig succeeded, want an error")
			}
			lines := errorLines(err)
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d errors %q, want %d", len(lines), lines, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("error %d = %q, want prefix %q", i, lines[i], w)
				}
				var ce *ConfigError
				if !errors.As(err, &ce) {
					t.Errorf("error is not a *ConfigError: %T", err)
				}
			}
		})
	}
}

func TestParseConfigTooLarge(t *testing.T) {
	c := DefaultConfig()
	big := strings.Repeat("#", maxConfigSize+1)
	if err := ParseConfig(&c, "big", strings.NewReader(big)); err == nil {
		t.Fatal("a file over the size limit was accepted")
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.conf")
	if _, err := LoadConfig(missing, false); err != nil {
		t.Errorf("missing default file: %v, want no error", err)
	}
	if _, err := LoadConfig(missing, true); err == nil {
		t.Error("missing explicit file: no error")
	}
	c, err := LoadConfig(os.DevNull, true)
	if err != nil {
		t.Fatalf("/dev/null: %v", err)
	}
	if !reflect.DeepEqual(c, DefaultConfig()) {
		t.Error("/dev/null did not give the defaults")
	}
	good := filepath.Join(dir, "good.conf")
	if err := os.WriteFile(good, []byte("listen = 127.0.0.1:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = LoadConfig(good, true)
	if err != nil || !reflect.DeepEqual(c.Listen, []string{"127.0.0.1:1"}) {
		t.Errorf("LoadConfig(good) = %v, %v", c.Listen, err)
	}
	if _, err := LoadConfig(dir, true); err == nil {
		t.Error("a directory as config file: no error")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(c *Config)
		want string // "" = valid
	}{
		{"defaults", func(c *Config) {}, ""},
		{"cert without key", func(c *Config) { c.TLSCert = "/c" }, "tls_cert and tls_key must be set together"},
		{"key without cert", func(c *Config) { c.TLSKey = "/k" }, "tls_cert and tls_key must be set together"},
		{"listen_tls without tls", func(c *Config) { c.ListenTLS = []string{":995"} }, "listen_tls is set but"},
		{"listen_tls with tls", func(c *Config) { c.ListenTLS = []string{":995"}; c.TLSCert, c.TLSKey = "/c", "/k" }, ""},
		{"group without user", func(c *Config) { c.Group = "mail" }, "group is set but user is not"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mod(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	c := DefaultConfig()
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("defaults warn: %q", w)
	}
	c.IdleTimeout = time.Minute
	if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], "RFC 1939") {
		t.Errorf("idle_timeout 1m: warnings %q", w)
	}
	c = DefaultConfig()
	if c.LoginTimeout != time.Minute {
		t.Errorf("default login_timeout %s, want 1m (Courier's)", c.LoginTimeout)
	}
	c.LoginTimeout = 0
	if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], "login_timeout 0") {
		t.Errorf("login_timeout 0: warnings %q", w)
	}
}

func TestFlagNames(t *testing.T) {
	seen := make(map[string]bool)
	for _, k := range keys() {
		f := flagName(k.name)
		if strings.Contains(f, "_") || seen[f] {
			t.Errorf("bad or duplicate flag name %q", f)
		}
		seen[f] = true
		var c Config
		if err := k.set(&c, k.def); err != nil {
			t.Errorf("default of %s (%q) does not parse: %v", k.name, k.def, err)
		}
	}
	if flagName("passwd_file") != "passwd-file" {
		t.Errorf("flagName(passwd_file) = %q", flagName("passwd_file"))
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"", "\n", "#", "=", "a=b", "listen = :110", "listen = :110,\n", "listen=[::1]:110",
		"proxy_protocol_from = 10.0.0.0/8,::1", "idle_timeout = 1h\nidle_timeout = 2h",
		"mark_read = yes\r\n", "\xef\xbb\xbfuser = x", "maildir = /a/%d/%n", "max_connections = 0",
		"tls_min_version = 1.3", "log_level = warn", "x\x00 = y", "passwd_file = \xff",
		"login_delay = 300", "login_delay = 15m", "expire = never", "expire = 0", "apop = yes",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := DefaultConfig()
		err := ParseConfig(&c, "fuzz.conf", strings.NewReader(s))
		for _, line := range errorLines(err) {
			if !strings.HasPrefix(line, "fuzz.conf:") {
				t.Errorf("error without file:line: %q", line)
			}
		}
		if err != nil {
			return
		}
		if c.LoginDelay < 0 || c.Expire.Days < 0 || c.IdleTimeout < 0 || c.MaxConnections < 0 || c.MaxConnectionsPerIP < 0 || c.MaxAuthFailures < 0 || c.AuthFailureDelay < 0 {
			t.Errorf("negative value accepted: %+v", c)
		}
		if c.PasswdFile == "" || c.Maildir == "" {
			t.Errorf("empty required path accepted: %+v", c)
		}
	})
}

func mustFormat(t *testing.T, s string) maildir.DovecotFormat {
	t.Helper()
	f, err := maildir.ParseDovecotFormat(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
