package daemon

import (
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
)

// handle answers one command line; false means the connection must close.
func (s *session) handle(line string) bool {
	name, rest, hasRest := parseCommand(line)
	switch name {
	case "CAPA":
		return s.noArgs(rest, s.cmdCapa)
	case "QUIT":
		return s.noArgs(rest, s.cmdQuit)
	}
	if s.state == stateAuth {
		switch name {
		case "USER":
			return s.cmdUser(rest)
		case "PASS":
			return s.cmdPass(rest, hasRest)
		case "AUTH":
			return s.cmdAuth(rest)
		case "STLS":
			return s.noArgs(rest, s.cmdStls)
		case "STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL":
			return s.bad("not logged in")
		}
		return s.bad("unknown command")
	}
	switch name {
	case "STAT":
		return s.noArgs(rest, s.cmdStat)
	case "LIST":
		return s.cmdList(rest, false)
	case "UIDL":
		return s.cmdList(rest, true)
	case "RETR":
		return s.cmdRetr(rest)
	case "TOP":
		return s.cmdTop(rest)
	case "DELE":
		return s.cmdDele(rest)
	case "NOOP":
		return s.noArgs(rest, func() bool { s.reply("+OK"); return true })
	case "RSET":
		return s.noArgs(rest, s.cmdRset)
	case "USER", "PASS", "AUTH", "STLS":
		return s.bad("already logged in")
	}
	return s.bad("unknown command")
}

// noArgs runs f for a command that takes no arguments.
func (s *session) noArgs(rest string, f func() bool) bool {
	// Only spaces separate arguments: anything else is one.
	if strings.TrimLeft(rest, " ") != "" {
		return s.bad("no arguments expected")
	}
	return f()
}

func (s *session) cmdCapa() bool {
	s.reply("+OK capability list follows")
	s.reply("TOP")
	if s.state == stateAuth && s.authAllowed() {
		s.reply("USER")
	}
	s.reply("UIDL")
	s.reply("PIPELINING")
	s.reply("RESP-CODES")
	s.reply("AUTH-RESP-CODE")
	s.reply("EXPIRE NEVER")
	if s.cfg.Implementation != "" {
		s.reply("IMPLEMENTATION " + s.cfg.Implementation)
	}
	if s.stlsAvailable() {
		s.reply("STLS")
	}
	if s.state == stateAuth && s.authAllowed() {
		s.reply("SASL PLAIN")
	}
	s.reply(".")
	return true
}

func (s *session) stlsAvailable() bool {
	return s.state == stateAuth && !s.tls && s.mode == ModePlain && s.cfg.TLSConfig != nil
}

// cmdStls is RFC 2595 STLS.
func (s *session) cmdStls() bool {
	if s.tls {
		return s.bad("TLS already active")
	}
	if !s.stlsAvailable() {
		return s.bad("STLS not available")
	}
	s.reply("+OK begin TLS negotiation")
	if err := s.flush(); err != nil {
		return false
	}
	// Whatever the client sent after STLS in plain text is thrown away
	// (CVE-2011-0411): Reset drops the buffered bytes.
	s.br.Reset(nil)
	if err := s.handshake(); err != nil {
		s.srv.logger.Info("tls handshake failed", "remote_ip", s.remoteIPString(), "err", err)
		return false
	}
	s.br.Reset(s.conn)
	s.bw.Reset(&s.out)
	s.user = ""
	return true
}

func (s *session) cmdQuit() bool {
	if s.state == stateAuth {
		s.reply("+OK bye")
		return false
	}
	s.state = stateUpdate
	s.updating.Store(true)
	var deleted, retrieved []int
	for i := range s.mbox.Len() {
		switch {
		case s.deleted.has(i):
			deleted = append(deleted, i)
		case s.retrieved.has(i):
			retrieved = append(retrieved, i)
		}
	}
	mb := s.mbox
	err := mb.Commit(s.ctx, deleted, retrieved)
	// Commit releases the mailbox, failed or not: Close must not follow.
	s.mbox = nil
	if err != nil {
		s.srv.logger.Error("update failed", "remote_ip", s.remoteIPString(), "user", s.authUser,
			"retrieved", len(retrieved), "deleted", len(deleted), "err", err)
		var e *Error
		if errors.As(err, &e) && e.Code != "" {
			s.reply(errLine(e))
		} else {
			s.reply("-ERR [SYS/TEMP] update failed: some messages may not have been deleted")
		}
		return false
	}
	s.srv.logger.Info("update", "remote_ip", s.remoteIPString(), "user", s.authUser,
		"retrieved", len(retrieved), "deleted", len(deleted))
	s.reply("+OK bye (" + itoa(int64(len(deleted))) + " messages deleted)")
	return false
}

func (s *session) cmdStat() bool {
	s.reply("+OK " + itoa(int64(s.left)) + " " + itoa(s.leftOctets))
	return true
}

// msgArg parses a message-number argument: it must name an existing message
// that is not marked deleted ("message N " + ifDeleted otherwise). On
// failure it answers and returns ok false and the result of bad.
func (s *session) msgArg(arg, ifDeleted string) (i int, ok, cont bool) {
	n, valid := parseNumber(arg)
	if !valid {
		return 0, false, s.bad("invalid message number")
	}
	if n < 1 || n > int64(s.mbox.Len()) {
		return 0, false, s.bad("no such message")
	}
	i = int(n - 1)
	if s.deleted.has(i) {
		return 0, false, s.bad("message " + arg + " " + ifDeleted)
	}
	return i, true, true
}

// cmdList is LIST, or UIDL when uid is set.
func (s *session) cmdList(rest string, uid bool) bool {
	args := splitArgs(rest)
	value := func(i int) string {
		if uid {
			return s.mbox.UID(i)
		}
		return itoa(s.mbox.Size(i))
	}
	switch len(args) {
	case 0:
		if uid {
			s.reply("+OK unique-id listing follows")
		} else {
			s.reply("+OK " + itoa(int64(s.left)) + " messages (" + itoa(s.leftOctets) + " octets)")
		}
		var buf []byte
		for i := range s.mbox.Len() {
			if s.deleted.has(i) {
				continue
			}
			buf = strconv.AppendInt(buf[:0], int64(i+1), 10)
			buf = append(buf, ' ')
			buf = append(buf, value(i)...)
			buf = append(buf, '\r', '\n')
			s.bw.Write(buf)
		}
		s.reply(".")
		return true
	case 1:
		i, ok, cont := s.msgArg(args[0], "is deleted")
		if !ok {
			return cont
		}
		s.reply("+OK " + itoa(int64(i+1)) + " " + value(i))
		return true
	}
	return s.bad("too many arguments")
}

func (s *session) cmdDele(rest string) bool {
	args := splitArgs(rest)
	if len(args) != 1 {
		return s.bad("DELE takes one argument: the message number")
	}
	i, ok, cont := s.msgArg(args[0], "already deleted")
	if !ok {
		return cont
	}
	s.deleted.add(i)
	s.left--
	s.leftOctets = max(s.leftOctets-max(s.mbox.Size(i), 0), 0)
	s.reply("+OK message " + itoa(int64(i+1)) + " deleted")
	return true
}

func (s *session) cmdRset() bool {
	s.undeleteAll()
	s.reply(s.maildropLine())
	return true
}

// undeleteAll clears the deletion marks and recounts what is left: the
// whole maildrop.
func (s *session) undeleteAll() {
	s.deleted.reset()
	s.left = s.mbox.Len()
	s.leftOctets = 0
	for i := range s.left {
		s.leftOctets = satAdd(s.leftOctets, s.mbox.Size(i))
	}
}

// satAdd adds a size to a total of octets, stopping at the largest int64:
// a backend's sizes come from files a user may name or fill, and a total
// must never wrap to a negative STAT. A negative size adds nothing.
func satAdd(total, size int64) int64 {
	if size <= 0 {
		return total
	}
	if total > math.MaxInt64-size {
		return math.MaxInt64
	}
	return total + size
}

// maildropLine is the answer to a login or RSET.
func (s *session) maildropLine() string {
	return "+OK maildrop has " + itoa(int64(s.left)) + " messages (" + itoa(s.leftOctets) + " octets)"
}

func (s *session) cmdRetr(rest string) bool {
	args := splitArgs(rest)
	if len(args) != 1 {
		return s.bad("RETR takes one argument: the message number")
	}
	r, i, ok, cont := s.open(args[0])
	if !ok {
		return cont
	}
	defer r.Close()
	size := s.mbox.Size(i)
	s.reply("+OK " + itoa(size) + " octets")
	n, err := WriteMessage(s.bw, r)
	if err != nil {
		return s.sendFailed(i, err)
	}
	s.retrieved.add(i)
	if n != size {
		s.srv.logger.Warn("message size differs from the size announced", "remote_ip", s.remoteIPString(),
			"user", s.authUser, "message", i+1, "size", size, "sent", n)
		if c, ok := s.mbox.(SizeCorrector); ok {
			c.CorrectSize(i, n)
		}
	}
	return true
}

func (s *session) cmdTop(rest string) bool {
	args := splitArgs(rest)
	if len(args) != 2 {
		return s.bad("TOP takes two arguments: message number and line count")
	}
	lines, valid := parseNumber(args[1])
	if !valid {
		return s.bad("invalid line count")
	}
	r, i, ok, cont := s.open(args[0])
	if !ok {
		return cont
	}
	defer r.Close()
	s.reply("+OK top of message follows")
	if _, err := writeTop(s.bw, r, lines); err != nil {
		return s.sendFailed(i, err)
	}
	return true
}

// open opens the message numbered arg (from 1). When ok is false the error
// has been answered and cont says whether the session goes on.
func (s *session) open(arg string) (r io.ReadCloser, i int, ok, cont bool) {
	i, ok, cont = s.msgArg(arg, "is deleted")
	if !ok {
		return nil, i, false, cont
	}
	r, err := s.mbox.Open(i)
	if err == nil {
		return r, i, true, true
	}
	s.srv.logger.Warn("cannot open message", "remote_ip", s.remoteIPString(), "user", s.authUser,
		"message", i+1, "err", err)
	var e *Error
	if errors.As(err, &e) {
		s.reply(errLine(e))
	} else {
		s.reply("-ERR [SYS/TEMP] cannot read message " + itoa(int64(i+1)))
	}
	return nil, i, false, true
}

// sendFailed handles an error in the middle of a multi-line response: the
// client cannot be told, so the connection is dropped without UPDATE.
func (s *session) sendFailed(i int, err error) bool {
	var re *readError
	if errors.As(err, &re) {
		s.srv.logger.Error("reading message failed, closing the connection", "remote_ip", s.remoteIPString(),
			"user", s.authUser, "message", i+1, "err", err)
	} else {
		s.srv.logger.Info("sending message failed", "remote_ip", s.remoteIPString(),
			"user", s.authUser, "message", i+1, "err", err)
	}
	return false
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
