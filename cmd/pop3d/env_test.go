package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Precedence: flags > environment > config file.
func TestEnvPrecedence(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "pop3d.conf")
	if err := os.WriteFile(conf, []byte("listen = 127.0.0.1:1\nmax_connections = 7\nidle_timeout = 20m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		env   []string
		check func(t *testing.T, c Config)
		err   string
	}{
		{"environment over file", []string{"-config", conf}, []string{"POP3D_LISTEN=127.0.0.1:2", "POP3D_EXPIRE=5", "HOME=/x"},
			func(t *testing.T, c Config) {
				if !reflect.DeepEqual(c.Listen, []string{"127.0.0.1:2"}) || c.MaxConnections != 7 || c.Expire.String() != "5" {
					t.Errorf("got %+v", c)
				}
			}, ""},
		{"flag over environment", []string{"-config", conf, "-max-connections", "9"}, []string{"POP3D_MAX_CONNECTIONS=8", "POP3D_IDLE_TIMEOUT=30m"},
			func(t *testing.T, c Config) {
				if c.MaxConnections != 9 || c.IdleTimeout != 30*time.Minute {
					t.Errorf("got %+v", c)
				}
			}, ""},
		{"bad value names the variable", []string{"-config", os.DevNull}, []string{"POP3D_LOGIN_DELAY=soon"}, nil,
			"environment POP3D_LOGIN_DELAY: "},
		{"unknown variable ignored", []string{"-config", os.DevNull}, []string{"POP3D_LSITEN=:1"}, func(t *testing.T, c Config) {
			if w := envWarnings([]string{"POP3D_LSITEN=:1", "POP3D_AUTH=a:b"}); len(w) != 1 || !strings.Contains(w[0], "POP3D_LSITEN is no configuration key") {
				t.Errorf("warnings %q", w)
			}
		}, ""},
		{"POP3D_AUTH and the test clock are no keys but known", []string{"-config", os.DevNull},
			[]string{"POP3D_AUTH=a:b", "POP3D_TEST_CLOCK_SKEW=1h"}, func(t *testing.T, c Config) {}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := parseArgs(tt.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			opts.env = tt.env
			c, err := opts.load()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("load = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

// -check shows where settings came from, and POP3D_AUTH alone (no
// password file at its default path) is a valid setup.
func TestCheckEnvironment(t *testing.T) {
	dir := t.TempDir()
	opts, err := parseArgs([]string{"-config", os.DevNull, "-max-connections", "3"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	opts.env = []string{
		"POP3D_AUTH=alice:pw1 bob:pw2",
		"POP3D_MAILDIR=" + dir + "/%u",
		"POP3D_MAX_CONNECTIONS=5",
		"POP3D_LOGIN_DELAY=60",
	}
	var stdout, stderr bytes.Buffer
	if st := runCheck(opts, &stdout, &stderr); st != exitOK {
		t.Fatalf("check = %d\nstdout:\n%s\nstderr:\n%s", st, stdout.String(), stderr.String())
	}
	for _, want := range []string{
		"setting: maildir = " + dir + "/%u (from environment POP3D_MAILDIR)",
		"setting: max_connections: from environment POP3D_MAX_CONNECTIONS, overridden by flag -max-connections",
		"users: 2 from environment POP3D_AUTH",
		"policy: login_delay 1m0s, expire NEVER, apop no",
		"configuration OK",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
		}
	}
	if strings.Contains(stdout.String()+stderr.String(), "pw1") {
		t.Error("-check printed a password")
	}
	opts.env = []string{"POP3D_AUTH=alice"}
	stdout.Reset()
	stderr.Reset()
	if st := runCheck(opts, &stdout, &stderr); st != exitFail || !strings.Contains(stderr.String(), "POP3D_AUTH: entry 1") {
		t.Errorf("bad POP3D_AUTH: %d\n%s", st, stderr.String())
	}
}
