package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// placementConfig writes a config with backends and a password file.
func placementConfig(t *testing.T) string {
	t.Helper()
	_, pw := passwdFixture(t,
		"alice@example.org:"+shaHash("a"),
		"bob@example.org:"+shaHash("b")+":::::: host=10.0.0.99 port=1110",
		"carol:"+shaHash("c"),
		"dave@example.org:"+shaHash("d")+":::::: host=2001:db8::5",
	)
	cfg := filepath.Join(t.TempDir(), "pop3d.conf")
	body := "passwd_file = " + pw + "\nbackends = 10.0.0.11:110, 10.0.0.12:110, 10.0.0.13:110\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestWhere(t *testing.T) {
	cfg := placementConfig(t)
	code, out, errs := runCmd("where", "-config", cfg, "alice@example.org", "bob@example.org", "nobody")
	if code != exitFail {
		t.Errorf("exit %d, want %d (nobody is unknown)", code, exitFail)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "alice@example.org 10.0.0.1") || lines[1] != "bob@example.org 10.0.0.99:1110" {
		t.Errorf("output %q", out)
	}
	if !strings.Contains(errs, "nobody: no such user") {
		t.Errorf("stderr %q", errs)
	}
	// The same answer as the auth server's placement.
	c, err := LoadConfig(cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := placement{backends: c.Backends}.hashed("alice@example.org")
	if lines[0] != "alice@example.org "+want.String() {
		t.Errorf("where says %q, the placement %v", lines[0], want)
	}
	if code, _, _ := runCmd("where", "-config", cfg); code != exitUsage {
		t.Errorf("no users: exit %d", code)
	}
}

func TestTransportMap(t *testing.T) {
	cfg := placementConfig(t)
	c, _ := LoadConfig(cfg, true)
	alice, _ := placement{backends: c.Backends}.hashed("alice@example.org")
	carol, _ := placement{backends: c.Backends}.hashed("carol")
	tests := []struct {
		args    []string
		want    []string
		warning string
	}{
		{nil, []string{
			"alice@example.org smtp:[" + alice.Addr().String() + "]:25",
			"bob@example.org smtp:[10.0.0.99]:25",
			"dave@example.org smtp:[ipv6:2001:db8::5]:25",
		}, "carol: no @domain and no -domain; left out"},
		{[]string{"-transport", "lmtp", "-domain", "example.net"}, []string{
			"alice@example.org lmtp:[" + alice.Addr().String() + "]:24",
			"bob@example.org lmtp:[10.0.0.99]:24",
			"carol@example.net lmtp:[" + carol.Addr().String() + "]:24",
			"dave@example.org lmtp:[ipv6:2001:db8::5]:24",
		}, ""},
		{[]string{"-port", "2525", "-domain", "example.net"}, []string{
			"alice@example.org smtp:[" + alice.Addr().String() + "]:2525",
			"bob@example.org smtp:[10.0.0.99]:2525",
			"carol@example.net smtp:[" + carol.Addr().String() + "]:2525",
			"dave@example.org smtp:[ipv6:2001:db8::5]:2525",
		}, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errs := runCmd(append([]string{"transport-map", "-config", cfg}, tt.args...)...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errs)
			}
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				if !strings.HasPrefix(l, "#") {
					got = append(got, l)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if tt.warning != "" && !strings.Contains(errs, tt.warning) {
				t.Errorf("stderr %q lacks %q", errs, tt.warning)
			}
		})
	}
	for _, bad := range [][]string{{"-transport", "uucp"}, {"-port", "99999"}, {"-domain", "a@b"}, {"stray"}} {
		if code, _, _ := runCmd(append([]string{"transport-map", "-config", cfg}, bad...)...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", bad, code, exitUsage)
		}
	}
}

// -check reports users the auth_http server could not place.
func TestCheckPlacement(t *testing.T) {
	_, pw := passwdFixture(t, "alice:"+shaHash("a"), "bob:"+shaHash("b")+":::::: host=mail.example.org")
	cfg := filepath.Join(t.TempDir(), "pop3d.conf")
	if err := os.WriteFile(cfg, []byte("passwd_file = "+pw+"\nauth_http_listen = 127.0.0.1:0\nlisten =\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCmd("-check", "-config", cfg)
	if code != exitFail || !strings.Contains(errs, "user alice: no host= field and the backends key is empty") ||
		!strings.Contains(errs, "user bob: host=mail.example.org is not an IP address") {
		t.Errorf("exit %d, stderr:\n%s", code, errs)
	}
}

func TestClusterKeys(t *testing.T) {
	tests := []struct {
		line, wantErr string
	}{
		{"backends = 10.0.0.11:110, [2001:db8::1]:110", ""},
		{"backends = mail1.example.org:110", "nginx needs an IP address"},
		{"backends = 10.0.0.11", "is not IP:port"},
		{"backends = 10.0.0.11:0", "port 0"},
		{"backends = 10.0.0.11:110, 10.0.0.11:110", "listed twice"},
		{"backends = 10.0.0.11:110,", "empty element"},
		{"auth_http_listen = 127.0.0.1:9180", ""},
		{"auth_http_listen = 127.0.0.1:9180, 127.0.0.1:9181", "one address only"},
		{"auth_http_listen = 9180", "is not host:port"},
		{"tls_offload_from = 10.0.0.0/24, 192.0.2.1", ""},
		{"tls_offload_from = nginx.example.org", "is not an IP address or CIDR"},
		{"backend_check_interval = 2s", ""},
		{"backend_check_interval = often", "is not a duration"},
		{"backend_check_proxy = no", ""},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			c := DefaultConfig()
			err := ParseConfig(&c, "f", strings.NewReader(tt.line+"\n"))
			if tt.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "f:1:")) {
				t.Fatalf("err %v, want %q at f:1", err, tt.wantErr)
			}
		})
	}
}

func TestAuthHTTPListenWarning(t *testing.T) {
	for _, tt := range []struct {
		addr string
		warn bool
	}{
		{"127.0.0.1:9180", false},
		{"[::1]:9180", false},
		{"localhost:9180", false},
		{"0.0.0.0:9180", true},
		{":9180", true},
		{"10.0.0.2:9180", true},
	} {
		c := DefaultConfig()
		c.AuthHTTPListen = tt.addr
		got := strings.Contains(strings.Join(c.Warnings(), "\n"), "auth_http_listen")
		if got != tt.warn {
			t.Errorf("%s: warning %v, want %v", tt.addr, got, tt.warn)
		}
	}
}
