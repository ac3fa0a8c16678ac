package maildir

import (
	"context"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	gomaildir "github.com/emersion/go-maildir"
	"golang.org/x/sys/unix"
)

// TestMain runs a helper role instead of the tests when the test binary is
// re-executed by a test that needs a second real process.
func TestMain(m *testing.M) {
	if role := os.Getenv(helperEnv); role != "" {
		os.Exit(runHelper(role))
	}
	os.Exit(m.Run())
}

// testLogger writes the package's log lines to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// newMaildir makes an empty Maildir in a temporary directory.
func newMaildir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "Maildir")
	if err := gomaildir.Dir(dir).Init(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// put writes a message file as an MTA would (tmp/ then rename).
func put(t testing.TB, dir, sub, name, content string) {
	t.Helper()
	tmp := filepath.Join(dir, "tmp", name)
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, sub, name)); err != nil {
		t.Fatal(err)
	}
}

func openMB(t testing.TB, dir string, opts Options) *Mailbox {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	mb, err := Open(context.Background(), dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return mb
}

func readMsg(t testing.TB, mb *Mailbox, i int) string {
	t.Helper()
	rc, err := mb.Open(i)
	if err != nil {
		t.Fatalf("Open(%d): %v", i, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tree returns every file under dir (relative path -> content), skipping
// the files this package owns when skipOwn is set.
func tree(t testing.TB, dir string, skipOwn bool) map[string]string {
	t.Helper()
	out := make(map[string]string)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if skipOwn && (rel == cacheName || rel == lockName || rel == uidlRecordName || rel == listingName) {
			return nil
		}
		if d.IsDir() {
			out[rel+"/"] = ""
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[rel] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func keys(m map[string]string) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	slices.Sort(k)
	return k
}

func uids(mb *Mailbox) []string {
	var u []string
	for i := range mb.Len() {
		u = append(u, mb.UID(i))
	}
	return u
}

func mkfifo(p string) error { return unix.Mkfifo(p, 0o600) }

// dirFD opens dir for the *at calls of the cache functions.
func dirFD(t testing.TB, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

// writeCacheDir is writeCache on the directory dir.
func writeCacheDir(t testing.TB, dir string, ents []cacheEntry) error {
	t.Helper()
	fd := dirFD(t, dir)
	defer unix.Close(fd)
	return writeCache(fd, dir, ents)
}

// readCacheDir is readCache on the directory dir.
func readCacheDir(t testing.TB, dir string, limit int64) ([]byte, error) {
	t.Helper()
	fd := dirFD(t, dir)
	defer unix.Close(fd)
	return readCache(fd, limit)
}
