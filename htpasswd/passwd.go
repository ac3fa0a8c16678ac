package htpasswd

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/GehirnInc/crypt/sha512_crypt"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sys/unix"

	"github.com/pop3d/pop3d/internal/regfile"
)

const (
	defaultPasswdFile = "/etc/pop3d/passwd"
	// passwdCost is the bcrypt cost `pop3d passwd` writes: about 50 ms
	// per check on a current CPU core.
	passwdCost = 10
	// newFileMode lets the daemon's group read a new file, nobody else.
	newFileMode = 0o640
)

// RunPasswd implements `pop3d passwd [-f FILE] [-scheme bcrypt|sha512-crypt]
// [-d] USER`; args excludes "passwd"; returns the exit status (0 done, 1
// failed, 2 usage). The new password is read twice without echo when stdin
// is a terminal, else as one line from stdin. The file is rewritten
// atomically, keeping its mode, owner and every other line byte for byte.
func RunPasswd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("pop3d passwd", flag.ContinueOnError)
	fset.SetOutput(stderr)
	file := fset.String("f", defaultPasswdFile, "password `file` to change")
	scheme := fset.String("scheme", "bcrypt", "hash `scheme`: bcrypt (cost 10) or sha512-crypt")
	del := fset.Bool("d", false, "delete the user instead of setting a password")
	fset.Usage = func() {
		fmt.Fprintf(stderr, "usage: pop3d passwd [-f FILE] [-scheme bcrypt|sha512-crypt] [-d] USER\n")
		fset.PrintDefaults()
	}
	// Accept flags after the user name too ("pop3d passwd alice -d").
	var pos []string
	for rest := args; ; {
		if err := fset.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fset.NArg() == 0 {
			break
		}
		pos = append(pos, fset.Arg(0))
		rest = fset.Args()[1:]
	}
	if len(pos) != 1 {
		fset.Usage()
		return 2
	}
	user := pos[0]
	if err := validUser(user); err != nil {
		fmt.Fprintf(stderr, "pop3d passwd: %v\n", err)
		return 2
	}
	var newHash string
	if !*del {
		var hashFn func([]byte) (string, error)
		switch *scheme {
		case "bcrypt":
			hashFn = hashBcrypt
		case "sha512-crypt":
			hashFn = hashSha512Crypt
		default:
			fmt.Fprintf(stderr, "pop3d passwd: unknown scheme %q (bcrypt or sha512-crypt)\n", *scheme)
			return 2
		}
		pw, err := readNewPassword(stdin, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "pop3d passwd: %v\n", err)
			return 1
		}
		if newHash, err = hashFn(pw); err != nil {
			fmt.Fprintf(stderr, "pop3d passwd: %v\n", err)
			return 1
		}
	}
	msg, err := editFile(*file, user, newHash, *del)
	if err != nil {
		fmt.Fprintf(stderr, "pop3d passwd: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, msg)
	return 0
}

// validUser refuses names that would corrupt the file or never log in.
func validUser(user string) error {
	switch {
	case user == "":
		return errors.New("empty user name")
	case strings.ContainsRune(user, ':'):
		return fmt.Errorf("user name %q contains ':'", user)
	case strings.HasPrefix(strings.TrimLeft(user, " \t"), "#"):
		return fmt.Errorf("user name %q would be read as a comment", user)
	case strings.TrimSpace(user) != user:
		return fmt.Errorf("user name %q has leading or trailing white space", user)
	}
	return checkUserName(user)
}

func hashBcrypt(pw []byte) (string, error) {
	if len(pw) > 72 {
		return "", errors.New("password longer than 72 bytes: bcrypt would ignore the rest (use -scheme sha512-crypt)")
	}
	h, err := bcrypt.GenerateFromPassword(pw, passwdCost)
	if err != nil {
		return "", fmt.Errorf("bcrypt: %w", err)
	}
	// $2y$ as Apache's htpasswd -B and Dovecot write it: the same algorithm.
	return "$2y$" + string(h[4:]), nil
}

func hashSha512Crypt(pw []byte) (string, error) {
	h, err := sha512_crypt.New().Generate(pw, nil)
	if err != nil {
		return "", fmt.Errorf("sha512-crypt: %w", err)
	}
	return h, nil
}

// readNewPassword reads the password twice without echo from a terminal,
// or one line from any other stdin.
func readNewPassword(stdin io.Reader, stderr io.Writer) ([]byte, error) {
	if f, ok := stdin.(*os.File); ok && isTerminal(f) {
		pw1, err := readNoEcho(f, stderr, "New password: ")
		if err != nil {
			return nil, fmt.Errorf("reading password: %w", err)
		}
		pw2, err := readNoEcho(f, stderr, "Retype new password: ")
		if err != nil {
			return nil, fmt.Errorf("reading password: %w", err)
		}
		if !bytes.Equal(pw1, pw2) {
			return nil, errors.New("passwords do not match")
		}
		return checkPassword(pw1)
	}
	pw, err := bufio.NewReader(stdin).ReadBytes('\n')
	if err != nil && !(errors.Is(err, io.EOF) && len(pw) > 0) {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("no password on stdin")
		}
		return nil, fmt.Errorf("reading password: %w", err)
	}
	pw = bytes.TrimSuffix(pw, []byte("\n"))
	pw = bytes.TrimSuffix(pw, []byte("\r"))
	return checkPassword(pw)
}

func checkPassword(pw []byte) ([]byte, error) {
	if len(pw) == 0 {
		return nil, errors.New("empty password")
	}
	if bytes.IndexByte(pw, 0) >= 0 {
		return nil, errors.New("password contains a NUL byte")
	}
	return pw, nil
}

// editFile sets (hash != "") or deletes user's line in path and rewrites
// the file atomically. It returns what it did, for the admin.
func editFile(path, user, hash string, del bool) (string, error) {
	// Rewrite the file a symlink points to, not the link.
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	dir := filepath.Dir(path)
	unlock, err := lockDir(dir)
	if err != nil {
		return "", err
	}
	defer unlock()

	// Not os.ReadFile: a FIFO at path would block `pop3d passwd` forever.
	var old []byte
	fd, fi, err := regfile.Open(path)
	exists := err == nil
	switch {
	case exists:
		old, err = io.ReadAll(fd)
		fd.Close()
		if err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
	case errors.Is(err, fs.ErrNotExist) && !del:
	default:
		return "", err
	}
	data, found := editLines(old, user, hash, del)
	var msg string
	switch {
	case del && !found:
		return "", fmt.Errorf("user %q not found in %s", user, path)
	case del:
		msg = fmt.Sprintf("deleted user %s from %s", user, path)
	case found:
		msg = fmt.Sprintf("changed password of %s in %s", user, path)
	default:
		msg = fmt.Sprintf("added user %s to %s", user, path)
	}
	mode, uid, gid := fs.FileMode(newFileMode), -1, -1
	if exists {
		mode = fi.Mode().Perm()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	}
	if err := writeAtomic(path, data, mode, uid, gid); err != nil {
		return "", err
	}
	return msg, nil
}

// editLines returns data with user's line changed or deleted, every other
// byte unchanged. Setting replaces only the password field of the first
// line for user (a Dovecot line keeps its other fields); later duplicate
// lines, ignored at load, are left alone. Deleting removes every line for
// user, so that no ignored duplicate comes to life.
func editLines(data []byte, user, hash string, del bool) ([]byte, bool) {
	var out bytes.Buffer
	out.Grow(len(data) + len(user) + len(hash) + 2)
	nl := "\n"
	if i := bytes.IndexByte(data, '\n'); i > 0 && data[i-1] == '\r' {
		nl = "\r\n"
	}
	found := false
	for rest := data; len(rest) > 0; {
		var ln []byte
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			ln, rest = rest[:i+1], rest[i+1:]
		} else {
			ln, rest = rest, nil
		}
		l, skip, _ := parseLine(strings.TrimSuffix(string(ln), "\n"))
		if skip || l.user != user {
			out.Write(ln)
			continue
		}
		if del {
			found = true
			continue
		}
		if found {
			out.Write(ln)
			continue
		}
		found = true
		// Replace the password field: up to the next ':' or the line end
		// (LF or CRLF; a lone CR belongs to the field).
		text := ln[len(user)+1:]
		body := bytes.TrimSuffix(bytes.TrimSuffix(text, []byte("\n")), []byte("\r"))
		end := bytes.IndexByte(body, ':')
		if end < 0 {
			end = len(body)
		}
		out.WriteString(user + ":" + hash)
		out.Write(text[end:])
	}
	if !found && !del {
		if b := out.Bytes(); len(b) > 0 && b[len(b)-1] != '\n' {
			out.WriteString(nl)
		}
		out.WriteString(user + ":" + hash + nl)
	}
	return out.Bytes(), found
}

// lockDir takes an exclusive flock on dir so that two `pop3d passwd` runs
// do not lose each other's change; the lock goes with the process.
func lockDir(dir string) (func(), error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(d.Fd()), unix.LOCK_EX); err != nil {
		d.Close()
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	return func() { d.Close() }, nil
}

// writeAtomic replaces path with data: a temporary file in the same
// directory with the given mode and owner (uid -1: the caller's), fsynced,
// renamed over path, then the directory fsynced so the rename survives a
// crash.
func writeAtomic(path string, data []byte, mode fs.FileMode, uid, gid int) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp")
	if err != nil {
		return err
	}
	renamed := false
	defer func() {
		if !renamed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if uid >= 0 {
		tfi, err := tmp.Stat()
		if err != nil {
			return err
		}
		if st, ok := tfi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != uid || int(st.Gid) != gid {
			if err := tmp.Chown(uid, gid); err != nil {
				return fmt.Errorf("keeping the owner of %s: %w", path, err)
			}
		}
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	renamed = true
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
