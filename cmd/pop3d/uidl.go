package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"syscall"

	"github.com/pop3d/pop3d/maildir"
	"golang.org/x/sys/unix"
)

// runUIDL is `pop3d uidl [-config FILE] [-KEY VALUE ...] USER`: for the
// user's Maildir, one line per message with the number, UIDL, where the
// UIDL came from, size and file, as clients will see them after the
// switch. It takes the session lock like a login, changes no message,
// creates no Maildir, and records no UIDL (a run with a wrong
// dovecot_uidl_format must not pin wrong UIDLs). Run as root, it first
// becomes the user pop3d serves as (the user key) or else the Maildir's
// owner, so that the lock and cache files it leaves are the ones the daemon
// can open, never root's.
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
	if err := becomeMailOwner(&cfg, dir); err != nil {
		fmt.Fprintf(stderr, "pop3d uidl: %v\n", err)
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

// becomeMailOwner drops root before a subcommand touches a Maildir: to the
// configured user when there is one, else to the owner of the Maildir
// itself (the single-uid model: pop3d serves as the owner of the mail). A
// root-owned or missing Maildir leaves the process as it is.
func becomeMailOwner(cfg *Config, dir string) error {
	if syscall.Geteuid() != 0 {
		return nil
	}
	if cfg.User != "" {
		plan, _, err := planDrop(0, cfg.User, cfg.Group, osLookup())
		if err != nil {
			return err
		}
		return dropPrivileges(plan)
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil || st.Uid == 0 {
		return nil
	}
	c := &credential{user: fmt.Sprintf("uid %d", st.Uid), uid: int(st.Uid), gid: int(st.Gid), groups: []int{int(st.Gid)}}
	if c.gid == 0 {
		return fmt.Errorf("%s: owned by uid %d with group root; set user and group", dir, st.Uid)
	}
	return dropPrivileges(c)
}
