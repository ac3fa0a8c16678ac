package e2e

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// logLine is one slog text line: attribute key -> value (unquoted).
type logLine map[string]string

// parseLogLine parses log/slog's TextHandler output: space-separated
// key=value pairs, values quoted Go-style when they need it.
func parseLogLine(s string) (logLine, error) {
	l := logLine{}
	for {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			break
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("no key=value at %q", s)
		}
		key := s[:eq]
		if strings.ContainsAny(key, " \"") {
			return nil, fmt.Errorf("bad key %q", key)
		}
		s = s[eq+1:]
		var val string
		if strings.HasPrefix(s, `"`) {
			q, err := strconv.QuotedPrefix(s)
			if err != nil {
				return nil, fmt.Errorf("value of %s: %w", key, err)
			}
			val, err = strconv.Unquote(q)
			if err != nil {
				return nil, fmt.Errorf("value of %s: %w", key, err)
			}
			s = s[len(q):]
			if s != "" && s[0] != ' ' {
				return nil, fmt.Errorf("junk after quoted value of %s: %q", key, s)
			}
		} else {
			sp := strings.IndexByte(s, ' ')
			if sp < 0 {
				sp = len(s)
			}
			val, s = s[:sp], s[sp:]
		}
		if _, dup := l[key]; dup {
			return nil, fmt.Errorf("key %s twice", key)
		}
		l[key] = val
	}
	if _, ok := l["msg"]; !ok || l["level"] == "" {
		return nil, errors.New("no level or msg")
	}
	return l, nil
}

func TestParseLogLine(t *testing.T) {
	tests := []struct {
		in   string
		want logLine
		bad  bool
	}{
		{in: `time=2026-11-22T04:05:06.123Z level=INFO msg=connect remote=127.0.0.1:4242 listener=pop3`,
			want: logLine{"time": "2026-11-22T04:05:06.123Z", "level": "INFO", "msg": "connect", "remote": "127.0.0.1:4242", "listener": "pop3"}},
		{in: `level=WARN msg="login failed" remote_ip=::1 user="a b\"c" mech=USER reason="bad credentials"`,
			want: logLine{"level": "WARN", "msg": "login failed", "remote_ip": "::1", "user": `a b"c`, "mech": "USER", "reason": "bad credentials"}},
		{in: `level=INFO msg=x empty=`, want: logLine{"level": "INFO", "msg": "x", "empty": ""}},
		{in: `level=INFO msg="unterminated`, bad: true},
		{in: `level=INFO msg="a"b`, bad: true},
		{in: `no pairs here`, bad: true},
		{in: `msg=x`, bad: true},
		{in: `level=INFO msg=x msg=y`, bad: true},
	}
	for _, tt := range tests {
		got, err := parseLogLine(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("parseLogLine(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseLogLine(%q): %v", tt.in, err)
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("parseLogLine(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// FuzzParseLogLine checks that the parser never panics and that what it
// accepts survives a re-encoding in slog's style.
func FuzzParseLogLine(f *testing.F) {
	f.Add(`time=2026-11-22T04:05:06.123Z level=INFO msg=connect remote=127.0.0.1:4242 listener=pop3`)
	f.Add(`level=WARN msg="login failed" remote_ip=::1 user="a b\"c" mech=USER`)
	f.Add(`level=INFO msg="\xff" a==b`)
	f.Fuzz(func(t *testing.T, s string) {
		l, err := parseLogLine(s)
		if err != nil {
			return
		}
		var b strings.Builder
		for k, v := range l {
			fmt.Fprintf(&b, "%s=%s ", k, strconv.Quote(v))
		}
		l2, err := parseLogLine(b.String())
		if err != nil {
			t.Fatalf("re-encoded %q: %v", b.String(), err)
		}
		if fmt.Sprint(l) != fmt.Sprint(l2) {
			t.Fatalf("round trip: %v != %v", l, l2)
		}
	})
}
