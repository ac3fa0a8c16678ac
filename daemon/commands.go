package daemon

import (
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/pop3d/pop3d/internal/wireform"
)

func (s *session) cmdCapa(string, bool) error {
	s.reply("+OK capability list follows")
	s.reply("TOP")
	if s.state == stateAuth && s.authAllowed() {
		s.reply("USER")
	}
	s.reply("UIDL")
	s.reply("PIPELINING")
	s.reply("RESP-CODES")
	s.reply("AUTH-RESP-CODE")
	s.capaPolicy()
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
	return nil
}

func (s *session) stlsAvailable() bool {
	return s.state == stateAuth && !s.tls && s.mode == ModePlain && s.cfg.TLSConfig != nil
}

// cmdStls is RFC 2595 STLS.
func (s *session) cmdStls(string, bool) error {
	if s.tls {
		return badCommand("TLS already active")
	}
	if !s.stlsAvailable() {
		return badCommand("STLS not available")
	}
	s.reply("+OK begin TLS negotiation")
	if err := s.flush(); err != nil {
		return errHangUp
	}
	// Whatever the client sent after STLS in plain text is thrown away
	// (CVE-2011-0411): Reset drops the buffered bytes.
	s.br.Reset(nil)
	if err := s.handshake(); err != nil {
		s.log.Info("tls handshake failed", "err", err)
		s.refusedBy(RefuseTLSHandshake)
		return errHangUp
	}
	s.br.Reset(s.conn)
	s.bw.Reset(&s.out)
	s.user = ""
	return nil
}

func (s *session) cmdQuit(string, bool) error {
	s.end = EndQuit
	if s.state == stateAuth {
		return closeConn("+OK bye")
	}
	if s.policy.Expire.Set {
		if err := s.needMessages(); err != nil {
			return err
		}
	}
	s.state = stateUpdate
	s.updating.Store(true)
	// Messages EXPIRE removes go through the same UPDATE as DELE.
	expired := s.expired()
	for _, i := range expired {
		s.deleted.add(i)
	}
	var deleted, retrieved []int
	for i := range s.mbox.Len() {
		switch {
		case s.deleted.has(i):
			deleted = append(deleted, i)
		case s.retrieved.has(i):
			retrieved = append(retrieved, i)
		}
	}
	var expiredAttr []any
	if s.policy.Expire.Set {
		expiredAttr = []any{"expired", len(expired)}
	}
	mb := s.mbox
	t0 := time.Now()
	err := mb.Commit(s.ctx, deleted, retrieved)
	// Commit releases the mailbox, failed or not: Close must not follow.
	s.mbox = nil
	s.updated(Update{Deleted: len(deleted), Retrieved: len(retrieved), Duration: time.Since(t0), Err: err})
	if err != nil {
		s.log.Error("update failed", append([]any{"user", s.authUser,
			"retrieved", len(retrieved), "deleted", len(deleted)}, append(expiredAttr, "err", err)...)...)
		var e *Error
		if errors.As(err, &e) && e.Code != "" {
			return closeConn(errLine(e))
		}
		return closeConn("-ERR [SYS/TEMP] update failed: some messages may not have been deleted")
	}
	s.log.Info("update", append([]any{"user", s.authUser,
		"retrieved", len(retrieved), "deleted", len(deleted)}, expiredAttr...)...)
	return closeConn("+OK bye (" + itoa(int64(len(deleted))) + " messages deleted)")
}

func (s *session) cmdStat(string, bool) error {
	s.reply("+OK " + itoa(int64(s.left)) + " " + itoa(s.leftOctets))
	return nil
}

func (s *session) cmdNoop(string, bool) error {
	s.reply("+OK")
	return nil
}

// msgArg parses a message-number argument: it must name an existing message
// that is not marked deleted ("message N " + ifDeleted otherwise).
func (s *session) msgArg(arg, ifDeleted string) (int, error) {
	n, valid := parseNumber(arg)
	if !valid {
		return 0, badCommand("invalid message number")
	}
	if n < 1 || n > int64(s.mbox.Len()) {
		return 0, badCommand("no such message")
	}
	i := int(n - 1)
	if s.deleted.has(i) {
		return 0, badCommand("message " + arg + " " + ifDeleted)
	}
	return i, nil
}

func (s *session) cmdList(rest string, _ bool) error { return s.listing(rest, false) }
func (s *session) cmdUidl(rest string, _ bool) error { return s.listing(rest, true) }

// listing is LIST, or UIDL when uid is set.
func (s *session) listing(rest string, uid bool) error {
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
		// Lines are gathered into one buffer and written a block at a
		// time: at 100k messages a Write and a string per line were a
		// tenth of a LIST+UIDL.
		buf := make([]byte, 0, 16<<10)
		num := []byte{'0'} // i+1 in decimal, counted rather than formatted
		for i := range s.mbox.Len() {
			num = incDecimal(num)
			if s.deleted.has(i) {
				continue
			}
			buf = append(buf, num...)
			buf = append(buf, ' ')
			if uid {
				buf = append(buf, s.mbox.UID(i)...)
			} else {
				buf = strconv.AppendInt(buf, s.mbox.Size(i), 10)
			}
			buf = append(buf, '\r', '\n')
			if len(buf) > cap(buf)-128 {
				s.bw.Write(buf)
				buf = buf[:0]
			}
		}
		s.bw.Write(buf)
		s.reply(".")
		return nil
	case 1:
		i, err := s.msgArg(args[0], "is deleted")
		if err != nil {
			return err
		}
		s.reply("+OK " + itoa(int64(i+1)) + " " + value(i))
		return nil
	}
	return badCommand("too many arguments")
}

// incDecimal adds one to the decimal number in b, in place unless it
// gains a digit.
func incDecimal(b []byte) []byte {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < '9' {
			b[i]++
			return b
		}
		b[i] = '0'
	}
	return append([]byte{'1'}, b...)
}

func (s *session) cmdDele(rest string, _ bool) error {
	args := splitArgs(rest)
	if len(args) != 1 {
		return badCommand("DELE takes one argument: the message number")
	}
	i, err := s.msgArg(args[0], "already deleted")
	if err != nil {
		return err
	}
	s.deleted.add(i)
	s.left--
	s.leftOctets = max(s.leftOctets-max(s.mbox.Size(i), 0), 0)
	s.reply("+OK message " + itoa(int64(i+1)) + " deleted")
	return nil
}

func (s *session) cmdRset(string, bool) error {
	s.undeleteAll()
	s.reply(s.maildropLine())
	return nil
}

// undeleteAll clears the deletion marks and recounts what is left: the
// whole maildrop.
func (s *session) undeleteAll() {
	s.deleted.reset()
	s.left = s.mbox.Len()
	s.leftOctets = 0
	if lm, ok := s.mbox.(LazyMailbox); ok {
		s.leftOctets = lm.Total()
		return
	}
	for i := range s.left {
		s.leftOctets = wireform.AddSize(s.leftOctets, s.mbox.Size(i))
	}
}

// needMessages has a LazyMailbox read its messages, once per session. It
// fails only when the mailbox cannot serve the maildrop it announced at
// login; the session then ends without UPDATE.
func (s *session) needMessages() error {
	lm, ok := s.mbox.(LazyMailbox)
	if !ok || s.loaded {
		return nil
	}
	if err := lm.Load(); err != nil {
		s.end = EndError
		s.log.Error("mailbox not readable", "user", s.authUser, "err", err)
		return closeConn("-ERR [SYS/TEMP] mailbox index not readable; nothing was changed, log in again")
	}
	s.loaded = true
	return nil
}

// maildropLine is the answer to a login or RSET.
func (s *session) maildropLine() string {
	return "+OK maildrop has " + itoa(int64(s.left)) + " messages (" + itoa(s.leftOctets) + " octets)"
}

func (s *session) cmdRetr(rest string, _ bool) error {
	args := splitArgs(rest)
	if len(args) != 1 {
		return badCommand("RETR takes one argument: the message number")
	}
	r, i, err := s.open(args[0])
	if err != nil {
		return err
	}
	defer r.Close()
	size := s.mbox.Size(i)
	s.reply("+OK " + itoa(size) + " octets")
	n, err := WriteMessage(s.bw, r)
	if err != nil {
		return s.sendFailed(i, err)
	}
	s.retrieved.add(i)
	s.stats.retr++
	s.stats.retrOctets += n
	if n != size {
		s.log.Warn("message size differs from the size announced", "user", s.authUser, "message", i+1, "size", size, "sent", n)
		if c, ok := s.mbox.(SizeCorrector); ok {
			c.CorrectSize(i, n)
		}
	}
	return nil
}

func (s *session) cmdTop(rest string, _ bool) error {
	args := splitArgs(rest)
	if len(args) != 2 {
		return badCommand("TOP takes two arguments: message number and line count")
	}
	lines, valid := parseNumber(args[1])
	if !valid {
		return badCommand("invalid line count")
	}
	r, i, err := s.open(args[0])
	if err != nil {
		return err
	}
	defer r.Close()
	s.reply("+OK top of message follows")
	n, err := writeTop(s.bw, r, lines)
	if err != nil {
		return s.sendFailed(i, err)
	}
	s.stats.top++
	s.stats.topOctets += n
	return nil
}

// open opens the message numbered arg (from 1).
func (s *session) open(arg string) (io.ReadCloser, int, error) {
	i, err := s.msgArg(arg, "is deleted")
	if err != nil {
		return nil, i, err
	}
	r, err := s.mbox.Open(i)
	if err == nil {
		return r, i, nil
	}
	s.log.Warn("cannot open message", "user", s.authUser,
		"message", i+1, "err", err)
	var e *Error
	if errors.As(err, &e) {
		return nil, i, e
	}
	return nil, i, &Error{Code: CodeSysTemp, Text: "cannot read message " + itoa(int64(i+1))}
}

// sendFailed handles an error in the middle of a multi-line response: the
// client cannot be told, so the connection is dropped without UPDATE.
func (s *session) sendFailed(i int, err error) error {
	s.status = -1
	var re *readError
	if errors.As(err, &re) {
		s.end = EndError
		s.log.Error("reading message failed, closing the connection", "user", s.authUser, "message", i+1, "err", err)
	} else {
		s.log.Info("sending message failed", "user", s.authUser, "message", i+1, "err", err)
	}
	return errHangUp
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
