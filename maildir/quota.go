package maildir

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Maildir++ quota (Courier's maildirquota(7), also Dovecot's quota=maildir):
// maildirsize at the top of the Maildir holds the quota on its first line
// ("<bytes>S,<count>C") and one "<bytes> <count>" line per change. Deleting
// mail appends "-<bytes> -<count>" with one write on an O_APPEND
// descriptor, so that concurrent writers never interleave; deliverquota
// and Dovecot recalculate the file when it grows or looks wrong.
const maildirSizeName = "maildirsize"

// maxMaildirSize bounds the read of maildirsize: Courier recalculates it
// past 5120 bytes, so anything much larger is not one of theirs.
const maxMaildirSize = 1 << 20

// maildirSize is a parsed maildirsize.
type maildirSize struct {
	quotaBytes, quotaCount int64 // 0: no limit of that kind
	bytes, count           int64 // the sums of the lines
	lines                  int   // lines after the quota line
}

// parseMaildirSize reads a maildirsize. Anything Courier would not read
// (a bad quota line, a line without two integers, an unterminated last
// line) is an error; the file is then left alone.
func parseMaildirSize(b []byte) (maildirSize, error) {
	var q maildirSize
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		return q, errors.New("maildirsize: no quota line")
	}
	for _, f := range strings.Split(string(b[:nl]), ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.ParseInt(f[:len(f)-1], 10, 64)
		if err != nil || n < 0 {
			return q, fmt.Errorf("maildirsize: bad quota %q", f)
		}
		switch f[len(f)-1] {
		case 'S':
			q.quotaBytes = n
		case 'C':
			q.quotaCount = n
		default:
			return q, fmt.Errorf("maildirsize: bad quota %q", f)
		}
	}
	for rest := b[nl+1:]; len(rest) > 0; {
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			return q, errors.New("maildirsize: last line not terminated")
		}
		f := strings.Fields(string(rest[:nl]))
		rest = rest[nl+1:]
		if len(f) != 2 {
			return q, fmt.Errorf("maildirsize: line %d: want two numbers", q.lines+2)
		}
		by, err1 := strconv.ParseInt(f[0], 10, 64)
		n, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			return q, fmt.Errorf("maildirsize: line %d: want two numbers", q.lines+2)
		}
		// Sums saturate rather than wrap: the file is the user's.
		q.bytes = satAdd(q.bytes, by)
		q.count = satAdd(q.count, n)
		q.lines++
	}
	return q, nil
}

func satAdd(a, b int64) int64 {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		if b > 0 {
			return 1<<63 - 1
		}
		return -1 << 63
	}
	return s
}

// quotaLine is the line a removal of count messages of bytes quota bytes
// appends.
func quotaLine(bytes, count int64) string {
	return "-" + strconv.FormatInt(bytes, 10) + " -" + strconv.FormatInt(count, 10) + "\n"
}

// errNoQuota means the Maildir has no maildirsize: nothing to update.
var errNoQuota = errors.New("no maildirsize")

// appendQuota records the removal of count messages of bytes quota bytes in
// the maildirsize of the Maildir open as rootfd, if it has one that reads
// well: one write on an O_APPEND descriptor. The file is opened without
// following a symlink and without blocking on a FIFO, and must be a
// regular file; it is never created.
func appendQuota(rootfd int, bytes, count int64) error {
	if count <= 0 {
		return nil
	}
	fd, err := unix.Openat(rootfd, maildirSizeName, unix.O_RDWR|unix.O_APPEND|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if errors.Is(err, unix.ENOENT) {
		return errNoQuota
	}
	if err != nil {
		return fmt.Errorf("maildirsize: %w", err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("maildirsize: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return errors.New("maildirsize: not a regular file")
	}
	if st.Size > maxMaildirSize {
		return fmt.Errorf("maildirsize: %d bytes, left for the next delivery to recalculate", st.Size)
	}
	b := make([]byte, st.Size)
	n, err := io.ReadFull(fdReader(fd), b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("maildirsize: %w", err)
	}
	if _, err := parseMaildirSize(b[:n]); err != nil {
		return fmt.Errorf("%w; left for the next delivery to recalculate", err)
	}
	line := quotaLine(bytes, count)
	w, err := unix.Write(fd, []byte(line))
	if err == nil && w != len(line) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("maildirsize: append: %w", err)
	}
	return nil
}

// fdReader reads a raw descriptor.
type fdReader int

func (r fdReader) Read(p []byte) (int, error) {
	n, err := unix.Read(int(r), p)
	if err != nil {
		return 0, err
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

// quotaSize is what the quota counts for a message file: the ,S= of its
// name (Courier's and Dovecot's rule), else its size on disk.
func quotaSize(name string, diskSize int64) int64 {
	u := baseName(name)
	for rest := u; ; {
		k := strings.Index(rest, ",S=")
		if k < 0 {
			break
		}
		rest = rest[k+3:]
		end := 0
		for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
			end++
		}
		if end > 0 && end <= 18 {
			n, _ := strconv.ParseInt(rest[:end], 10, 64)
			return n
		}
	}
	return diskSize
}

// updateQuota appends the removal of count messages of bytes quota bytes to
// the Maildir's maildirsize, if it has one. Failing is logged only: the
// next delivery that finds the file wrong recalculates it.
func (m *Mailbox) updateQuota(bytes, count int64) {
	err := appendQuota(m.root, bytes, count)
	if err != nil && !errors.Is(err, errNoQuota) {
		m.log.Warn("Maildir++ quota not updated", "file", maildirSizeName, "err", err)
	}
}
