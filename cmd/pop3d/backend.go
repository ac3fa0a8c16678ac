package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/pop3d/pop3d/daemon"
	"github.com/pop3d/pop3d/htpasswd"
	"github.com/pop3d/pop3d/maildir"
)

// authenticator is what the backend needs of a password file.
type authenticator interface {
	Authenticate(ctx context.Context, user, pass string) (htpasswd.User, error)
}

// apopAuthenticator is a password file that can check APOP digests.
type apopAuthenticator interface {
	AuthenticateAPOP(ctx context.Context, user, challenge, digest string) (htpasswd.User, error)
}

// backendSettings are the parts of the backend a SIGHUP may replace.
type backendSettings struct {
	passwd   authenticator    // nil: no password file (POP3D_AUTH only)
	static   *htpasswd.Static // users from POP3D_AUTH; nil: none
	template string
	opts     maildir.Options
	auth     authConfig // the auth_http server's part
	global   globalPolicy
	now      func() time.Time // nil: time.Now
}

func (s *backendSettings) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

// authenticate checks name/pass against POP3D_AUTH's users first, then the
// password file.
func (s *backendSettings) authenticate(ctx context.Context, name, pass string) (htpasswd.User, error) {
	if s.static != nil && (s.static.Has(name) || s.passwd == nil) {
		return s.static.Authenticate(ctx, name, pass)
	}
	if s.passwd == nil {
		return htpasswd.User{}, htpasswd.ErrBadCredentials
	}
	return s.passwd.Authenticate(ctx, name, pass)
}

// backend adapts the password file and the Maildir store to daemon.Backend.
type backend struct {
	settings atomic.Pointer[backendSettings]
	logger   *slog.Logger
	timer    loginTimer // nil: not timed
}

// authTimed reports the password check that started at t0.
func (b *backend) authTimed(t0 time.Time) {
	if b.timer != nil {
		b.timer.authTimed(time.Since(t0))
	}
}

// openTimed reports the mailbox open that started at t0.
func (b *backend) openTimed(t0 time.Time) {
	if b.timer != nil {
		b.timer.openTimed(time.Since(t0))
	}
}

// loginTimer is told how long the two halves of a login took.
type loginTimer interface {
	authTimed(time.Duration) // the password check
	openTimed(time.Duration) // opening and listing the mailbox
}

var (
	_ daemon.Backend     = (*backend)(nil)
	_ daemon.APOPBackend = (*backend)(nil)
)

func newBackend(s backendSettings, logger *slog.Logger) *backend {
	b := &backend{logger: logger}
	b.set(s)
	return b
}

// set replaces the settings for logins from now on.
func (b *backend) set(s backendSettings) {
	if s.opts.Logger == nil {
		s.opts.Logger = b.logger
	}
	b.settings.Store(&s)
}

// Login implements daemon.Backend.
func (b *backend) Login(ctx context.Context, name, pass string, info daemon.ConnInfo) (daemon.Mailbox, error) {
	s := b.settings.Load()
	t0 := time.Now()
	u, pol, err := s.verify(ctx, name, pass, info)
	b.authTimed(t0)
	if err != nil {
		return nil, err
	}
	return b.open(ctx, s, u, pol)
}

// LoginAPOP implements daemon.APOPBackend: only users of the password file
// with a {PLAIN}/{CLEARTEXT} secret can use APOP.
func (b *backend) LoginAPOP(ctx context.Context, name, challenge, digest string, info daemon.ConnInfo) (daemon.Mailbox, error) {
	s := b.settings.Load()
	ap, ok := s.passwd.(apopAuthenticator)
	if !ok || !validUser(name) || (s.static != nil && s.static.Has(name)) {
		return nil, daemon.ErrAuth
	}
	t0 := time.Now()
	u, err := ap.AuthenticateAPOP(ctx, name, challenge, digest)
	b.authTimed(t0)
	u, pol, err := s.check(ctx, name, u, err, info)
	if err != nil {
		return nil, err
	}
	return b.open(ctx, s, u, pol)
}

// verify checks a login's credentials and the user's policy: what a POP3
// login and an auth_http request (authhttp.go) have in common. Errors are
// daemon.ErrAuth for bad credentials, else a *daemon.Error.
func (s *backendSettings) verify(ctx context.Context, name, pass string, info daemon.ConnInfo) (htpasswd.User, userPolicy, error) {
	if !validUser(name) {
		// Spend what a wrong password costs (the password file hashes
		// against a dummy for unknown users), so that a bad name cannot
		// be told apart by timing.
		_, _ = s.authenticate(ctx, "", pass)
		return htpasswd.User{}, userPolicy{}, daemon.ErrAuth
	}
	u, err := s.authenticate(ctx, name, pass)
	return s.check(ctx, name, u, err, info)
}

// check applies the policy to an authentication's outcome.
func (s *backendSettings) check(ctx context.Context, name string, u htpasswd.User, err error, info daemon.ConnInfo) (htpasswd.User, userPolicy, error) {
	if errors.Is(err, htpasswd.ErrBadCredentials) {
		return u, userPolicy{}, daemon.ErrAuth
	}
	if err != nil {
		if ctx.Err() != nil {
			return u, userPolicy{}, &daemon.Error{Code: daemon.CodeSysTemp, Text: "login interrupted", Err: err}
		}
		return u, userPolicy{}, &daemon.Error{Code: daemon.CodeSysTemp, Text: "authentication is temporarily unavailable", Err: err}
	}
	if u.Name == "" {
		u.Name = name
	}
	pol, err := policyFor(s.global, u.Extra)
	if err != nil {
		return u, pol, &daemon.Error{Code: daemon.CodeSysPerm, Text: "account unavailable", Err: err}
	}
	// The network first: from outside allow_nets even a disabled
	// account's reason is not shown.
	if !pol.allowed(info.RemoteAddr) {
		return u, pol, errNetwork
	}
	if pol.nologin {
		return u, pol, pol.errDisabled()
	}
	return u, pol, nil
}

// open opens the mailbox of u, who passed verify, and applies LOGIN-DELAY.
func (b *backend) open(ctx context.Context, s *backendSettings, u htpasswd.User, pol userPolicy) (daemon.Mailbox, error) {
	dir, err := mailboxPath(s.template, u)
	if errors.Is(err, maildir.ErrBadUser) {
		// The name cannot map to a directory of its own, so such a user
		// never logs in. The password was right: this is the admin's
		// naming problem, not a guess, and must not read as a failed
		// login (fail2ban would ban the client's address for it).
		return nil, &daemon.Error{Code: daemon.CodeSysPerm, Text: "mailbox unavailable",
			Err: fmt.Errorf("user name unusable in the maildir template: %w", err)}
	}
	if err != nil {
		return nil, &daemon.Error{Code: daemon.CodeSysPerm, Text: "mailbox unavailable", Err: err}
	}
	opts := s.opts
	opts.TrackRetrieval = pol.expire.Set
	opts.Lazy = true
	opts.Now = s.now
	t0 := time.Now()
	m, err := maildir.Open(ctx, dir, opts)
	b.openTimed(t0)
	if err != nil {
		return nil, openError(err)
	}
	if pol.loginDelay > 0 {
		// Under the mailbox lock: every pop3d serving this Maildir sees
		// the same last login.
		now := s.clock()
		if last, ok := m.LastLogin(); ok {
			if left := delayLeft(pol.loginDelay, last, now); left > 0 {
				m.Close()
				return nil, errLoginDelay(left)
			}
		}
		if err := m.RecordLogin(now); err != nil {
			// Not a reason to refuse: the next login is just not delayed.
			b.logger.Warn("last login not recorded", "user", u.Name, "err", err)
		}
	}
	return mailbox{store: m, policy: daemon.UserPolicy{LoginDelay: pol.loginDelay, Expire: pol.expire}}, nil
}

// perUser reports whether users may have LOGIN-DELAY or EXPIRE values of
// their own: some line of the password file sets login_delay or expire.
func (b *backend) perUser() bool {
	s := b.settings.Load()
	f, ok := s.passwd.(interface{ HasExtraKey(string) bool })
	return ok && (f.HasExtraKey("login_delay") || f.HasExtraKey("expire"))
}

// validUser accepts non-empty UTF-8 names of at most htpasswd.MaxUserLen
// bytes (the password file warns about longer ones with the same limit)
// without control characters.
func validUser(name string) bool {
	if name == "" || len(name) > htpasswd.MaxUserLen || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

// mailboxPath is the Maildir of u: from a passwd-file home H, H/Maildir if
// that is a directory, else H; otherwise the expanded template.
func mailboxPath(template string, u htpasswd.User) (string, error) {
	if u.Home == "" {
		return maildir.ExpandTemplate(template, u.Name)
	}
	if !filepath.IsAbs(u.Home) {
		return "", fmt.Errorf("home %q of user %s is not an absolute path", u.Home, u.Name)
	}
	sub := filepath.Join(u.Home, "Maildir")
	// Stat follows a symlink: a user's own H/Maildir link is chosen here
	// and then refused by maildir.Open (it follows only links that root or
	// pop3d's user made, to directories they own), rather than silently
	// serving H instead.
	if fi, err := os.Stat(sub); err == nil && fi.IsDir() {
		return sub, nil
	}
	return filepath.Clean(u.Home), nil
}

// openError maps maildir.Open failures to POP3 response codes. The cause
// goes to the log only.
func openError(err error) error {
	switch {
	case errors.Is(err, maildir.ErrLocked):
		return &daemon.Error{Code: daemon.CodeInUse, Text: "mailbox is in use by another session", Err: err}
	case errors.Is(err, maildir.ErrNotFound), errors.Is(err, maildir.ErrNotMaildir), errors.Is(err, fs.ErrPermission):
		return &daemon.Error{Code: daemon.CodeSysPerm, Text: "mailbox unavailable", Err: err}
	default:
		return &daemon.Error{Code: daemon.CodeSysTemp, Text: "mailbox temporarily unavailable, try again later", Err: err}
	}
}

// store is the method set of *maildir.Mailbox the engine uses.
type store interface {
	daemon.LazyMailbox // messages read on first use (maildir.Options.Lazy)
	daemon.SizeCorrector
	TmpRemoved() int
}

// retrievals is the part of *maildir.Mailbox that remembers first
// retrievals (for EXPIRE).
type retrievals interface {
	FirstRetrieved(i int) (time.Time, bool)
}

var _ retrievals = (*maildir.Mailbox)(nil)

var _ store = (*maildir.Mailbox)(nil)

// mailbox is a Maildir mailbox whose Commit errors carry POP3 response
// codes. CorrectSize is promoted, so it is a daemon.SizeCorrector too.
type mailbox struct {
	store
	policy daemon.UserPolicy
}

var (
	_ daemon.Mailbox       = mailbox{}
	_ daemon.SizeCorrector = mailbox{}
	_ daemon.LoginAttrer   = mailbox{}
	_ daemon.PolicyMailbox = mailbox{}
	_ daemon.LazyMailbox   = mailbox{}
)

// LoginAttrs implements daemon.LoginAttrer: tmp_removed=N on the login line
// when the login removed stale files from tmp/ (the line is unchanged
// otherwise).
func (m mailbox) LoginAttrs() []slog.Attr {
	if n := m.store.TmpRemoved(); n > 0 {
		return []slog.Attr{slog.Int("tmp_removed", n)}
	}
	return nil
}

// Policy implements daemon.PolicyMailbox.
func (m mailbox) Policy() daemon.UserPolicy { return m.policy }

// FirstRetrieved implements daemon.PolicyMailbox.
func (m mailbox) FirstRetrieved(i int) (time.Time, bool) {
	if r, ok := m.store.(retrievals); ok {
		return r.FirstRetrieved(i)
	}
	return time.Time{}, false
}

// Commit implements daemon.Mailbox.
func (m mailbox) Commit(ctx context.Context, deleted, retrieved []int) error {
	err := m.store.Commit(ctx, deleted, retrieved)
	if err == nil {
		return nil
	}
	var ce *maildir.CommitError
	if errors.As(err, &ce) {
		noun := "messages"
		if ce.NotRemoved == 1 {
			noun = "message"
		}
		// RFC 3206: SYS/PERM when retrying will not help (the Maildir is
		// read-only or not pop3d's to change), SYS/TEMP otherwise (an I/O
		// error, or the Maildir moved during the session).
		code := daemon.CodeSysTemp
		if ce.Permanent {
			code = daemon.CodeSysPerm
		}
		text := fmt.Sprintf("%d %s could not be removed", ce.NotRemoved, noun)
		if errors.Is(err, maildir.ErrGone) {
			text = fmt.Sprintf("mailbox moved during the session: %d %s not removed", ce.NotRemoved, noun)
		}
		return &daemon.Error{Code: code, Text: text, Err: err}
	}
	return &daemon.Error{Code: daemon.CodeSysTemp, Text: "mailbox could not be updated", Err: err}
}
