package main

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/pop3d/pop3d/bench/mailgen"
	"golang.org/x/crypto/bcrypt"
)

// password is every bench user's password.
const password = "bench-secret"

// Streams of the generator: the big mailboxes share stream 0 (a smaller one
// is a prefix of a larger one, so it is hard-linked, not generated again).
const (
	streamBig  = 0
	streamConc = 1 << 20
	streamIdle = 2 << 20
)

// dataset is the set of pristine, generated Maildirs (cached between runs
// under cacheDir, keyed by generator version and seed) and what they hold.
type dataset struct {
	dir       string // pristine Maildirs: dir/<user>
	gen       *mailgen.Generator
	own       mailgen.Owner
	manifests map[string][]mailgen.Message
	mu        sync.Mutex
	progress  func(format string, args ...any)
}

func bigUser(n int) string  { return "big" + strconv.Itoa(n) }
func concUser(i int) string { return fmt.Sprintf("c%03d", i) }
func idleUser(i int) string { return fmt.Sprintf("i%04d", i) }
func bcryptUser(i int) string {
	return fmt.Sprintf("bc%02d", i)
}

// mailOwner is who owns the Maildirs: Dovecot will not deliver as root, so
// as root the files go to the "mail" user; otherwise they stay ours.
func mailOwner() mailgen.Owner {
	if os.Geteuid() != 0 {
		return mailgen.Owner{UID: -1, GID: -1}
	}
	if u, err := user.Lookup("mail"); err == nil {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return mailgen.Owner{UID: uid, GID: gid}
	}
	return mailgen.Owner{UID: 65534, GID: 65534}
}

func openDataset(cacheDir string, seed uint64, progress func(string, ...any)) (*dataset, error) {
	own := mailOwner()
	dir := filepath.Join(cacheDir, fmt.Sprintf("v%d-seed%d-uid%d", mailgen.Version, seed, own.UID))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// Dovecot's processes, running as the mail user, must reach the Maildirs.
	for d := dir; d != filepath.Dir(d) && d != "/"; d = filepath.Dir(d) {
		if d == filepath.Clean(cacheDir) {
			_ = os.Chmod(d, 0o755)
			break
		}
	}
	_ = os.Chmod(dir, 0o755)
	return &dataset{dir: dir, gen: mailgen.New(seed), own: own,
		manifests: map[string][]mailgen.Message{}, progress: progress}, nil
}

func (d *dataset) manifestPath(user string) string {
	return filepath.Join(d.dir, user+".manifest")
}

// load returns the manifest of user's pristine Maildir, or nil if it has not
// been generated completely.
func (d *dataset) load(user string) []mailgen.Message {
	d.mu.Lock()
	m, ok := d.manifests[user]
	d.mu.Unlock()
	if ok {
		return m
	}
	b, err := os.ReadFile(d.manifestPath(user))
	if err != nil {
		return nil
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil
	}
	if m == nil {
		m = []mailgen.Message{}
	}
	d.mu.Lock()
	d.manifests[user] = m
	d.mu.Unlock()
	return m
}

func (d *dataset) save(user string, m []mailgen.Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := d.manifestPath(user) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, d.manifestPath(user)); err != nil {
		return err
	}
	if m == nil {
		m = []mailgen.Message{}
	}
	d.mu.Lock()
	d.manifests[user] = m
	d.mu.Unlock()
	return nil
}

// generate makes user's Maildir with n messages of stream, unless a complete
// one is cached.
func (d *dataset) generate(user string, stream uint64, n, workers int) error {
	if m := d.load(user); m != nil && len(m) == n {
		return nil
	}
	dir := filepath.Join(d.dir, user)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	m, err := d.gen.WriteMaildir(dir, stream, 0, n, workers, d.own)
	if err != nil {
		return err
	}
	return d.save(user, m)
}

// linkPrefix makes user's Maildir hold hard links to the first n messages of
// from's (a generated mailbox of at least n messages).
func (d *dataset) linkPrefix(user, from string, n int) error {
	if m := d.load(user); m != nil && len(m) == n {
		return nil
	}
	src := d.load(from)
	if len(src) < n {
		return fmt.Errorf("dataset: %s has %d messages, need %d", from, len(src), n)
	}
	dir := filepath.Join(d.dir, user)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	for _, sub := range []string{"", "tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return err
		}
		if d.own.UID >= 0 {
			if err := os.Lchown(filepath.Join(dir, sub), d.own.UID, d.own.GID); err != nil {
				return err
			}
		}
	}
	for _, msg := range src[:n] {
		if err := os.Link(filepath.Join(d.dir, from, msg.Name), filepath.Join(dir, msg.Name)); err != nil {
			return err
		}
	}
	return d.save(user, src[:n])
}

// prepare generates (or finds cached) every Maildir the configuration needs.
func (d *dataset) prepare(cfg *config) error {
	maxBig := cfg.dele
	for _, n := range cfg.sizes {
		maxBig = max(maxBig, n)
	}
	if m := d.load(bigUser(maxBig)); m == nil {
		// A larger cached one may serve as the source.
		src := ""
		if ents, err := os.ReadDir(d.dir); err == nil {
			for _, e := range ents {
				name := strings.TrimSuffix(e.Name(), ".manifest")
				if strings.HasPrefix(name, "big") && name != e.Name() {
					if m := d.load(name); len(m) > maxBig && (src == "" || len(m) < len(d.load(src))) {
						src = name
					}
				}
			}
		}
		if src != "" {
			if err := d.linkPrefix(bigUser(maxBig), src, maxBig); err != nil {
				return err
			}
		} else {
			d.progress("generating %d messages (once; cached in %s)", maxBig, d.dir)
			if err := d.generate(bigUser(maxBig), streamBig, maxBig, cfg.workers); err != nil {
				return err
			}
		}
	}
	for _, n := range append([]int{cfg.dele}, cfg.sizes...) {
		if err := d.linkPrefix(bigUser(n), bigUser(maxBig), n); err != nil {
			return err
		}
	}
	// retr: the shortest prefix of the big series holding retrMB of wire octets.
	big := d.load(bigUser(maxBig))
	var sum int64
	k := 0
	for k < len(big) && sum < int64(cfg.retrMB)<<20 {
		sum += big[k].WireSize
		k++
	}
	if err := d.linkPrefix("retr", bigUser(maxBig), k); err != nil {
		return err
	}
	var users []func() error
	for i := range cfg.concUsers {
		users = append(users, func() error { return d.generate(concUser(i), streamConc+uint64(i), cfg.concMsgs, 1) })
	}
	for i := range cfg.idleConns {
		users = append(users, func() error { return d.generate(idleUser(i), streamIdle+uint64(i), cfg.idleMsgs, 1) })
	}
	for i := range cfg.bcryptUsers {
		users = append(users, func() error { return d.generate(bcryptUser(i), 0, 0, 1) })
	}
	d.progress("preparing %d small mailboxes", len(users))
	return parallel(cfg.workers, len(users), func(i int) error { return users[i]() })
}

// parallel runs fn(0..n-1) on workers goroutines and returns the first error.
func parallel(workers, n int, fn func(i int) error) error {
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if err := fn(i); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// copyUsers hard-links the pristine Maildirs of users into root: cheap, and
// the servers' renames, unlinks and index files never touch the pristine
// copies (neither server rewrites a message file in place).
func (d *dataset) copyUsers(root string, users []string) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	const batch = 500
	for i := 0; i < len(users); i += batch {
		args := []string{"-al", "--"}
		for _, u := range users[i:min(i+batch, len(users))] {
			if err := os.RemoveAll(filepath.Join(root, u)); err != nil {
				return err
			}
			args = append(args, filepath.Join(d.dir, u))
		}
		args = append(args, root+"/")
		if out, err := exec.Command("cp", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("cp -al: %v: %s", err, out)
		}
	}
	return nil
}

// countMessages counts the files in a Maildir's new/ and cur/.
func countMessages(dir string) (int, error) {
	n := 0
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, err
		}
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), ".") {
				n++
			}
		}
	}
	return n, nil
}

// writePasswd writes the password file both servers read: {SHA} hashes
// (htpasswd -s; Dovecot's SHA scheme) for everyone, bcrypt cost 10 ($2y$,
// htpasswd -B) for the bc users.
func writePasswd(path string, users []string, bcryptUsers int) error {
	sum := sha1.Sum([]byte(password))
	sha := "{SHA}" + base64.StdEncoding.EncodeToString(sum[:])
	var b strings.Builder
	for _, u := range users {
		fmt.Fprintf(&b, "%s:%s\n", u, sha)
	}
	if bcryptUsers > 0 {
		h, err := bcrypt.GenerateFromPassword([]byte(password), 10)
		if err != nil {
			return err
		}
		hash := "$2y$" + strings.TrimPrefix(string(h), "$2a$")
		for i := range bcryptUsers {
			fmt.Fprintf(&b, "%s:%s\n", bcryptUser(i), hash)
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
