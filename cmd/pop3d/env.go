package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/pop3d/pop3d/htpasswd"
)

// Settings from the environment, for containers (as Mailpit's MP_*):
// every config key KEY can be given as POP3D_<KEY in upper case>
// (POP3D_LISTEN=:1110); precedence is flags > environment > config file.
// POP3D_AUTH="user1:password1 user2:password2" adds users, hashed at once
// and kept in memory only; it exists only as an environment variable,
// never as a flag, because flags show in ps.
const (
	envPrefix = "POP3D_"
	envAuth   = "POP3D_AUTH"
	// envClockSkew moves pop3d's clock (for LOGIN-DELAY and EXPIRE) by a
	// duration. It is for the end-to-end tests only, which must see days
	// pass without waiting; pop3d(8) documents it as such.
	envClockSkew = "POP3D_TEST_CLOCK_SKEW"
)

// envSetting is one config key set by the environment.
type envSetting struct {
	name  string // the variable, POP3D_LISTEN
	key   key
	value string
}

// envName is the variable of a config key: listen -> POP3D_LISTEN.
func envName(keyName string) string { return envPrefix + strings.ToUpper(keyName) }

// envSettings returns the config keys environ sets, in key order, and the
// POP3D_ variables that name no key, sorted. Those are warned about
// (-check, the startup log) rather than refused: a container or CI
// environment may carry POP3D_ variables meant for something else, and a
// server must not stop for them; a typo still shows.
func envSettings(environ []string) ([]envSetting, []string) {
	byName := make(map[string]string)
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(name, envPrefix) {
			byName[name] = value
		}
	}
	var out []envSetting
	for _, k := range keys() {
		name := envName(k.name)
		v, ok := byName[name]
		if !ok {
			continue
		}
		delete(byName, name)
		out = append(out, envSetting{name: name, key: k, value: strings.Trim(v, " \t")})
	}
	delete(byName, envAuth)
	delete(byName, envClockSkew)
	unknown := make([]string, 0, len(byName))
	for name := range byName {
		unknown = append(unknown, name)
	}
	slices.Sort(unknown)
	return out, unknown
}

// envWarnings are the warnings about the environment: unknown POP3D_
// variables.
func envWarnings(environ []string) []string {
	_, unknown := envSettings(environ)
	var w []string
	for _, name := range unknown {
		w = append(w, fmt.Sprintf("environment: %s is no configuration key (keys are %s<KEY>), ignored", name, envPrefix))
	}
	return w
}

// applyEnv sets cfg from the environment's settings.
func applyEnv(cfg *Config, settings []envSetting) error {
	var errs []error
	for _, s := range settings {
		err := checkValueChars(s.value)
		if err == nil {
			err = s.key.set(cfg, s.value)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("environment %s: %w", s.name, err))
		}
	}
	return errors.Join(errs...)
}

// envValue returns the value of name in environ.
func envValue(environ []string, name string) (string, bool) {
	for _, kv := range environ {
		if n, v, ok := strings.Cut(kv, "="); ok && n == name {
			return v, true
		}
	}
	return "", false
}

// staticUsers parses POP3D_AUTH; nil when it is unset or empty.
func staticUsers(environ []string) (*htpasswd.Static, error) {
	v, ok := envValue(environ, envAuth)
	if !ok || strings.TrimSpace(v) == "" {
		return nil, nil
	}
	s, err := htpasswd.ParseStatic(v)
	if err != nil {
		return nil, fmt.Errorf("environment %s: %w", envAuth, err)
	}
	return s, nil
}

// clockFromEnv is time.Now, moved by POP3D_TEST_CLOCK_SKEW when set.
func clockFromEnv(environ []string) (func() time.Time, error) {
	v, ok := envValue(environ, envClockSkew)
	if !ok || v == "" {
		return time.Now, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return nil, fmt.Errorf("environment %s: %q is not a duration", envClockSkew, v)
	}
	return func() time.Time { return time.Now().Add(d) }, nil
}

// passwdOptional reports whether a missing password file is fine: users
// come from POP3D_AUTH and passwd_file was left at its default.
func passwdOptional(cfg *Config, static *htpasswd.Static) bool {
	if static == nil {
		return false
	}
	k, _ := lookupKey("passwd_file")
	if cfg.PasswdFile != k.def {
		return false
	}
	_, err := os.Stat(cfg.PasswdFile)
	return errors.Is(err, os.ErrNotExist)
}

// origins describes, for -check, which keys the environment set, and
// which of those a flag overrode (precedence: flags > environment > file).
func (o *options) origins() []string {
	var lines []string
	flagged := make(map[string]bool)
	for _, ov := range o.overrides {
		flagged[ov.key.name] = true
	}
	settings, _ := envSettings(o.env)
	for _, s := range settings {
		if flagged[s.key.name] {
			lines = append(lines, fmt.Sprintf("%s: from environment %s, overridden by flag -%s", s.key.name, s.name, flagName(s.key.name)))
			continue
		}
		lines = append(lines, fmt.Sprintf("%s = %s (from environment %s)", s.key.name, s.value, s.name))
	}
	return lines
}
