package maildir

import (
	"context"
	"errors"
	"runtime"
	"sync"

	"github.com/pop3d/pop3d/internal/wireform"
	"golang.org/x/sys/unix"
)

// sizeRest gives a wire size to every message the cache did not size,
// reading the files. Dovecot's ,W= counts a message without a final
// newline without the CRLF that RETR appends (seen with dovecot-lda
// 2.3.19: 22 bytes ending in "no newline" got W=24, the wire form is 26),
// so the last byte is checked once and the result cached like a computed
// size. Messages that cannot be read are dropped from the snapshot;
// complete says that none was.
func (m *Mailbox) sizeRest(ctx context.Context) (complete bool, err error) {
	var todo []int
	for i := range m.msgs {
		if s := m.msgs[i].src; s == srcNone || s == srcW {
			todo = append(todo, i)
		}
	}
	if len(todo) == 0 {
		return true, nil
	}
	if err := m.computeSizes(ctx, m.fds, todo); err != nil {
		return false, err
	}
	m.dirty = true
	// Drop what could not be read: it vanished, or is unreadable and
	// was logged. It is not touched, and shows in a later session.
	// Second names are keyed by index: they move with their message,
	// or Commit would unlink one of a message the user kept.
	out := m.msgs[:0]
	var alias map[int]location
	for i, x := range m.msgs {
		if x.src == srcNone {
			continue
		}
		if a, ok := m.alias[i]; ok {
			if alias == nil {
				alias = make(map[int]location)
			}
			alias[len(out)] = a
		}
		out = append(out, x)
	}
	clear(m.msgs[len(out):])
	complete = len(out) == len(m.msgs)
	m.msgs = out
	m.alias = alias
	return complete, nil
}

// computeSizes reads the files of the messages at indexes todo with a
// bounded pool of workers and sets their wire sizes. Messages that cannot be
// read keep srcNone.
func (m *Mailbox) computeSizes(ctx context.Context, fds [2]int, todo []int) error {
	// More workers than CPUs: on a cold cache or NFS the reads wait.
	// A few files are read by one worker: each holds a 64 KiB buffer, and a
	// small mailbox gains nothing from parallel reads.
	workers := min(max(4*runtime.GOMAXPROCS(0), 8), 32, (len(todo)+filesPerWorker-1)/filesPerWorker)
	var shortEOF [2]bool
	for d, fd := range fds {
		var st unix.Statfs_t
		shortEOF[d] = unix.Fstatfs(fd, &st) == nil && shortReadIsEOF(int64(st.Type)) // its width differs by GOARCH
	}
	var next int
	var mu sync.Mutex // guards next
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			for {
				if ctx.Err() != nil {
					return
				}
				mu.Lock()
				k := next
				next++
				mu.Unlock()
				if k >= len(todo) {
					return
				}
				x := &m.msgs[todo[k]] // each worker writes only its own entries
				name := m.name(x)
				var size, dsize, mtime int64
				var err error
				if x.src == srcW {
					var st unix.Stat_t
					size, st, err = fileWCheck(fds[x.dir], name, x.size)
					dsize, mtime = st.Size, st.Mtim.Nano()
					if err == nil && !plausibleSize(size, dsize) {
						// A ,W= no file of this size can have: the
						// name lies (or was made to); read the file.
						m.log.Debug("implausible ,W= size in the file name, computed", "file", subdirs[x.dir]+"/"+name,
							"w", size, "disk", dsize)
						size, dsize, err = fileWireSize(fds[x.dir], name, buf, shortEOF[x.dir])
						mtime = 0
					}
				} else {
					size, dsize, err = fileWireSize(fds[x.dir], name, buf, shortEOF[x.dir])
				}
				if err != nil {
					x.src = srcNone
					if !errors.Is(err, unix.ENOENT) {
						m.log.Warn("cannot read message, left out of this session", "file", subdirs[x.dir]+"/"+name, "err", err)
					}
					continue
				}
				x.size, x.src, x.dsize, x.mtime = size, srcComputed, dsize, mtime
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// fileWireSize reads the file name in the directory dirfd and returns its
// wire size and its size on disk.
//
// With shortEOF (see shortReadIsEOF) there is no fstat: a read of a
// regular file there returns less than asked only at the end of the file,
// so the loop ends on a short read, and open, read, close are the only
// system calls for a typical message (fstat and the read returning 0 made
// this 40% slower on 100k files). Elsewhere it reads until a read returns
// 0. What is not a regular file despite its directory entry (replaced
// meanwhile) is caught anyway: a directory fails with EISDIR, a FIFO opened
// O_NONBLOCK reads as empty or EAGAIN, and maxMessage bounds an endless
// device.
func fileWireSize(dirfd int, name string, buf []byte, shortEOF bool) (int64, int64, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, 0, err
	}
	defer unix.Close(fd)
	var w wireform.Counter
	for {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, 0, err
		}
		w.Count(buf[:n])
		if n == 0 || (shortEOF && n < len(buf)) {
			return w.Size(), w.Raw(), nil
		}
		if w.Raw() > maxMessage {
			return 0, 0, errors.New("larger than 64 GiB")
		}
	}
}

// shortReadIsEOF reports whether on a filesystem of this type (statfs
// f_type) a read of a regular file returns less than asked only at the
// end of the file. That holds for local filesystems read through the page
// cache; FUSE (sshfs, direct_io), CIFS and others may return short reads in
// the middle of a file, which would undercount a size that is then cached.
func shortReadIsEOF(fsType int64) bool {
	switch uint32(fsType) {
	case unix.EXT4_SUPER_MAGIC, unix.XFS_SUPER_MAGIC, unix.BTRFS_SUPER_MAGIC, unix.TMPFS_MAGIC:
		return true
	}
	return false
}

// filesPerWorker is how many files to size make one more reader worthwhile.
const filesPerWorker = 16

// maxMessage bounds the bytes read to size one message.
const maxMessage = 64 << 30

// plausibleSize reports whether a file of disk octets can have the wire
// size wire: at least its own length (line endings only grow), at most
// twice that plus a final CRLF (every byte a bare LF), and no larger than
// a message pop3d would read. Sizes from ,W= and from the cache are used
// only then; otherwise the file is read.
func plausibleSize(wire, disk int64) bool {
	return disk >= 0 && disk <= maxMessage && wire >= disk && wire <= 2*disk+2
}

// fileWCheck returns the wire size of a file whose name carries Dovecot's
// ,W=w: w, plus 2 when the file does not end in LF.
func fileWCheck(dirfd int, name string, w int64) (int64, unix.Stat_t, error) {
	var st unix.Stat_t
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, st, err
	}
	defer unix.Close(fd)
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, st, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return 0, st, errors.New("not a regular file")
	}
	if st.Size == 0 {
		return 0, st, nil
	}
	var b [1]byte
	for {
		n, err := unix.Pread(fd, b[:], st.Size-1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, st, err
		}
		if n == 1 && b[0] != '\n' {
			w += 2
		}
		return w, st, nil
	}
}
