package htpasswd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseExtra(t *testing.T) {
	tests := []struct {
		in      string
		want    []Field
		wantErr string
	}{
		{"", nil, ""},
		{"   ", nil, ""},
		{"nologin", []Field{{Key: "nologin", Bare: true}}, ""},
		{"nologin reason=moved", []Field{{Key: "nologin", Bare: true}, {Key: "reason", Value: "moved"}}, ""},
		{`nologin reason="moved to imap.example.com"`, []Field{{Key: "nologin", Bare: true}, {Key: "reason", Value: "moved to imap.example.com"}}, ""},
		{"allow_nets=192.0.2.0/24,::1\tlogin_delay=300", []Field{{Key: "allow_nets", Value: "192.0.2.0/24,::1"}, {Key: "login_delay", Value: "300"}}, ""},
		{"userdb_mail=maildir:~/Maildir", []Field{{Key: "userdb_mail", Value: "maildir:~/Maildir"}}, ""},
		{"empty=", []Field{{Key: "empty"}}, ""},
		{`q=""`, []Field{{Key: "q"}}, ""},
		{"=x", nil, "without a key"},
		{"a b=c =d", nil, "without a key"},
		{"ke/y=1", nil, "only letters"},
		{`reason="open`, nil, "unterminated quote"},
		{`reason="a"b`, nil, "after the closing quote"},
		{`reason=a"b`, nil, "quote inside"},
		{"reason=a\x01b", nil, "control character"},
		{strings.Repeat("x ", maxExtraFields+1), nil, "more than"},
	}
	for _, tt := range tests {
		got, err := ParseExtra(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseExtra(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseExtra(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseExtra(f *testing.F) {
	for _, s := range []string{"nologin reason=x", `reason="a b" allow_nets=10.0.0.0/8`, "=", `"`, "a=b=c", "k\t\tv"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fields, err := ParseExtra(s)
		if err != nil {
			return
		}
		// What parsed is well formed, and written back (quoted when it
		// holds blanks) parses to the same fields.
		var b strings.Builder
		for _, fl := range fields {
			if checkFieldKey(fl.Key) != nil || strings.ContainsAny(fl.Value, "\"\r\n\x00") {
				t.Fatalf("ParseExtra(%q) gave bad field %+v", s, fl)
			}
			b.WriteString(fl.Key)
			if !fl.Bare {
				b.WriteString(`="` + fl.Value + `"`)
			}
			b.WriteByte(' ')
		}
		again, err := ParseExtra(b.String())
		if err != nil || len(again) != len(fields) {
			t.Fatalf("round trip of %q via %q: %+v, %v", s, b.String(), again, err)
		}
		for i := range again {
			if again[i] != fields[i] {
				t.Fatalf("round trip of %q: %+v != %+v", s, again[i], fields[i])
			}
		}
	})
}

// The extra fields reach Authenticate's User; a checker refuses users and
// adds warnings with the file and line; Check reports the same.
func TestExtraFieldsLoaded(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "passwd")
	content := "alice:{PLAIN}pw:::::: nologin reason=\"gone fishing\" color=blue\n" +
		"bob:{PLAIN}pw::::::login_delay=oops\n" +
		"carol:{PLAIN}pw\n" +
		"dave:{PLAIN}pw:::::: reason=\"broken\n"
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(fields []Field) ([]string, error) {
		var w []string
		for _, f := range fields {
			switch f.Key {
			case "login_delay":
				if f.Value != "5" {
					return w, errors.New("login_delay: bad")
				}
			case "nologin", "reason":
			default:
				w = append(w, "unknown extra field "+f.Key+" ignored")
			}
		}
		return w, nil
	}
	f, err := OpenWith(p, Options{Logger: nil, CheckExtra: check})
	if err != nil {
		t.Fatal(err)
	}
	u, err := f.Authenticate(context.Background(), "alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	want := []Field{{Key: "nologin", Bare: true}, {Key: "reason", Value: "gone fishing"}, {Key: "color", Value: "blue"}}
	if !reflect.DeepEqual(u.Extra, want) {
		t.Fatalf("Extra = %+v", u.Extra)
	}
	if !f.HasExtraKey("nologin") || !f.HasExtraKey("color") || f.HasExtraKey("expire") {
		t.Error("HasExtraKey does not match the file")
	}
	for _, name := range []string{"bob", "dave"} {
		if _, err := f.Authenticate(context.Background(), name, "pw"); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("%s with bad extra fields: %v", name, err)
		}
	}
	if u, err := f.Authenticate(context.Background(), "carol", "pw"); err != nil || u.Extra != nil {
		t.Errorf("carol: %+v %v", u, err)
	}
	problems, err := CheckWith(p, check)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, pr := range problems {
		got = append(got, pr.String())
	}
	joined := strings.Join(got, "\n")
	for _, w := range []string{
		p + `:1: user "alice": unknown extra field color ignored`,
		p + `:2: user "bob" cannot log in: login_delay: bad`,
		p + `:4: user "dave" cannot log in: extra field reason: unterminated quote`,
	} {
		if !strings.Contains(joined, w) {
			t.Errorf("Check lacks %q:\n%s", w, joined)
		}
	}
}

// pop3d passwd changes the password and keeps every extra field.
func TestEditKeepsExtraFields(t *testing.T) {
	in := "alice:{PLAIN}old:1000:1000::/home/alice::nologin reason=\"x y\" allow_nets=10.0.0.0/8\n"
	out, found := editLines([]byte(in), "alice", "$2y$10$new", false)
	want := "alice:$2y$10$new:1000:1000::/home/alice::nologin reason=\"x y\" allow_nets=10.0.0.0/8\n"
	if !found || string(out) != want {
		t.Fatalf("editLines = %q, want %q", out, want)
	}
}
