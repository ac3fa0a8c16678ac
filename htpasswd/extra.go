package htpasswd

import (
	"errors"
	"fmt"
	"strings"
)

// Field is one extra field of a Dovecot passwd-file line
// (user:password:uid:gid:gecos:home:shell:EXTRA): "key=value", or a bare
// "key" (Value "", Bare true) such as nologin. The file keeps every field;
// what a key means is the caller's business (pop3d's policy).
type Field struct {
	Key   string
	Value string
	Bare  bool // written without '=': a flag
}

// ExtraChecker validates a user's extra fields when the file is loaded
// and by Check. An error refuses the user (the line is reported with its
// file and line number); warnings are reported but change nothing.
type ExtraChecker func(fields []Field) (warnings []string, err error)

// maxExtraFields bounds the fields of one line.
const maxExtraFields = 64

// ParseExtra parses the extra fields of a passwd-file line: fields
// separated by spaces or tabs, each "key", "key=value" or
// `key="value with spaces"` (quotes are pop3d's addition for reason=;
// Dovecot splits at every space). Keys are letters, digits, '_', '-' and
// '.'. Malformed text is an error, never a guess: a field such as
// allow_nets must not be half read.
func ParseExtra(s string) ([]Field, error) {
	var fields []Field
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return fields, nil
		}
		if len(fields) == maxExtraFields {
			return nil, fmt.Errorf("more than %d extra fields", maxExtraFields)
		}
		end := strings.IndexAny(s, " \t=")
		if end < 0 {
			end = len(s)
		}
		key := s[:end]
		if err := checkFieldKey(key); err != nil {
			return nil, err
		}
		s = s[end:]
		if s == "" || s[0] != '=' {
			fields = append(fields, Field{Key: key, Bare: true})
			continue
		}
		s = s[1:]
		var val string
		if strings.HasPrefix(s, `"`) {
			q := strings.IndexByte(s[1:], '"')
			if q < 0 {
				return nil, fmt.Errorf("extra field %s: unterminated quote", key)
			}
			val, s = s[1:1+q], s[2+q:]
			if s != "" && s[0] != ' ' && s[0] != '\t' {
				return nil, fmt.Errorf("extra field %s: text after the closing quote", key)
			}
		} else {
			end := strings.IndexAny(s, " \t")
			if end < 0 {
				end = len(s)
			}
			val, s = s[:end], s[end:]
			if strings.IndexByte(val, '"') >= 0 {
				return nil, fmt.Errorf("extra field %s: quote inside a value", key)
			}
		}
		for _, r := range val {
			if r < 0x20 || r == 0x7f {
				return nil, fmt.Errorf("extra field %s: control character in value", key)
			}
		}
		fields = append(fields, Field{Key: key, Value: val})
	}
}

func checkFieldKey(key string) error {
	if key == "" {
		return errors.New("extra field without a key")
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("extra field key %q: only letters, digits, '_', '-' and '.' are allowed", key)
		}
	}
	return nil
}
