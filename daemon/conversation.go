package daemon

import (
	"log/slog"
	"strings"
)

// The conversation log: at debug level every command line a client sends
// and the status line of every response, for admins chasing a client's
// problem. Secrets are masked (PASS argument, APOP digest, AUTH initial
// response and SASL responses); message contents and the other lines of
// multi-line responses are never logged.

// masked replaces a secret in a logged line.
const masked = "***"

// debugOn reports whether conversation lines would be logged, so that a
// session pays nothing for them otherwise.
func (s *session) debugOn() bool {
	return s.srv.logger.Enabled(s.ctx, slog.LevelDebug)
}

// logCommand logs a command line, its secrets masked.
func (s *session) logCommand(line string) {
	if s.debugOn() {
		s.log.Debug("command", "line", maskCommand(line))
	}
}

// logSASLResponse logs a client's SASL response line, masked: it carries
// the credentials. The cancel "*" (RFC 5034 section 4) is not a secret.
func (s *session) logSASLResponse(line string) {
	if s.debugOn() {
		if line != "*" {
			line = masked
		}
		s.log.Debug("sasl response", "line", line)
	}
}

// logReply logs line if it is a status line ("+OK", "-ERR" or a SASL
// challenge "+ "); the other lines of multi-line responses are not logged.
func (s *session) logReply(line string) {
	if !strings.HasPrefix(line, "+") && !strings.HasPrefix(line, "-ERR") {
		return
	}
	if s.debugOn() {
		s.log.Debug("response", "line", line)
	}
}

// maskCommand returns line with its secret masked: the argument of PASS,
// the digest of APOP, the initial response of AUTH. A line whose command
// only starts with one of these names ("PASS\tsecret", "PASSsecret") is
// masked after the name too, since a client's typo must not put its
// password in the log.
func maskCommand(line string) string {
	name, rest, hasRest := strings.Cut(line, " ")
	switch upperASCII(name) {
	case "PASS":
		if hasRest {
			return name + " " + masked
		}
		return line
	case "APOP":
		if user, _, ok := strings.Cut(rest, " "); ok {
			return name + " " + user + " " + masked
		}
		return line
	case "AUTH":
		if mech, _, ok := strings.Cut(rest, " "); ok {
			return name + " " + mech + " " + masked
		}
		return line
	}
	if len(name) > 4 {
		switch upperASCII(name[:4]) {
		case "PASS", "APOP", "AUTH":
			return name[:4] + masked
		}
	}
	return line
}
