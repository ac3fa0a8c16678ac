package maildir

import (
	"strings"
	"testing"
)

func TestParseName(t *testing.T) {
	tests := []struct {
		who, name string
		uniq      string
		ts        int64 // 0: no timestamp
		w         int64 // -1: no ,W=
		flags     string
		info2     bool
	}{
		{"qmail", "1700000000.4321.mail.example.com", "1700000000.4321.mail.example.com", 1700000000, -1, "", false},
		{"postfix", "1700000000.V801I2a0fM123456.mx.example.com", "1700000000.V801I2a0fM123456.mx.example.com", 1700000000, -1, "", false},
		{"postfix seen", "1700000000.V801I2a0fM123456.mx:2,S", "1700000000.V801I2a0fM123456.mx", 1700000000, -1, "S", true},
		{"dovecot new", "1700000001.M402937P9187.mx,S=1234,W=1260", "1700000001.M402937P9187.mx,S=1234,W=1260", 1700000001, 1260, "", false},
		{"dovecot cur", "1700000001.M402937P9187.mx,S=1234,W=1260:2,RS", "1700000001.M402937P9187.mx,S=1234,W=1260", 1700000001, 1260, "RS", true},
		{"dovecot keywords", "1700000001.M1P2.mx,S=10,W=12:2,Sab", "1700000001.M1P2.mx,S=10,W=12", 1700000001, 12, "Sab", true},
		{"courier/maildrop", "1700000002.M123456P4321V0000000000000801I00000000002a0f.mx,S=99", "1700000002.M123456P4321V0000000000000801I00000000002a0f.mx,S=99", 1700000002, -1, "", false},
		{"procmail", "1700000003.4321_0.mx", "1700000003.4321_0.mx", 1700000003, -1, "", false},
		{"mbsync", "1700000004.4321_1.host,U=42:2,FS", "1700000004.4321_1.host,U=42", 1700000004, -1, "FS", true},
		{"W not a number", "1700000005.x,W=12a", "1700000005.x,W=12a", 1700000005, -1, "", false},
		{"W then more", "1700000005.x,W=12,Z=1", "1700000005.x,W=12,Z=1", 1700000005, 12, "", false},
		{"experimental info", "1700000006.x:1,foo", "1700000006.x", 1700000006, -1, "", false},
		{"no timestamp", "mymessage", "mymessage", 0, -1, "", false},
		{"digits only", "12345", "12345", 0, -1, "", false},
		{"leading colon", ":2,S", "", 0, -1, "S", true},
		{"empty", "", "", 0, -1, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.who, func(t *testing.T) {
			ni := parseName(tt.name)
			if u := tt.name[:ni.uniqLen]; u != tt.uniq {
				t.Errorf("uniq = %q, want %q", u, tt.uniq)
			}
			if (tt.ts != 0) != ni.hasTS || ni.ts != tt.ts {
				t.Errorf("ts = %d (%v), want %d", ni.ts, ni.hasTS, tt.ts)
			}
			if (tt.w >= 0) != ni.hasW || (ni.hasW && ni.wsize != tt.w) {
				t.Errorf("W = %d (%v), want %d", ni.wsize, ni.hasW, tt.w)
			}
			if ni.flags != tt.flags || ni.info2 != tt.info2 {
				t.Errorf("flags = %q (%v), want %q (%v)", ni.flags, ni.info2, tt.flags, tt.info2)
			}
		})
	}
}

func TestSeenName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"1.a.host", "1.a.host:2,S"},
		{"1.a.host:2,", "1.a.host:2,S"},
		{"1.a.host:2,S", "1.a.host:2,S"},
		{"1.a.host:2,RF", "1.a.host:2,FRS"},
		{"1.a.host:2,Tba", "1.a.host:2,STab"},
		{"1.a.host,S=1,W=2:2,P", "1.a.host,S=1,W=2:2,PS"},
		{"1.a.host:1,x", ""},
	}
	for _, tt := range tests {
		got, ok := seenName(tt.in, parseName(tt.in))
		if tt.want == "" {
			if ok {
				t.Errorf("seenName(%q) = %q, want left alone", tt.in, got)
			}
			continue
		}
		if !ok || got != tt.want {
			t.Errorf("seenName(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
}

func FuzzParseName(f *testing.F) {
	for _, s := range []string{
		"1700000001.M402937P9187.mx,S=1234,W=1260:2,RS", "1700000003.4321_0.mx", ":2,S", ":", "",
		"1.x,W=,W=5", "9999999999999999999999.x", "a:2,", "x,W=99999999999999999999",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		ni := parseName(name)
		if ni.uniqLen < 0 || ni.uniqLen > len(name) {
			t.Fatalf("uniqLen %d out of range", ni.uniqLen)
		}
		u := name[:ni.uniqLen]
		if strings.Contains(u, ":") {
			t.Fatalf("unique name %q contains ':'", u)
		}
		if ni.hasW && ni.wsize < 0 || ni.ts < 0 {
			t.Fatalf("negative number: %+v", ni)
		}
		if !sameUnique(name, u) {
			t.Fatalf("sameUnique(%q, %q) = false", name, u)
		}
		if s, ok := seenName(name, ni); ok {
			sn := parseName(s)
			if s[:sn.uniqLen] != u || !sn.info2 || !strings.Contains(sn.flags, "S") {
				t.Fatalf("seenName(%q) = %q: unique name or S flag lost", name, s)
			}
			if s2, _ := seenName(s, sn); s2 != s {
				t.Fatalf("seenName not idempotent: %q -> %q", s, s2)
			}
		}
		key := u
		if key == "" {
			key = name
		}
		if !uidOK(u) && !uidOK(derivedUID(key)) {
			t.Fatalf("no valid uid for %q", name)
		}
	})
}

// sameUnique reports whether file name n has the unique name u.
func sameUnique(n, u string) bool {
	return strings.HasPrefix(n, u) && (len(n) == len(u) || n[len(u)] == ':')
}
