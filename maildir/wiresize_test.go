package maildir

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/pop3d/pop3d/internal/wireform"
	"golang.org/x/sys/unix"
)

// wireForm is the reference W(file), written out from its definition.
func wireForm(b []byte) []byte { return wireform.Reference(b) }

func TestWireSize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int64
	}{
		{"empty", "", 0},
		{"lf", "a\nb\n", 6},
		{"crlf", "a\r\nb\r\n", 6},
		{"no final newline", "a\nb", 6},
		{"no newline at all", "abc", 5},
		{"bare cr inside", "a\rb\n", 5},
		{"bare cr at end", "a\r", 4},
		{"cr cr lf", "a\r\r\n", 4},
		{"only lf", "\n", 2},
		{"only crlf", "\r\n", 2},
		{"only cr", "\r", 3},
		{"lf lf", "\n\n", 4},
		{"mixed", "h: v\r\nx: y\n\r\nbody\nend", 4 + 2 + 4 + 2 + 2 + 4 + 2 + 3 + 2},
		{"dot lines are not stuffed in the size", ".\n..\n", 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ref := int64(len(wireForm([]byte(tt.in)))); ref != tt.want {
				t.Fatalf("table wrong: reference gives %d, table %d", ref, tt.want)
			}
			got, err := WireSize(strings.NewReader(tt.in))
			if err != nil || got != tt.want {
				t.Errorf("WireSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
			// CR and LF split across reads must count the same.
			got, err = WireSize(iotest.OneByteReader(strings.NewReader(tt.in)))
			if err != nil || got != tt.want {
				t.Errorf("WireSize(one byte at a time %q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestWireSizeLarge(t *testing.T) {
	// 20 MB with CRLF pairs straddling the 32 KiB read boundary.
	var b bytes.Buffer
	b.Grow(21 << 20)
	line := strings.Repeat("x", 32<<10-1) + "\r\n" + strings.Repeat("y", 77) + "\n"
	for b.Len() < 20<<20 {
		b.WriteString(line)
	}
	b.WriteString("tail")
	want := int64(len(wireForm(b.Bytes())))
	got, err := WireSize(bytes.NewReader(b.Bytes()))
	if err != nil || got != want {
		t.Fatalf("WireSize(20 MB) = %d, %v; want %d", got, err, want)
	}
}

func TestWireSizeReadError(t *testing.T) {
	boom := errors.New("boom")
	if _, err := WireSize(iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
}

func FuzzWireSize(f *testing.F) {
	for _, s := range []string{"", "a", "\n", "\r", "\r\n", "a\r\r\n", "x\ny\r\nz", "\n\r\n\r"} {
		f.Add([]byte(s), uint16(1))
	}
	f.Fuzz(func(t *testing.T, b []byte, _ uint16) {
		want := int64(len(wireForm(b)))
		got, err := WireSize(iotest.HalfReader(bytes.NewReader(b)))
		if err != nil || got != want {
			t.Fatalf("WireSize(%q) = %d, %v; want %d", b, got, err, want)
		}
	})
}

// TestShortReadIsEOF: the short-read shortcut of fileWireSize is taken only
// on filesystems where a short read means the end of the file (review S5).
func TestShortReadIsEOF(t *testing.T) {
	for _, tt := range []struct {
		name string
		typ  int64
		want bool
	}{
		{"ext4", unix.EXT4_SUPER_MAGIC, true},
		{"xfs", unix.XFS_SUPER_MAGIC, true},
		{"btrfs", unix.BTRFS_SUPER_MAGIC, true},
		{"tmpfs", unix.TMPFS_MAGIC, true},
		{"fuse", unix.FUSE_SUPER_MAGIC, false},
		{"cifs", unix.CIFS_SUPER_MAGIC, false},
		{"smb2", unix.SMB2_SUPER_MAGIC, false},
		{"nfs", unix.NFS_SUPER_MAGIC, false},
		{"9p", unix.V9FS_MAGIC, false},
		{"unknown", 0, false},
	} {
		if got := shortReadIsEOF(tt.typ); got != tt.want {
			t.Errorf("%s: shortReadIsEOF = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestFileWireSize checks both ways of finding the end of a file, with a
// buffer small enough that messages span several reads and some end
// exactly at a buffer boundary.
func TestFileWireSize(t *testing.T) {
	dir := t.TempDir()
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	const bufSize = 8
	for k, in := range []string{
		"", "a", "a\n", "a\r\n", "abcdefg\n", "abcdefgh", "abcdefg\r\nhijklmn\n",
		"line one\nline two\r\nbare\rcr\nno final newline",
		strings.Repeat("0123456\n", 5), strings.Repeat("x", 3*bufSize+1),
	} {
		name := fmt.Sprintf("m%d", k)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(in), 0o600); err != nil {
			t.Fatal(err)
		}
		want := int64(len(wireForm([]byte(in))))
		for _, shortEOF := range []bool{false, true} {
			size, dsize, err := fileWireSize(dfd, name, make([]byte, bufSize), shortEOF)
			if err != nil || size != want || dsize != int64(len(in)) {
				t.Errorf("%q shortEOF=%v: %d, %d, %v; want %d, %d", in, shortEOF, size, dsize, err, want, len(in))
			}
		}
	}
}
