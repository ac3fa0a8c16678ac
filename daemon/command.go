package daemon

import (
	"errors"
	"strings"
)

// states is a set of session states a command is valid in.
type states uint8

const (
	inAuth  states = 1 << stateAuth
	inTrans states = 1 << stateTrans
	inAny          = inAuth | inTrans
)

func (ss states) has(st state) bool { return ss&(1<<st) != 0 }

// handler carries out one command. arg is the rest of the line after the
// first space, verbatim; hasArg tells "PASS" from "PASS ". A handler writes
// its positive answer itself and returns nil; any failure is returned as
// an error, and respond is the one place that turns it into a response.
type handler func(s *session, arg string, hasArg bool) error

// command is one entry of the command table.
type command struct {
	states   states
	noArgs   bool // any argument is a bad command
	messages bool // needs the messages of a LazyMailbox read
	run      handler
}

// commandTable is every command the engine knows, keyed by its upper-case
// keyword. A new command is one entry here and one file with its handler.
// It is built once per Server (no package-level mutable state).
func commandTable() map[string]command {
	return map[string]command{
		"CAPA": {states: inAny, noArgs: true, run: (*session).cmdCapa},
		"QUIT": {states: inAny, noArgs: true, run: (*session).cmdQuit},
		"USER": {states: inAuth, run: (*session).cmdUser},
		"PASS": {states: inAuth, run: (*session).cmdPass},
		"AUTH": {states: inAuth, run: (*session).cmdAuth},
		"APOP": {states: inAuth, run: (*session).cmdApop},
		"STLS": {states: inAuth, noArgs: true, run: (*session).cmdStls},
		"STAT": {states: inTrans, noArgs: true, run: (*session).cmdStat},
		"LIST": {states: inTrans, messages: true, run: (*session).cmdList},
		"UIDL": {states: inTrans, messages: true, run: (*session).cmdUidl},
		"RETR": {states: inTrans, messages: true, run: (*session).cmdRetr},
		"TOP":  {states: inTrans, messages: true, run: (*session).cmdTop},
		"DELE": {states: inTrans, messages: true, run: (*session).cmdDele},
		"NOOP": {states: inTrans, noArgs: true, run: (*session).cmdNoop},
		"RSET": {states: inTrans, noArgs: true, run: (*session).cmdRset},
	}
}

// handle answers one command line; false means the connection must close.
func (s *session) handle(line string) bool {
	name, arg, hasArg := parseCommand(line)
	return s.respond(s.dispatch(name, arg, hasArg))
}

// dispatch finds the command and checks that it may run now.
func (s *session) dispatch(name, arg string, hasArg bool) error {
	c, ok := s.srv.commands[name]
	if !ok {
		return badCommand("unknown command")
	}
	if !c.states.has(s.state) {
		if s.state == stateAuth {
			return badCommand("not logged in")
		}
		return badCommand("already logged in")
	}
	// Only spaces separate arguments: anything else is one.
	if c.noArgs && strings.TrimLeft(arg, " ") != "" {
		return badCommand("no arguments expected")
	}
	if c.messages {
		if err := s.needMessages(); err != nil {
			return err
		}
	}
	return c.run(s, arg, hasArg)
}

// badCommand is a command that cannot be carried out as given. It is
// answered "-ERR " + its text and counts toward the bad-command limit.
type badCommand string

func (e badCommand) Error() string { return string(e) }

// refusal is a login attempt this connection may not make (no TLS, an
// unknown SASL mechanism): the line is the answer, and it counts toward
// maxRefusedBeforeLogin instead of the bad-command limit.
type refusal string

func (e refusal) Error() string { return string(e) }

// authFailure is a failed login: its line is sent after the failure delay,
// and it counts toward MaxAuthFailures. Unless verified (the credentials
// were right, a policy refused), it raises the client address's penalty.
type authFailure struct {
	line     string
	verified bool
}

func (e authFailure) Error() string { return e.line }

// closeConn ends the session after sending its line, when there is one.
type closeConn string

func (e closeConn) Error() string { return "connection closed: " + string(e) }

// errHangUp ends the session without a further answer: the connection is
// gone, or the answer has already been sent.
const errHangUp = closeConn("")

// respond turns the outcome of a command into a response; false means the
// connection must close. Internal errors never reach the client.
func (s *session) respond(err error) bool {
	if err == nil {
		return true
	}
	var (
		bad  badCommand
		ref  refusal
		auth authFailure
		cc   closeConn
		e    *Error
	)
	switch {
	case errors.As(err, &bad):
		return s.bad(string(bad))
	case errors.As(err, &ref):
		return s.refuse(string(ref))
	case errors.As(err, &auth):
		return s.authFailed(auth)
	case errors.As(err, &cc):
		if cc != "" {
			s.reply(string(cc))
		}
		return false
	case errors.As(err, &e):
		s.reply(errLine(e))
		return true
	}
	s.log.Error("command failed", "user", s.authUser, "err", err)
	s.reply("-ERR [SYS/TEMP] internal error")
	return true
}
