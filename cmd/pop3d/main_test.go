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

func TestParseArgs(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "pop3d.conf")
	if err := os.WriteFile(conf, []byte("listen = 127.0.0.1:1\nmark_read = yes\nidle_timeout = 20m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, c Config)
	}{
		{"file only", []string{"-config", conf}, func(t *testing.T, c Config) {
			if !reflect.DeepEqual(c.Listen, []string{"127.0.0.1:1"}) || !c.MarkRead || c.IdleTimeout != 20*time.Minute {
				t.Errorf("got %+v", c)
			}
		}},
		{"flags override file", []string{"-config", conf, "-listen", "127.0.0.1:2,127.0.0.1:3", "-mark-read=no", "-idle-timeout", "15m"}, func(t *testing.T, c Config) {
			if !reflect.DeepEqual(c.Listen, []string{"127.0.0.1:2", "127.0.0.1:3"}) || c.MarkRead || c.IdleTimeout != 15*time.Minute {
				t.Errorf("got %+v", c)
			}
		}},
		{"bool flag alone", []string{"-config", os.DevNull, "-allow-insecure-auth"}, func(t *testing.T, c Config) {
			if !c.AllowInsecureAuth {
				t.Error("-allow-insecure-auth did not set it")
			}
		}},
		{"last flag wins", []string{"-config", os.DevNull, "-max-connections", "5", "-max-connections", "6"}, func(t *testing.T, c Config) {
			if c.MaxConnections != 6 {
				t.Errorf("MaxConnections = %d", c.MaxConnections)
			}
		}},
		{"empty listen flag", []string{"-config", os.DevNull, "-listen", ""}, func(t *testing.T, c Config) {
			if len(c.Listen) != 0 {
				t.Errorf("Listen = %q", c.Listen)
			}
		}},
		{"unset flags keep the file", []string{"-config", conf, "-log-level", "debug"}, func(t *testing.T, c Config) {
			if !reflect.DeepEqual(c.Listen, []string{"127.0.0.1:1"}) || c.LogLevel.String() != "DEBUG" {
				t.Errorf("got %+v", c)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := parseArgs(tt.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			c, err := opts.load()
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestRunUsageAndVersion(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		status int
		stdout string
		stderr string
	}{
		{"version", []string{"-version"}, exitOK, "pop3d " + version + "\n", ""},
		{"help", []string{"-h"}, exitOK, "", "-passwd-file"},
		{"unknown flag", []string{"-nope"}, exitUsage, "", "flag provided but not defined"},
		{"bad flag value", []string{"-idle-timeout", "soon"}, exitUsage, "", "not a duration"},
		{"bad bool flag", []string{"-mark-read=perhaps"}, exitUsage, "", "not a boolean"},
		{"stray argument", []string{"-config", os.DevNull, "extra"}, exitUsage, "", "unexpected argument"},
		{"missing explicit config", []string{"-config", "/nonexistent/pop3d.conf"}, exitFail, "", "no such file"},
		{"invalid combination", []string{"-config", os.DevNull, "-tls-cert", "/c.pem"}, exitFail, "", "tls_cert and tls_key must be set together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			status := run(tt.args, strings.NewReader(""), &stdout, &stderr)
			if status != tt.status {
				t.Errorf("status = %d, want %d (stderr %q)", status, tt.status, stderr.String())
			}
			if tt.stdout != "" && stdout.String() != tt.stdout {
				t.Errorf("stdout = %q, want %q", stdout.String(), tt.stdout)
			}
			if tt.stderr != "" && !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tt.stderr)
			}
		})
	}
}

func TestRunPasswdSubcommand(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "passwd")
	var stdout, stderr bytes.Buffer
	status := run([]string{"passwd", "-f", pw, "demo"}, strings.NewReader("demo\n"), &stdout, &stderr)
	if status != exitOK {
		t.Fatalf("pop3d passwd: status %d, stderr %q", status, stderr.String())
	}
	data, err := os.ReadFile(pw)
	if err != nil || !strings.HasPrefix(string(data), "demo:$2") {
		t.Errorf("password file = %q, %v; want a bcrypt line for demo", data, err)
	}
}
