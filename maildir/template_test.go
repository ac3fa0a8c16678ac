package maildir

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestExpandTemplate(t *testing.T) {
	tests := []struct {
		tmpl, user, want string
		bad              bool // ErrBadUser
		fail             bool // any other error
	}{
		{tmpl: "/var/mail/vhosts/%d/%n", user: "bob@example.com", want: "/var/mail/vhosts/example.com/bob"},
		{tmpl: "/var/mail/vhosts/%d/%n", user: "bob", want: "/var/mail/vhosts/bob"},
		{tmpl: "/home/%u/Maildir", user: "bob@example.com", want: "/home/bob@example.com/Maildir"},
		{tmpl: "/m/%n", user: "a@b@c", want: "/m/a@b"},
		{tmpl: "/m/%d", user: "a@b@c", want: "/m/c"},
		{tmpl: "/m/100%%/%u", user: "x", want: "/m/100%/x"},
		{tmpl: "/m/%u", user: "Ünïcode", want: "/m/Ünïcode"},
		{tmpl: "/m/.%n", user: "a", want: "/m/.a"},
		{tmpl: "/m/%u", user: "", bad: true},
		{tmpl: "/m/%u", user: ".", bad: true},
		{tmpl: "/m/%u", user: "..", bad: true},
		{tmpl: "/m/%u", user: "../etc", bad: true},
		{tmpl: "/m/%u", user: "a/b", bad: true},
		{tmpl: "/m/%u", user: "a\x00b", bad: true},
		{tmpl: "/m/%u", user: "a\nb", bad: true},
		{tmpl: "/m/%u", user: "a\x7fb", bad: true},
		{tmpl: "/m/%d/%n", user: "..@example.com", bad: true},
		{tmpl: "/m/%d/%n", user: "bob@..", bad: true},
		{tmpl: "/m/%d/%n", user: "bob@.", bad: true},
		{tmpl: "/m/%d/%n", user: "@example.com", bad: true},
		{tmpl: "/m/%d/%n", user: "bob@", bad: true},
		{tmpl: "/m/.%d", user: "bob", bad: true}, // would be /m/. = the base itself
		{tmpl: "/m/%x", user: "bob", fail: true},
		{tmpl: "/m/%", user: "bob", fail: true},
	}
	for _, tt := range tests {
		got, err := ExpandTemplate(tt.tmpl, tt.user)
		switch {
		case tt.bad:
			if !errors.Is(err, ErrBadUser) {
				t.Errorf("ExpandTemplate(%q, %q) = %q, %v; want ErrBadUser", tt.tmpl, tt.user, got, err)
			}
		case tt.fail:
			if err == nil || errors.Is(err, ErrBadUser) {
				t.Errorf("ExpandTemplate(%q, %q) = %q, %v; want a template error", tt.tmpl, tt.user, got, err)
			}
		case err != nil || got != tt.want:
			t.Errorf("ExpandTemplate(%q, %q) = %q, %v; want %q", tt.tmpl, tt.user, got, err, tt.want)
		}
	}
}

func TestCheckTemplate(t *testing.T) {
	tests := []struct {
		tmpl string
		ok   bool
	}{
		{"/var/mail/vhosts/%d/%n", true},
		{"/home/%u/Maildir", true},
		{"/m/100%%/%u", true},
		{"/var/mail/shared", true},
		{"var/mail/%u", false},
		{"", false},
		{"/m/%x", false},
		{"/m/%", false},
		{"/m/%u/../x", false},
		{"/m/./%u", false},
		{"/m/\x00/%u", false},
		{"/m/\n/%u", false},
	}
	for _, tt := range tests {
		if err := CheckTemplate(tt.tmpl); (err == nil) != tt.ok {
			t.Errorf("CheckTemplate(%q) = %v; want ok=%v", tt.tmpl, err, tt.ok)
		}
	}
}

func FuzzExpandTemplate(f *testing.F) {
	for _, s := range [][2]string{
		{"/var/mail/vhosts/%d/%n", "bob@example.com"},
		{"/home/%u/Maildir", "bob"},
		{"/m/.%d", "a"},
		{"/m/%n%d", "..@x"},
		{"/m/x%u", "../../etc"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, tmpl, user string) {
		if CheckTemplate(tmpl) != nil {
			return
		}
		p, err := ExpandTemplate(tmpl, user)
		if err != nil {
			return
		}
		base, ok := fixedDir(tmpl)
		if !ok {
			if p != filepath.Clean(tmpl) && p != filepath.Clean(strings.ReplaceAll(tmpl, "%%", "%")) {
				t.Fatalf("template without escapes %q gave %q", tmpl, p)
			}
			return
		}
		if base == "/" {
			if p == "/" {
				t.Fatalf("ExpandTemplate(%q, %q) = the root", tmpl, user)
			}
			return
		}
		if !strings.HasPrefix(p, base+"/") {
			t.Fatalf("ExpandTemplate(%q, %q) = %q, outside %q", tmpl, user, p, base)
		}
		if strings.Contains(p, "\x00") {
			t.Fatalf("NUL in %q", p)
		}
	})
}
