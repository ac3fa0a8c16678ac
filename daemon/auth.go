package daemon

import (
	"encoding/base64"
	"errors"
	"os"
	"strings"
	"time"
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

// tlsRefusal logs and refuses credentials sent for mech on a connection
// that may not carry them.
func (s *session) tlsRefusal(mech string) error {
	s.log.Info("login refused", "mech", mech, "reason", "TLS required")
	return refusal(s.tlsRequired())
}

func (s *session) cmdUser(rest string, _ bool) error {
	if !s.authAllowed() {
		s.loggedIn("USER", LoginRefused, "", 0)
		return s.tlsRefusal("USER")
	}
	args := splitArgs(rest)
	if len(args) != 1 {
		return badCommand("USER takes one argument: the user name")
	}
	s.user = args[0]
	s.reply("+OK")
	return nil
}

func (s *session) cmdPass(rest string, hasRest bool) error {
	if !s.authAllowed() {
		return s.tlsRefusal("USER")
	}
	if s.user == "" {
		return badCommand("send USER first")
	}
	user := s.user
	// RFC 1939: after a failed PASS the client starts again with USER.
	s.user = ""
	if !hasRest {
		return badCommand("PASS takes the password as its argument")
	}
	return s.login(user, "USER", func(ci ConnInfo) (Mailbox, error) {
		return s.srv.backend.Login(s.ctx, user, rest, ci)
	})
}

// cmdAuth is the SASL AUTH command of RFC 5034, with the PLAIN mechanism.
func (s *session) cmdAuth(rest string, _ bool) error {
	args := splitArgs(rest)
	if len(args) == 0 {
		// Mechanism discovery, as Outlook does it.
		s.reply("+OK")
		if s.authAllowed() {
			s.reply("PLAIN")
		}
		s.reply(".")
		return nil
	}
	if len(args) > 2 {
		return badCommand("too many arguments")
	}
	if upperASCII(args[0]) != "PLAIN" {
		// Not a bad command: clients may probe mechanisms.
		return refusal("-ERR unsupported SASL mechanism")
	}
	if !s.authAllowed() {
		s.loggedIn("PLAIN", LoginRefused, "", 0)
		return s.tlsRefusal("PLAIN")
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
			s.logSASLResponse(line)
			resp = line
		case errors.Is(err, errLineTooLong):
			return badCommand("SASL response too long")
		case errors.Is(err, errNUL):
			return badCommand("NUL byte in SASL response")
		case errors.Is(err, os.ErrDeadlineExceeded) && s.loginExpired():
			s.loginTimedOut()
			return errHangUp
		default:
			// The read loop reports the error when it reads again: the
			// connection is gone or the server is shutting down.
			s.log.Debug("reading SASL response", "err", err)
			return errHangUp
		}
	}
	if resp == "*" {
		return &Error{Text: "authentication cancelled"}
	}
	authzid, authcid, passwd, err := decodePlain(resp)
	if err != nil {
		if errors.Is(err, errPlainMalformed) {
			return badCommand("malformed PLAIN response")
		}
		return badCommand("invalid base64 in SASL response")
	}
	if authzid != "" && authzid != authcid {
		s.log.Warn("login failed", "user", authcid, "mech", "PLAIN",
			"reason", "authorization identity differs")
		s.loggedIn("PLAIN", LoginFailure, authcid, 0)
		return authFailure{line: "-ERR [AUTH] logging in as another user is not supported"}
	}
	return s.login(authcid, "PLAIN", func(ci ConnInfo) (Mailbox, error) {
		return s.srv.backend.Login(s.ctx, authcid, passwd, ci)
	})
}

// login asks the backend (through auth) and moves to TRANSACTION on
// success.
func (s *session) login(user, mech string, auth func(ConnInfo) (Mailbox, error)) error {
	t0 := time.Now()
	mb, err := auth(ConnInfo{
		RemoteAddr: s.remote,
		LocalAddr:  s.local,
		TLS:        s.tls,
	})
	d := time.Since(t0)
	if err == nil && mb == nil {
		err = errors.New("backend returned no mailbox")
	}
	if err != nil && mb != nil {
		// A backend that failed but opened the mailbox anyway must not
		// keep it locked.
		mb.Close()
	}
	if err != nil {
		return s.loginFailed(user, mech, err, d)
	}
	s.srv.penalty.reset(s.remoteIP)
	s.policy = UserPolicy{LoginDelay: s.cfg.LoginDelay, Expire: s.cfg.Expire}
	if pm, ok := mb.(PolicyMailbox); ok {
		s.policy = pm.Policy()
	}
	s.mbox = mb
	s.authUser = user
	s.state = stateTrans
	s.badCmds = 0
	n := mb.Len()
	s.deleted = newBitset(n)
	s.retrieved = newBitset(n)
	s.undeleteAll()
	s.stats = logoutStats{opened: true, messages: n, size: s.leftOctets}
	s.loggedIn(mech, LoginSuccess, user, d)
	s.log.Info("login", append([]any{"user", user, "mech", mech, "tls", s.tls,
		"messages", n, "octets", s.leftOctets}, loginAttrs(mb)...)...)
	s.reply(s.maildropLine())
	return nil
}

func (s *session) loginFailed(user, mech string, err error, d time.Duration) error {
	var e *Error
	result := LoginError
	switch {
	case errors.As(err, &e) && e.Verified:
		// The credentials were right; a policy (nologin, LOGIN-DELAY,
		// allow_nets) said no.
		result = LoginRefused
	case CodeOf(err) == CodeAuth:
		result = LoginFailure
	case CodeOf(err) == CodeInUse:
		result = LoginInUse
	}
	s.loggedIn(mech, result, user, d)
	switch {
	case errors.As(err, &e) && e.Verified:
		reason := e.Reason
		if reason == "" {
			reason = e.Text
		}
		s.log.Info("login refused", "user", user, "mech", mech, "reason", reason)
		if e.Code == CodeAuth {
			// A disabled account waits like a failure, so that its answer
			// cannot be told apart by timing from afar.
			return authFailure{line: errLine(e), verified: true}
		}
		return e
	case errors.As(err, &e) && e.Code == CodeAuth:
		reason := e.Reason
		if reason == "" {
			reason = "bad credentials"
		}
		s.log.Warn("login failed", "user", user, "mech", mech,
			"reason", reason)
		return authFailure{line: errLine(e)}
	// Only bad credentials are logged as "login failed": that line is what
	// fail2ban counts, and a mailbox locked by the user's other client or
	// a server fault must not get anyone banned.
	case errors.As(err, &e) && e.Code == CodeInUse:
		s.log.Info("login refused", "user", user, "mech", mech,
			"reason", "mailbox in use")
		return e
	case errors.As(err, &e):
		s.log.Error("login error", "user", user, "mech", mech,
			"reason", e.Text, "err", err)
		return e
	default:
		s.log.Error("login error", "user", user, "mech", mech,
			"reason", "internal error", "err", err)
		return &Error{Code: CodeSysTemp, Text: "internal error"}
	}
}

// authFailed answers a failed login after the failure delay (doubled for
// each recent failure from the client's address, see penalty.go), and
// closes the connection after MaxAuthFailures.
func (s *session) authFailed(f authFailure) bool {
	line := f.line
	s.authFailures++
	s.flush()
	var delay time.Duration
	if f.verified {
		delay = s.srv.penalty.current(s.remoteIP, s.cfg.AuthFailureDelay, s.cfg.now())
	} else {
		delay = s.srv.penalty.fail(s.remoteIP, s.cfg.AuthFailureDelay, s.cfg.now())
	}
	if !s.sleep(delay) {
		s.reply("-ERR [SYS/TEMP] server shutting down")
		return false
	}
	if m := s.cfg.MaxAuthFailures; m > 0 && s.authFailures >= m {
		s.reply("-ERR [AUTH] too many authentication failures")
		s.end = EndClosed
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
