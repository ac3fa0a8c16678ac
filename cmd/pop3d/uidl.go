package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/pop3d/pop3d/maildir"
)

// runUIDL is `pop3d uidl [-config FILE] [-KEY VALUE ...] USER`: for the
// user's Maildir, one line per message with the number, UIDL, where the
// UIDL came from, size and file, as clients will see them after the
// switch. It takes the session lock like a login, changes no message,
// creates no Maildir, and records no UIDL (a run with a wrong
// dovecot_uidl_format must not pin wrong UIDLs).
func runUIDL(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: pop3d uidl [-config FILE] [-KEY VALUE ...] USER")
		return exitUsage
	}
	user := args[len(args)-1]
	opts, err := parseArgs(args[:len(args)-1], stderr)
	if err != nil {
		return exitUsage
	}
	cfg, err := opts.load()
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		printErrors(stderr, err)
		return exitFail
	}
	dir, err := maildir.ExpandTemplate(cfg.Maildir, user)
	if err != nil {
		fmt.Fprintf(stderr, "pop3d uidl: %s: %v\n", user, err)
		return exitFail
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	mb, err := maildir.Open(context.Background(), dir, maildir.Options{Logger: log,
		Legacy: cfg.UIDLLegacy, DovecotFormat: cfg.DovecotUIDLFormat, KeepTmp: true, Preview: true})
	if err != nil {
		fmt.Fprintf(stderr, "pop3d uidl: %v\n", err)
		return exitFail
	}
	defer mb.Close()
	for i := range mb.Len() {
		fmt.Fprintf(stdout, "%d %s %s %d %s\n", i+1, mb.UID(i), mb.UIDSource(i), mb.Size(i), mb.File(i))
	}
	return exitOK
}
