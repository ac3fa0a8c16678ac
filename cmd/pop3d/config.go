package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pop3d/pop3d/daemon"
	"github.com/pop3d/pop3d/internal/regfile"
	"github.com/pop3d/pop3d/maildir"
)

// defaultConfigPath is read when -config is not given; its absence is fine.
const defaultConfigPath = "/etc/pop3d/pop3d.conf"

// maxConfigSize bounds how much of a config file is read, so that
// `-config /dev/zero` fails instead of filling memory.
const maxConfigSize = 1 << 20

// rfcIdleTimeout is the RFC 1939 minimum for the autologout timer.
const rfcIdleTimeout = 10 * time.Minute

// Config is the parsed configuration file plus command-line overrides.
type Config struct {
	PasswdFile          string
	Maildir             string
	CreateMaildir       bool
	MarkRead            bool
	UIDLLegacy          maildir.Legacy
	DovecotUIDLFormat   maildir.DovecotFormat
	TmpCleanup          bool
	Listen              []string
	ListenTLS           []string
	TLSCert             string
	TLSKey              string
	TLSMinVersion       uint16
	AllowInsecureAuth   bool
	IdleTimeout         time.Duration
	LoginTimeout        time.Duration
	MaxConnections      int
	MaxConnectionsPerIP int
	AuthFailureDelay    time.Duration
	AuthCacheTTL        time.Duration
	MaxAuthFailures     int
	ProxyProtocolFrom   []netip.Prefix
	TLSOffloadFrom      []netip.Prefix
	AuthHTTPListen      string
	Backends            []netip.AddrPort
	BackendCheck        time.Duration
	BackendCheckProxy   bool
	LoginDelay          time.Duration
	Expire              daemon.Expire
	APOP                bool
	User                string
	Group               string
	LogLevel            slog.Level
	MetricsListen       string // "": no metrics HTTP server (unless socket-activated)
	ControlSocket       string // "": no control socket
}

// key describes one configuration key: its default (in file syntax, so
// that defaults go through the same parser as everything else) and how to
// store a value.
type key struct {
	name   string
	def    string
	help   string
	isBool bool
	set    func(c *Config, v string) error
}

// keys is every configuration key, in documentation order. It is a function
// rather than a variable so that no package-level state exists.
func keys() []key {
	return []key{
		{name: "passwd_file", def: "/etc/pop3d/passwd", help: "htpasswd-style password file",
			set: func(c *Config, v string) error { return setPath(&c.PasswdFile, v, true) }},
		{name: "maildir", def: "/var/mail/vhosts/%d/%n", help: "Maildir template: %u user, %n local part, %d domain, %% percent",
			set: func(c *Config, v string) error { return setPath(&c.Maildir, v, true) }},
		{name: "create_maildir", def: "yes", help: "create a missing Maildir at login", isBool: true,
			set: func(c *Config, v string) error { return setBool(&c.CreateMaildir, v) }},
		{name: "mark_read", def: "yes", help: "mark retrieved, kept messages as seen (new/ -> cur/) at QUIT", isBool: true,
			set: func(c *Config, v string) error { return setBool(&c.MarkRead, v) }},
		{name: "uidl_legacy", def: "auto", help: "keep the UIDLs of the old server: auto, dovecot, courier or none",
			set: func(c *Config, v string) error {
				l, err := maildir.ParseLegacy(v)
				c.UIDLLegacy = l
				return err
			}},
		{name: "dovecot_uidl_format", def: maildir.DefaultDovecotUIDLFormat, help: "Dovecot's pop3_uidl_format, for dovecot-uidlist records without a P field",
			set: func(c *Config, v string) error {
				f, err := maildir.ParseDovecotFormat(v)
				if errors.Is(err, maildir.ErrDovecotMD5) {
					err = nil // P records still count; see pop3d.conf(5)
				}
				c.DovecotUIDLFormat = f
				return err
			}},
		{name: "tmp_cleanup", def: "yes", help: "remove files left in tmp/ for 36 hours at login", isBool: true,
			set: func(c *Config, v string) error { return setBool(&c.TmpCleanup, v) }},
		{name: "listen", def: ":110", help: "plain+STLS addresses when not socket-activated, comma-separated",
			set: func(c *Config, v string) error { return setAddrs(&c.Listen, v) }},
		{name: "listen_tls", def: "", help: "implicit-TLS addresses when not socket-activated, comma-separated",
			set: func(c *Config, v string) error { return setAddrs(&c.ListenTLS, v) }},
		{name: "tls_cert", def: "", help: "PEM certificate chain file",
			set: func(c *Config, v string) error { return setPath(&c.TLSCert, v, false) }},
		{name: "tls_key", def: "", help: "PEM private key file",
			set: func(c *Config, v string) error { return setPath(&c.TLSKey, v, false) }},
		{name: "tls_min_version", def: "1.2", help: "minimum TLS version: 1.2 or 1.3",
			set: setTLSVersion},
		{name: "allow_insecure_auth", def: "no", help: "accept credentials on unencrypted non-loopback connections", isBool: true,
			set: func(c *Config, v string) error { return setBool(&c.AllowInsecureAuth, v) }},
		{name: "idle_timeout", def: "10m", help: "idle timeout per command, in every state",
			set: func(c *Config, v string) error { return setDuration(&c.IdleTimeout, v) }},
		{name: "login_timeout", def: "60s", help: "time from connect to a successful login; 0 = none (idle_timeout only)",
			set: func(c *Config, v string) error { return setDuration(&c.LoginTimeout, v) }},
		{name: "max_connections", def: "1000", help: "global connection limit; 0 = unlimited",
			set: func(c *Config, v string) error { return setInt(&c.MaxConnections, v) }},
		{name: "max_connections_per_ip", def: "50", help: "connection limit per client IP; 0 = unlimited",
			set: func(c *Config, v string) error { return setInt(&c.MaxConnectionsPerIP, v) }},
		{name: "auth_failure_delay", def: "2s", help: "delay before answering a failed login",
			set: func(c *Config, v string) error { return setDuration(&c.AuthFailureDelay, v) }},
		{name: "auth_cache_ttl", def: "15m", help: "how long a verified bcrypt/argon2/yescrypt/SHA-crypt password lets the same password in without hashing; 0 = off",
			set: func(c *Config, v string) error { return setDuration(&c.AuthCacheTTL, v) }},
		{name: "max_auth_failures", def: "3", help: "failed logins before the connection is closed; 0 = unlimited",
			set: func(c *Config, v string) error { return setInt(&c.MaxAuthFailures, v) }},
		{name: "proxy_protocol_from", def: "", help: "CIDRs whose connections start with a PROXY v1/v2 header, comma-separated",
			set: func(c *Config, v string) error { return setPrefixes(&c.ProxyProtocolFrom, v) }},
		{name: "tls_offload_from", def: "", help: "CIDRs of proxies that terminate TLS for their clients: their connections count as encrypted, comma-separated",
			set: func(c *Config, v string) error { return setPrefixes(&c.TLSOffloadFrom, v) }},
		{name: "auth_http_listen", def: "", help: "address serving nginx's mail auth_http protocol at /auth; empty: off",
			set: setAuthHTTPListen},
		{name: "backends", def: "", help: "POP3 backends (IP:port) users are spread over by the auth_http server, comma-separated",
			set: setBackends},
		{name: "backend_check_interval", def: "5s", help: "how often the auth_http server checks each backend's POP3 greeting; 0 = never",
			set: func(c *Config, v string) error { return setDuration(&c.BackendCheck, v) }},
		{name: "backend_check_proxy", def: "yes", help: "backend checks start with a PROXY v2 LOCAL header (the backends trust this host's nginx)", isBool: true,
			set: func(c *Config, v string) error { return setBool(&c.BackendCheckProxy, v) }},
		{name: "login_delay", def: "0", help: "RFC 2449 LOGIN-DELAY: shortest time between two logins of a user (seconds or e.g. 15m); 0 = off",
			set: func(c *Config, v string) error { return setLoginDelay(&c.LoginDelay, v) }},
		{name: "expire", def: "never", help: "RFC 2449 EXPIRE: days after its first retrieval a message is deleted; 0 = at QUIT; never",
			set: func(c *Config, v string) error { return setExpire(&c.Expire, v) }},
		{name: "apop", def: "no", help: "offer APOP (MD5, weak) for users with {PLAIN}/{CLEARTEXT} passwords", isBool: true,
			set: func(c *Config, v string) error { return setBool(&c.APOP, v) }},
		{name: "user", def: "", help: "when started as root: user to switch to after binding",
			set: func(c *Config, v string) error { return setName(&c.User, v) }},
		{name: "group", def: "", help: "when started as root: group to switch to (default: the user's)",
			set: func(c *Config, v string) error { return setName(&c.Group, v) }},
		{name: "log_level", def: "info", help: "debug, info, warn or error",
			set: setLogLevel},
		{name: "metrics_listen", def: "", help: "address of the HTTP server for Prometheus (/metrics) and health checks (/healthz); empty = off",
			set: setMetricsListen},
		{name: "control_socket", def: "/run/pop3d/control", help: "Unix socket for pop3d who and pop3d kick; empty = off",
			set: func(c *Config, v string) error { return setSocketPath(&c.ControlSocket, v) }},
	}
}

// lookupKey returns the key named name.
func lookupKey(name string) (key, bool) {
	for _, k := range keys() {
		if k.name == name {
			return k, true
		}
	}
	return key{}, false
}

// flagName is the command-line flag for a key: passwd_file -> passwd-file.
func flagName(keyName string) string {
	return strings.ReplaceAll(keyName, "_", "-")
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	var c Config
	for _, k := range keys() {
		if err := k.set(&c, k.def); err != nil {
			// The defaults are constants checked by the tests.
			panic(fmt.Sprintf("default of %s: %v", k.name, err))
		}
	}
	return c
}

// ConfigError is one problem in a config file, located by file and line.
type ConfigError struct {
	File string
	Line int
	Msg  string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// ParseConfig reads a config file from r into c, which holds the defaults.
// Every problem is reported (joined with errors.Join, each a *ConfigError),
// not only the first, so that -check can list them all.
//
// Format: `key = value` lines; blank lines and lines whose first non-blank
// character is '#' are ignored. A '#' after a value is part of the value
// (paths may contain it); there are no trailing comments. Surrounding
// spaces and tabs are trimmed from keys and values, a final CR is tolerated.
func ParseConfig(c *Config, name string, r io.Reader) error {
	data, err := io.ReadAll(io.LimitReader(r, maxConfigSize+1))
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > maxConfigSize {
		return fmt.Errorf("%s: larger than %d bytes; not a config file", name, maxConfigSize)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var errs []error
	seen := make(map[string]int)
	for i, raw := range bytes.Split(data, []byte("\n")) {
		lineNo := i + 1
		fail := func(format string, args ...any) {
			errs = append(errs, &ConfigError{File: name, Line: lineNo, Msg: fmt.Sprintf(format, args...)})
		}
		line := strings.TrimSuffix(string(raw), "\r")
		trimmed := strings.Trim(line, " \t")
		if trimmed == "" || trimmed[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(trimmed, "=")
		if !ok {
			fail("expected key = value, got %q", trimmed)
			continue
		}
		k = strings.Trim(k, " \t")
		v = strings.Trim(v, " \t")
		if k == "" {
			fail("missing key before '='")
			continue
		}
		def, ok := lookupKey(k)
		if !ok {
			fail("unknown key %q", k)
			continue
		}
		if prev, dup := seen[k]; dup {
			fail("duplicate key %q (first set on line %d)", k, prev)
			continue
		}
		seen[k] = lineNo
		if err := checkValueChars(v); err != nil {
			fail("%s: %v", k, err)
			continue
		}
		if err := def.set(c, v); err != nil {
			if strings.Contains(v, "#") {
				fail("%s: %v (a '#' after a value is part of the value, not a comment)", k, err)
				continue
			}
			fail("%s: %v", k, err)
		}
	}
	return errors.Join(errs...)
}

// LoadConfig returns the defaults overlaid with the config file at path.
// With explicit false, a missing file is not an error (the default path).
// Anything but a regular file (a FIFO, a device other than /dev/null, a
// directory) is an error naming it, never waited on.
func LoadConfig(path string, explicit bool) (Config, error) {
	c := DefaultConfig()
	if path == os.DevNull {
		// The usual way to say "no config file, flags only"; the only
		// device accepted.
		return c, nil
	}
	// Not os.Open: a FIFO or device at path would block the start, or a
	// SIGHUP and with it the signal loop.
	f, _, err := regfile.Open(path)
	if err != nil {
		if !explicit && errors.Is(err, os.ErrNotExist) {
			return c, nil
		}
		return c, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	if err := ParseConfig(&c, path, f); err != nil {
		return c, err
	}
	return c, nil
}

// Validate reports problems that involve more than one key.
func (c *Config) Validate() error {
	var errs []error
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("tls_cert and tls_key must be set together"))
	}
	if len(c.ListenTLS) > 0 && c.TLSCert == "" {
		errs = append(errs, errors.New("listen_tls is set but tls_cert and tls_key are not"))
	}
	if c.Group != "" && c.User == "" {
		errs = append(errs, errors.New("group is set but user is not"))
	}
	return errors.Join(errs...)
}

// Warnings returns advice that does not stop the daemon.
func (c *Config) Warnings() []string {
	var w []string
	if c.IdleTimeout > 0 && c.IdleTimeout < rfcIdleTimeout {
		w = append(w, fmt.Sprintf("idle_timeout %s is below the RFC 1939 minimum of 10m", c.IdleTimeout))
	}
	if c.IdleTimeout == 0 {
		w = append(w, "idle_timeout 0 disables the idle timeout: idle clients are never disconnected")
	}
	if c.LoginTimeout == 0 {
		w = append(w, "login_timeout 0 disables the login timeout: silent connections hold their slots for idle_timeout")
	}
	if c.AllowInsecureAuth {
		w = append(w, "allow_insecure_auth = yes: passwords may cross the network in clear text")
	}
	if c.APOP {
		w = append(w, "apop = yes: APOP uses MD5 and needs plain-text passwords on the server (CVE-2007-1558); TLS with PASS or AUTH PLAIN is better")
	}
	if len(c.Listen) == 0 && len(c.ListenTLS) == 0 && c.AuthHTTPListen == "" {
		w = append(w, "listen and listen_tls are empty: pop3d only works socket-activated")
	}
	if c.DovecotUIDLFormat.UsesMD5() {
		w = append(w, fmt.Sprintf("dovecot_uidl_format %s uses %%m, which Dovecot expands only for mbox: "+
			"on a Maildir only dovecot-uidlist P records (pop3_save_uidl) keep their UIDLs", c.DovecotUIDLFormat))
	}
	if c.AuthHTTPListen != "" && !loopbackAddr(c.AuthHTTPListen) {
		w = append(w, "auth_http_listen "+c.AuthHTTPListen+" is not a loopback address: whoever reaches it can test passwords, and learns where users live; let only the nginx host reach it")
	}
	return w
}

// loopbackAddr reports whether host:port names a loopback address.
func loopbackAddr(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// checkValueChars refuses control characters, which no value needs and
// which would make paths and log lines misleading.
func checkValueChars(v string) error {
	if !utf8.ValidString(v) {
		return errors.New("value is not valid UTF-8")
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("control character %U in value", r)
		}
	}
	return nil
}

func setPath(dst *string, v string, required bool) error {
	if v == "" && required {
		return errors.New("must not be empty")
	}
	if strings.ContainsRune(v, 0) {
		return errors.New("NUL in path")
	}
	*dst = v
	return nil
}

func setName(dst *string, v string) error {
	if strings.ContainsAny(v, " \t:/\x00") {
		return fmt.Errorf("%q is not a valid user or group name", v)
	}
	*dst = v
	return nil
}

// parseBool accepts the spellings admins use in config files.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "yes", "true", "on", "1":
		return true, nil
	case "no", "false", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (yes/no, true/false, on/off, 1/0)", v)
}

func setBool(dst *bool, v string) error {
	b, err := parseBool(v)
	if err != nil {
		return err
	}
	*dst = b
	return nil
}

func setDuration(dst *time.Duration, v string) error {
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%q is not a duration (e.g. 10m, 2s)", v)
	}
	if d < 0 {
		return fmt.Errorf("%q is negative", v)
	}
	*dst = d
	return nil
}

func setInt(dst *int, v string) error {
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 0 {
		return fmt.Errorf("%q is not a whole number >= 0", v)
	}
	*dst = int(n)
	return nil
}

// splitList splits a comma-separated value; empty means an empty list, an
// empty element (a stray comma) is an error.
func splitList(v string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	parts := strings.Split(v, ",")
	for i, p := range parts {
		parts[i] = strings.Trim(p, " \t")
		if parts[i] == "" {
			return nil, errors.New("empty element in comma-separated list")
		}
	}
	return parts, nil
}

func setAddrs(dst *[]string, v string) error {
	parts, err := splitList(v)
	if err != nil {
		return err
	}
	for _, p := range parts {
		_, port, err := net.SplitHostPort(p)
		if err != nil {
			return fmt.Errorf("%q is not host:port: %v", p, err)
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			// A service name such as "pop3" is what net.Listen accepts too.
			if _, err := net.LookupPort("tcp", port); err != nil {
				return fmt.Errorf("%q: bad port %q", p, port)
			}
		}
	}
	*dst = parts
	return nil
}

func setPrefixes(dst *[]netip.Prefix, v string) error {
	parts, err := splitList(v)
	if err != nil {
		return err
	}
	var prefixes []netip.Prefix
	for _, p := range parts {
		if !strings.Contains(p, "/") {
			a, err := netip.ParseAddr(p)
			if err != nil {
				return fmt.Errorf("%q is not an IP address or CIDR", p)
			}
			prefixes = append(prefixes, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		pf, err := netip.ParsePrefix(p)
		if err != nil {
			return fmt.Errorf("%q is not a CIDR: %v", p, err)
		}
		prefixes = append(prefixes, pf.Masked())
	}
	*dst = prefixes
	return nil
}

func setAuthHTTPListen(c *Config, v string) error {
	if v == "" {
		c.AuthHTTPListen = ""
		return nil
	}
	var addrs []string
	if err := setAddrs(&addrs, v); err != nil {
		return err
	}
	if len(addrs) != 1 {
		return errors.New("one address only")
	}
	c.AuthHTTPListen = addrs[0]
	return nil
}

// setBackends takes IP:port pairs: nginx connects to the address the auth
// server names and refuses host names there.
func setBackends(c *Config, v string) error {
	parts, err := splitList(v)
	if err != nil {
		return err
	}
	var out []netip.AddrPort
	seen := make(map[netip.AddrPort]bool)
	for _, p := range parts {
		ap, err := parseBackend(p)
		if err != nil {
			return err
		}
		if seen[ap] {
			return fmt.Errorf("backend %s listed twice", ap)
		}
		seen[ap] = true
		out = append(out, ap)
	}
	c.Backends = out
	return nil
}

// parseBackend parses IP:port ([v6]:port); the port must not be 0.
func parseBackend(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not IP:port (nginx needs an IP address, not a name)", s)
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("%q: port 0", s)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

func setTLSVersion(c *Config, v string) error {
	switch v {
	case "1.2":
		c.TLSMinVersion = tls.VersionTLS12
	case "1.3":
		c.TLSMinVersion = tls.VersionTLS13
	default:
		return fmt.Errorf("%q is not a supported TLS version (1.2 or 1.3)", v)
	}
	return nil
}

func setLogLevel(c *Config, v string) error {
	switch strings.ToLower(v) {
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "info":
		c.LogLevel = slog.LevelInfo
	case "warn", "warning":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		return fmt.Errorf("%q is not a log level (debug, info, warn, error)", v)
	}
	return nil
}

func setMetricsListen(c *Config, v string) error {
	if v == "" {
		c.MetricsListen = ""
		return nil
	}
	if strings.Contains(v, ",") {
		return fmt.Errorf("%q: one address only", v)
	}
	var addrs []string
	if err := setAddrs(&addrs, v); err != nil {
		return err
	}
	c.MetricsListen = v
	return nil
}

// maxSocketPath is what fits in sockaddr_un's sun_path with its NUL.
const maxSocketPath = 107

func setSocketPath(dst *string, v string) error {
	if v != "" && !filepath.IsAbs(v) {
		return fmt.Errorf("%q is not an absolute path", v)
	}
	if len(v) > maxSocketPath {
		return fmt.Errorf("%q is longer than the %d bytes a Unix socket path may have", v, maxSocketPath)
	}
	*dst = v
	return nil
}
