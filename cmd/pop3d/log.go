package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"syscall"
)

// newLogger returns the daemon's logger: slog text lines on w at the level
// held by level (changed on SIGHUP). Under journald the time attribute is
// left out because the journal stamps every line itself.
func newLogger(w io.Writer, level *slog.LevelVar, journal bool) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if journal {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// isJournal reports whether f is the stream systemd named in JOURNAL_STREAM
// ("DEV:INODE"). Comparing with f itself, as systemd.exec(5) advises, keeps
// the time attribute when a child of a service has its stderr redirected
// but inherited the variable.
func isJournal(f *os.File, journalStream string) bool {
	if journalStream == "" {
		return false
	}
	var dev, ino uint64
	if _, err := fmt.Sscanf(journalStream, "%d:%d", &dev, &ino); err != nil {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return uint64(st.Dev) == dev && st.Ino == ino
}
