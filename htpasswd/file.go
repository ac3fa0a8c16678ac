// Package htpasswd authenticates users from password files as admins
// already have them: Apache htpasswd files, lines of crypt(3) hashes made
// by mkpasswd or openssl, and Dovecot passwd-files with {SCHEME} prefixes.
//
// Supported hashes: bcrypt ($2a$ $2b$ $2y$), $apr1$, MD5-crypt ($1$),
// SHA-256/512-crypt ($5$ $6$, with rounds=), yescrypt ($y$), Argon2i and
// Argon2id (PHC strings, Dovecot {ARGON2I}/{ARGON2ID}), and Dovecot's
// {SHA} {SHA1} {SSHA} {SHA256} {SSHA256} {SHA512} {SSHA512} {PLAIN-MD5}
// {LDAP-MD5} {SMD5} (base64 or .HEX), {BLF-CRYPT} {SHA512-CRYPT}
// {SHA256-CRYPT} {MD5-CRYPT} {MD5} {CRYPT}, and {PLAIN}/{CLEARTEXT} (with a
// warning). DES crypt, $gy$, $7$, {PBKDF2} and other schemes without a
// maintained Go implementation are refused at load with a warning; a
// string that is no known hash is never taken as a plain-text password.
package htpasswd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pop3d/pop3d/internal/regfile"
)

// ErrBadCredentials is returned by Authenticate for an unknown user, a
// wrong password, and a user whose line in the file is unusable alike.
var ErrBadCredentials = errors.New("htpasswd: bad credentials")

// User is an authenticated user.
type User struct {
	Name string
	// Home is the 6th field of a Dovecot passwd-file line (a cleaned
	// absolute path), "" when there is none. When set it replaces the
	// maildir template: the Maildir is Home/Maildir if that is a directory,
	// else Home itself (decided by the caller).
	Home string
	// Extra are the extra fields of a Dovecot passwd-file line, in file
	// order, all of them (unknown keys too).
	Extra []Field
}

// File is a password file, safe for concurrent use. It re-reads itself when
// the file changed (size, mtime, ctime, inode checked cheaply at each
// Authenticate) and on Reload; an unreadable new version keeps the last
// good copy and logs an error.
//
// No login ever waits for a load: the file is opened, read and parsed
// outside any lock logins take, and a login that finds a load running
// uses the copy in use until the new one is swapped in.
type File struct {
	path   string
	logger *slog.Logger
	check  ExtraChecker
	sem    chan struct{} // bounds concurrent expensive verifications
	cache  *authCache    // verified credentials (authcache.go)

	hashed atomic.Int64 // expensive verifications done (tests, bench)

	cur atomic.Pointer[loaded]

	// loading serialises loads. Logins only TryLock it (a login that
	// finds a load running goes on with the current copy); Reload waits,
	// which is bounded as opening never blocks (regfile).
	loading sync.Mutex
	lastErr string // last load error logged, to log each new one once; guarded by loading
}

// loaded is a table together with the identity of the file it came from.
type loaded struct {
	t  *table
	id fileID
}

// fileID is what tells a changed file cheaply.
type fileID struct {
	dev, ino uint64 // zero where the platform gives none
	size     int64
	mtime    int64 // ns since the epoch
	ctime    int64
}

// freeOSMemoryOver is the file size above which a load hands the memory of
// the previous copy back to the system at once: a reload of a big file
// would otherwise leave the process at twice its size until the runtime
// gets round to it.
const freeOSMemoryOver = 16 << 20

// Open reads the password file at path. It fails if the file cannot be read
// now (also when it is not a regular file: a FIFO is never waited on); bad
// lines are logged as warnings and lock only their user out. A nil logger
// means slog.Default().
func Open(path string, logger *slog.Logger) (*File, error) {
	return OpenWith(path, Options{Logger: logger})
}

// Options are the settings of OpenWith.
type Options struct {
	Logger     *slog.Logger // nil: slog.Default()
	CheckExtra ExtraChecker // nil: extra fields are kept unchecked
	// AuthCacheTTL is how long a successful verification against an
	// expensive hash (bcrypt, argon2, yescrypt, SHA-crypt with rounds)
	// lets the same password in again without hashing (authcache.go);
	// 0 turns the cache off.
	AuthCacheTTL time.Duration
	// AuthCacheMax bounds the entries (least recently used evicted);
	// 0: 100000.
	AuthCacheMax int
	// Now is the cache's clock; nil: time.Now.
	Now func() time.Time
}

// OpenWith is Open with a checker for the users' extra fields: a user whose
// fields it refuses cannot log in, as with a bad hash.
func OpenWith(path string, o Options) (*File, error) {
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	f := &File{
		path:   path,
		logger: logger,
		check:  o.CheckExtra,
		sem:    make(chan struct{}, runtime.NumCPU()),
		cache:  newAuthCache(o.AuthCacheTTL, o.AuthCacheMax, o.Now),
	}
	f.loading.Lock()
	defer f.loading.Unlock()
	if err := f.loadLocked(true); err != nil {
		return nil, err
	}
	return f, nil
}

// Reload re-reads the file now (for SIGHUP), whether or not it looks
// changed. On error the last good copy stays in use.
func (f *File) Reload() error {
	f.loading.Lock()
	defer f.loading.Unlock()
	return f.loadLocked(true)
}

// refresh reloads the file if its identity changed since the last load,
// unless a load is running already (then the current copy serves).
func (f *File) refresh() {
	fi, err := os.Stat(f.path)
	if err == nil {
		if cur := f.cur.Load(); cur != nil && cur.id == idOf(fi) {
			return
		}
	}
	if !f.loading.TryLock() {
		return
	}
	defer f.loading.Unlock()
	// Unreadable or changed: load reports and keeps the last good copy.
	_ = f.loadLocked(false)
}

// loadLocked reads and parses the file; f.loading is held. Unless force,
// it does nothing when the file is unchanged since the last load.
func (f *File) loadLocked(force bool) error {
	start := time.Now()
	t, id, err := f.read(force)
	if err != nil {
		if msg := err.Error(); msg != f.lastErr {
			f.lastErr = msg
			if f.cur.Load() != nil {
				f.logger.Error("password file unreadable, keeping the last good copy", "file", f.path, "err", err)
			}
		}
		return err
	}
	f.lastErr = ""
	if t == nil {
		return nil // unchanged
	}
	f.cur.Store(&loaded{t: t, id: id})
	f.logger.Info("password file loaded", "file", f.path, "users", len(t.users), "duration", time.Since(start).Round(time.Microsecond))
	if id.size > freeOSMemoryOver {
		debug.FreeOSMemory()
	}
	return nil
}

// read returns the parsed file, or a nil table when it is unchanged and
// not force.
func (f *File) read(force bool) (*table, fileID, error) {
	fd, fi, err := regfile.Open(f.path)
	if err != nil {
		return nil, fileID{}, fmt.Errorf("password file: %w", err)
	}
	defer fd.Close()
	// The identity is the open file's, so that it matches the bytes read
	// even when the file is being replaced right now.
	id := idOf(fi)
	if cur := f.cur.Load(); !force && cur != nil && cur.id == id {
		return nil, id, nil
	}
	text, err := readText(fd, fi.Size())
	if err != nil {
		return nil, fileID{}, fmt.Errorf("password file %s: %w", f.path, err)
	}
	t := parseText(text, f.path, f.check, func(p Problem) {
		f.logger.Warn("password file", "file", p.File, "line", p.Line, "problem", p.Msg)
	})
	return t, id, nil
}

// readText reads a password file of about size bytes into one string, with
// no second copy of it: the table keeps this string.
func readText(r io.Reader, size int64) (string, error) {
	if size > maxFileSize {
		return "", fmt.Errorf("larger than %d bytes; not a password file", maxFileSize)
	}
	var sb strings.Builder
	sb.Grow(int(size) + 1)
	if _, err := io.Copy(&sb, io.LimitReader(r, maxFileSize+1)); err != nil {
		return "", err
	}
	if sb.Len() > maxFileSize {
		return "", fmt.Errorf("larger than %d bytes; not a password file", maxFileSize)
	}
	return sb.String(), nil
}

// maxPasswordLen bounds the passwords Authenticate hashes.
const maxPasswordLen = 1024

// Authenticate verifies user/pass. Unknown user and wrong password both give
// ErrBadCredentials, after comparable work (a dummy hash of the file's most
// common scheme and cost); so does a password longer than 1024 bytes.
// Concurrency of expensive verifications is bounded by the number of CPUs;
// waiting for a slot honours ctx.
func (f *File) Authenticate(ctx context.Context, user, pass string) (User, error) {
	f.refresh()
	t := f.cur.Load().t
	e, ok := t.lookup(user)
	hash, known := e.hash, ok && !e.refused
	tooLong := len(pass) > maxPasswordLen
	if tooLong {
		// SHA-crypt's cost grows with the password's length: do not let
		// a client make one check take seconds. No real password is this
		// long; spend the usual time and refuse.
		pass, known = pass[:maxPasswordLen], false
	}
	if !known {
		hash = t.dummy
	}
	v, _, err := parseHash(hash)
	if err != nil {
		// Cannot happen: the table holds only hashes that parsed.
		return User{}, fmt.Errorf("htpasswd: stored hash for %q: %w", user, err)
	}
	cacheable := known && v.expensive()
	if cacheable && f.cache.hit(user, hash, pass) {
		return User{Name: user, Home: e.home, Extra: e.extra}, nil
	}
	if v.expensive() {
		select {
		case f.sem <- struct{}{}:
		case <-ctx.Done():
			return User{}, fmt.Errorf("htpasswd: waiting to verify: %w", context.Cause(ctx))
		}
		defer func() { <-f.sem }()
		f.hashed.Add(1)
	}
	match := v.verify([]byte(pass))
	if !known || !match {
		reason := "wrong password"
		switch {
		case tooLong:
			reason = "password too long"
		case !ok:
			reason = "unknown user"
		case e.refused:
			reason = "unusable password line"
		}
		f.logger.Debug("password check failed", "file", f.path, "user", user, "reason", reason)
		return User{}, ErrBadCredentials
	}
	if cacheable {
		f.cache.put(user, hash, pass)
	}
	return User{Name: user, Home: e.home, Extra: e.extra}, nil
}

// SetAuthCacheTTL changes the verified-credentials cache's ttl (a reload);
// 0 turns it off and empties it, a shorter ttl shortens the entries there.
func (f *File) SetAuthCacheTTL(ttl time.Duration) { f.cache.setTTL(ttl) }

// AuthCacheStats returns the verified-credentials cache's entries and how
// many of them are unexpired, for the reload log summary.
func (f *File) AuthCacheStats() (entries, valid int) { return f.cache.stats() }

// HasExtraKey reports whether some user of the current file has an extra
// field named key (so that a per-user setting may differ from the global
// one).
func (f *File) HasExtraKey(key string) bool {
	f.refresh()
	return f.cur.Load().t.extraKeys[key]
}

// Check parses path and returns every problem (bad lines, duplicates,
// unsupported schemes, plaintext schemes); err only when the file cannot be
// read (a FIFO or any other non-regular file is refused, never waited
// on). `pop3d -check` prints them.
func Check(path string) ([]Problem, error) {
	return CheckWith(path, nil)
}

// CheckWith is Check with a checker for the extra fields, whose errors and
// warnings are reported with the line.
func CheckWith(path string, check ExtraChecker) ([]Problem, error) {
	fd, fi, err := regfile.Open(path)
	if err != nil {
		return nil, fmt.Errorf("password file: %w", err)
	}
	defer fd.Close()
	text, err := readText(fd, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("password file %s: %w", path, err)
	}
	var problems []Problem
	parseText(text, path, check, func(p Problem) { problems = append(problems, p) })
	return problems, nil
}
