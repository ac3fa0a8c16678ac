package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pop3d/pop3d/htpasswd"
)

// passwdFixture writes lines to a password file and opens it.
func passwdFixture(t testing.TB, lines ...string) (*htpasswd.File, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := htpasswd.Open(p, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return f, p
}

func backendList(n int) []netip.AddrPort {
	var out []netip.AddrPort
	for i := range n {
		out = append(out, netip.MustParseAddrPort(fmt.Sprintf("10.0.0.%d:110", 11+i)))
	}
	return out
}

func TestPlacementFields(t *testing.T) {
	f, _ := passwdFixture(t,
		"fixed:"+shaHash("x")+":::::: host=10.9.9.9 port=1110",
		"noport:"+shaHash("x")+":::::: proxy host=10.9.9.8",
		"v6:"+shaHash("x")+":::::: host=[2001:db8::1] port=995",
		"named:"+shaHash("x")+":::::: host=mail.example.org",
		"badport:"+shaHash("x")+":::::: host=10.0.0.1 port=70000",
		"zeroport:"+shaHash("x")+":::::: host=10.0.0.1 port=0",
		"portonly:"+shaHash("x")+":::::: port=110",
		"hashed:"+shaHash("x"),
	)
	p := placement{backends: backendList(3)}
	tests := []struct {
		user, want, wantErr string
	}{
		{"fixed", "10.9.9.9:1110", ""},
		{"noport", "10.9.9.8:110", ""},
		{"v6", "[2001:db8::1]:995", ""},
		{"named", "", "host=mail.example.org is not an IP address"},
		{"badport", "", "port=70000 is not a port number"},
		{"zeroport", "", "port=0 is not a port number"},
		{"portonly", "", "port= without host="},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			u, ok := f.Lookup(tt.user)
			if !ok {
				t.Fatal("user missing")
			}
			got, err := p.place(u)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), tt.user) {
					t.Fatalf("place = %v, %v; want error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("place = %v, %v; want %s", got, err, tt.want)
			}
		})
	}
	u, _ := f.Lookup("hashed")
	if _, err := (placement{}).place(u); !errors.Is(err, errNoBackend) {
		t.Errorf("no backends: %v", err)
	}
	// The hashed choice does not depend on the order the backends are
	// listed in: every auth server must agree.
	a, _ := placement{backends: backendList(3)}.place(u)
	rev := backendList(3)
	rev[0], rev[2] = rev[2], rev[0]
	if b, _ := (placement{backends: rev}).place(u); a != b {
		t.Errorf("order changes the choice: %v vs %v", a, b)
	}
}

// Adding a fourth backend to three moves about a quarter of the users, all
// of them to the new backend; removing one moves only its own users; the
// users are spread evenly.
func TestRendezvousMovesFewUsers(t *testing.T) {
	const users = 20000
	three := placement{backends: backendList(3)}
	four := placement{backends: backendList(4)}
	count := make(map[netip.AddrPort]int)
	moved := 0
	for i := range users {
		name := fmt.Sprintf("user%d@example.org", i)
		a, err := three.hashed(name)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := four.hashed(name)
		count[b]++
		if a != b {
			moved++
			if b != four.backends[3] {
				t.Fatalf("%s moved from %v to %v, not to the new backend", name, a, b)
			}
		}
		// Removing backend 0 of four moves only the users it had.
		c, _ := placement{backends: four.backends[1:]}.hashed(name)
		if b != four.backends[0] && c != b {
			t.Fatalf("%s moved from %v to %v although its backend stayed", name, b, c)
		}
	}
	frac := float64(moved) / users
	t.Logf("adding a 4th backend moved %.1f%% of %d users", 100*frac, users)
	if frac < 0.22 || frac > 0.28 {
		t.Errorf("moved %.3f of the users, want about 1/4", frac)
	}
	for b, n := range count {
		if share := float64(n) / users; share < 0.22 || share > 0.28 {
			t.Errorf("backend %v has %.3f of the users, want about 1/4", b, share)
		}
	}
}

func BenchmarkPlacement(b *testing.B) {
	p := placement{backends: backendList(8)}
	for i := 0; b.Loop(); i++ {
		p.hashed(fmt.Sprintf("user%d", i))
	}
}

// The proxy fields are known to the password file's checker: good values
// pass silently, bad ones are warnings (the user still logs in on a
// backend), never an unknown-field warning.
func TestProxyFieldsChecked(t *testing.T) {
	tests := []struct {
		extra, warning string
	}{
		{"host=10.0.0.11 port=110", ""},
		{"proxy host=[2001:db8::1]", ""},
		{"userdb_host=10.0.0.12 userdb_port=1110", ""},
		{"host=mail.example.org", "host=mail.example.org is not an IP address"},
		{"host=10.0.0.11 port=0", "port=0 is not a port number"},
		{"host=10.0.0.11 port=pop3", "port=pop3 is not a port number"},
	}
	for _, tt := range tests {
		t.Run(tt.extra, func(t *testing.T) {
			fields, err := htpasswd.ParseExtra(tt.extra)
			if err != nil {
				t.Fatal(err)
			}
			warnings, err := checkExtra(fields)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			got := strings.Join(warnings, "; ")
			if (tt.warning == "") != (got == "") || !strings.Contains(got, tt.warning) {
				t.Errorf("warnings %q, want %q", got, tt.warning)
			}
		})
	}
}
