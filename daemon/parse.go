package daemon

import (
	"math"
	"strings"
)

// parseCommand splits a command line into its keyword, upper-cased (RFC
// 1939 keywords are case-insensitive), and the rest of the line after the
// first space, unchanged (PASS needs it verbatim). hasRest tells "PASS"
// from "PASS ".
func parseCommand(line string) (name, rest string, hasRest bool) {
	name, rest, hasRest = strings.Cut(line, " ")
	return upperASCII(name), rest, hasRest
}

// upperASCII upper-cases ASCII letters only, so that no Unicode folding
// can turn a foreign keyword into a known one.
func upperASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'a' && c <= 'z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'a' && c <= 'z' {
					b[j] = c - 'a' + 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// splitArgs splits command arguments at runs of spaces.
func splitArgs(rest string) []string {
	return strings.FieldsFunc(rest, func(r rune) bool { return r == ' ' })
}

// parseNumber parses a decimal number: ASCII digits only, no sign. A
// number too big for int64 saturates to math.MaxInt64, which is out of
// range wherever a number is used.
func parseNumber(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			n = math.MaxInt64
			for _, c := range []byte(s[i+1:]) {
				if c < '0' || c > '9' {
					return 0, false
				}
			}
			return n, true
		}
		n = n*10 + d
	}
	return n, true
}
