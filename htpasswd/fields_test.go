package htpasswd

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

func TestExtraValue(t *testing.T) {
	tests := []struct {
		extra    string
		key      string
		want     string
		wantOK   bool
		describe string
	}{
		{"host=10.0.0.11 port=110", "host", "10.0.0.11", true, "first of two"},
		{"host=10.0.0.11 port=110", "port", "110", true, "second of two"},
		{"host=10.0.0.11", "port", "", false, "absent"},
		{"proxy host=10.0.0.11", "proxy", "yes", true, "flag"},
		{"userdb_host=10.0.0.12", "host", "10.0.0.12", true, "userdb_ prefix"},
		{"host=10.0.0.11 host=10.0.0.12", "host", "10.0.0.11", true, "first wins"},
		{"  host=   port=2  ", "host", "", true, "empty value"},
		{"hostname=x", "host", "", false, "prefix of another key"},
		{"", "host", "", false, "no extra fields"},
		{"a=b=c", "a", "b=c", true, "'=' in a value"},
	}
	for _, tt := range tests {
		t.Run(tt.describe, func(t *testing.T) {
			fields, err := ParseExtra(tt.extra)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := User{Extra: fields}.ExtraValue(tt.key)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("ExtraValue(%q) of %q = %q, %v; want %q, %v", tt.key, tt.extra, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// The extra fields come from the 8th field on; colons in them are theirs.
func TestLookupAndUsers(t *testing.T) {
	p := writeFile(t, t.TempDir(), strings.Join([]string{
		"carol:" + hSHA + ":::::: host=10.0.0.12 port=1110",
		"alice:" + hSHA,
		"bob:" + hSHA + ":1:2:Bob:/home/bob:/bin/false:host=[::1] note=a:b",
		"bad:notahash",
		"",
	}, "\n"))
	lg, _ := newLogger()
	f, err := Open(p, lg)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range f.Users() {
		names = append(names, u.Name)
	}
	if want := []string{"alice", "bob", "carol"}; !reflect.DeepEqual(names, want) {
		t.Errorf("Users() = %v, want %v", names, want)
	}
	u, ok := f.Lookup("bob")
	if !ok || u.Home != "/home/bob" {
		t.Fatalf("Lookup(bob) = %+v, %v", u, ok)
	}
	if v, _ := u.ExtraValue("note"); v != "a:b" {
		t.Errorf("bob note = %q", v)
	}
	if v, _ := u.ExtraValue("host"); v != "[::1]" {
		t.Errorf("bob host = %q", v)
	}
	if _, ok := f.Lookup("bad"); ok {
		t.Error("Lookup found a user whose line is unusable")
	}
	if _, ok := f.Lookup("nobody"); ok {
		t.Error("Lookup found an unknown user")
	}
	// Authenticate returns the same fields.
	a, err := f.Authenticate(context.Background(), "carol", pw)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := a.ExtraValue("port"); v != "1110" {
		t.Errorf("carol port after Authenticate = %q", v)
	}
}

func FuzzExtraValue(f *testing.F) {
	f.Add("host=10.0.0.11 port=110", "host")
	f.Add("proxy userdb_host=x", "host")
	f.Add("==  =", "")
	f.Fuzz(func(t *testing.T, extra, key string) {
		fields, err := ParseExtra(extra)
		if err != nil {
			return
		}
		v, ok := User{Extra: fields}.ExtraValue(key)
		if !ok && v != "" {
			t.Fatalf("value %q for an absent key", v)
		}
		if ok && strings.ContainsAny(v, " \t\n") {
			t.Fatalf("value %q has white space", v)
		}
	})
}
