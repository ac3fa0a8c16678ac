package daemon

import (
	"encoding/base64"
	"errors"
	"strings"
)

// errPlainMalformed is a SASL PLAIN message that is not
// authzid NUL authcid NUL passwd with a non-empty authcid.
var errPlainMalformed = errors.New("malformed PLAIN response")

// decodePlain decodes a base64 SASL PLAIN response (RFC 4616).
func decodePlain(b64 string) (authzid, authcid, passwd string, err error) {
	// The decoder skips CR and LF; a response holding them is not base64.
	if strings.ContainsAny(b64, "\r\n") {
		return "", "", "", base64.CorruptInputError(strings.IndexAny(b64, "\r\n"))
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return "", "", "", err
	}
	authzid, rest, ok := strings.Cut(string(raw), "\x00")
	if !ok {
		return "", "", "", errPlainMalformed
	}
	authcid, passwd, ok = strings.Cut(rest, "\x00")
	if !ok || authcid == "" || strings.IndexByte(passwd, 0) >= 0 {
		return "", "", "", errPlainMalformed
	}
	return authzid, authcid, passwd, nil
}

// tlsRequired is the answer to credentials on a connection that may not
// carry them.
func (s *session) tlsRequired() string {
	if s.cfg.TLSConfig != nil {
		return "-ERR [AUTH] TLS is required: use STLS or port 995"
	}
	return "-ERR [AUTH] authentication is not allowed on an unencrypted connection"
}

func (s *session) cmdUser(rest string) bool {
	if !s.authAllowed() {
		s.srv.logger.Info("login refused", "remote_ip", s.remoteIPString(), "mech", "USER", "reason", "TLS required")
		return s.refuse(s.tlsRequired())
	}
	args := splitArgs(rest)
	if len(args) != 1 {
		return s.bad("USER takes one argument: the user name")
	}
	s.user = args[0]
	s.reply("+OK")
	return true
}

func (s *session) cmdPass(rest string, hasRest bool) bool {
	if !s.authAllowed() {
		s.srv.logger.Info("login refused", "remote_ip", s.remoteIPString(), "mech", "USER", "reason", "TLS required")
		return s.refuse(s.tlsRequired())
	}
	if s.user == "" {
		return s.bad("send USER first")
	}
	user := s.user
	// RFC 1939: after a failed PASS the client starts again with USER.
	s.user = ""
	if !hasRest {
		return s.bad("PASS takes the password as its argument")
	}
	return s.login(user, rest, "USER")
}

// cmdAuth is the SASL AUTH command of RFC 5034, with the PLAIN mechanism.
func (s *session) cmdAuth(rest string) bool {
	args := splitArgs(rest)
	if len(args) == 0 {
		// Mechanism discovery, as Outlook does it.
		s.reply("+OK")
		if s.authAllowed() {
			s.reply("PLAIN")
		}
		s.reply(".")
		return true
	}
	if len(args) > 2 {
		return s.bad("too many arguments")
	}
	if upperASCII(args[0]) != "PLAIN" {
		// Not a bad command: clients may probe mechanisms.
		return s.refuse("-ERR unsupported SASL mechanism")
	}
	if !s.authAllowed() {
		s.srv.logger.Info("login refused", "remote_ip", s.remoteIPString(), "mech", "PLAIN", "reason", "TLS required")
		return s.refuse(s.tlsRequired())
	}
	s.user = ""
	var resp string
	if len(args) == 2 {
		resp = args[1]
		if resp == "=" {
			resp = ""
		}
	} else {
		s.reply("+ ")
		line, err := s.readAuthLine()
		switch {
		case err == nil:
			resp = line
		case errors.Is(err, errLineTooLong):
			return s.bad("SASL response too long")
		case errors.Is(err, errNUL):
			return s.bad("NUL byte in SASL response")
		default:
			// The read loop reports the error when it reads again: the
			// connection is gone or the server is shutting down.
			s.srv.logger.Debug("reading SASL response", "remote_ip", s.remoteIPString(), "err", err)
			return false
		}
	}
	if resp == "*" {
		s.reply("-ERR authentication cancelled")
		return true
	}
	authzid, authcid, passwd, err := decodePlain(resp)
	if err != nil {
		if errors.Is(err, errPlainMalformed) {
			return s.bad("malformed PLAIN response")
		}
		return s.bad("invalid base64 in SASL response")
	}
	if authzid != "" && authzid != authcid {
		s.srv.logger.Warn("login failed", "remote_ip", s.remoteIPString(), "user", authcid, "mech", "PLAIN",
			"reason", "authorization identity differs")
		return s.authFailed("-ERR [AUTH] logging in as another user is not supported")
	}
	return s.login(authcid, passwd, "PLAIN")
}

// login asks the backend and moves to TRANSACTION on success.
func (s *session) login(user, pass, mech string) bool {
	mb, err := s.srv.backend.Login(s.ctx, user, pass, ConnInfo{
		RemoteAddr: s.remote,
		LocalAddr:  s.local,
		TLS:        s.tls,
	})
	if err == nil && mb == nil {
		err = errors.New("backend returned no mailbox")
	}
	if err != nil && mb != nil {
		// A backend that failed but opened the mailbox anyway must not
		// keep it locked.
		mb.Close()
	}
	if err != nil {
		return s.loginFailed(user, mech, err)
	}
	s.mbox = mb
	s.authUser = user
	s.state = stateTrans
	s.badCmds = 0
	n := mb.Len()
	s.deleted = newBitset(n)
	s.retrieved = newBitset(n)
	s.undeleteAll()
	s.srv.logger.Info("login", append([]any{"remote_ip", s.remoteIPString(), "user", user, "mech", mech, "tls", s.tls,
		"messages", n, "octets", s.leftOctets}, loginAttrs(mb)...)...)
	s.reply(s.maildropLine())
	return true
}

func (s *session) loginFailed(user, mech string, err error) bool {
	var e *Error
	switch {
	case errors.As(err, &e) && e.Code == CodeAuth:
		s.srv.logger.Warn("login failed", "remote_ip", s.remoteIPString(), "user", user, "mech", mech,
			"reason", "bad credentials")
		return s.authFailed("-ERR [AUTH] authentication failed")
	// Only bad credentials are logged as "login failed": that line is what
	// fail2ban counts, and a mailbox locked by the user's other client or
	// a server fault must not get anyone banned.
	case errors.As(err, &e) && e.Code == CodeInUse:
		s.srv.logger.Info("login refused", "remote_ip", s.remoteIPString(), "user", user, "mech", mech,
			"reason", "mailbox in use")
		s.reply(errLine(e))
	case errors.As(err, &e):
		s.srv.logger.Error("login error", "remote_ip", s.remoteIPString(), "user", user, "mech", mech,
			"reason", e.Text, "err", err)
		s.reply(errLine(e))
	default:
		s.srv.logger.Error("login error", "remote_ip", s.remoteIPString(), "user", user, "mech", mech,
			"reason", "internal error", "err", err)
		s.reply("-ERR [SYS/TEMP] internal error")
	}
	return true
}

// authFailed answers a failed login after AuthFailureDelay, and closes the
// connection after MaxAuthFailures.
func (s *session) authFailed(line string) bool {
	s.authFailures++
	s.flush()
	if !s.sleep(s.cfg.AuthFailureDelay) {
		s.reply("-ERR [SYS/TEMP] server shutting down")
		return false
	}
	if m := s.cfg.MaxAuthFailures; m > 0 && s.authFailures >= m {
		s.reply("-ERR [AUTH] too many authentication failures")
		return false
	}
	s.reply(line)
	return true
}

// errLine is the -ERR line for e.
func errLine(e *Error) string {
	text := strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, e.Text)
	if text == "" {
		text = "failed"
	}
	if e.Code == "" {
		return "-ERR " + text
	}
	return "-ERR [" + e.Code + "] " + text
}
