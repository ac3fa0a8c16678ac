package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/pop3d/pop3d/daemon"
)

// registry is the list of live sessions behind `pop3d who` and `pop3d kick`,
// kept up to date as a daemon.Observer.
type registry struct {
	mu       sync.Mutex
	sessions map[*daemon.Session]*liveSession
}

// liveSession is what `pop3d who` shows of one session.
type liveSession struct {
	user     string // once logged in
	tls      bool
	state    string // AUTHORIZATION, TRANSACTION, UPDATE
	messages int    // in the maildrop at login
	sent     int64  // octets written so far
}

var _ daemon.Observer = (*registry)(nil)

func newRegistry() *registry {
	return &registry{sessions: make(map[*daemon.Session]*liveSession)}
}

// Connect implements daemon.Observer.
func (r *registry) Connect(s *daemon.Session) {
	r.mu.Lock()
	r.sessions[s] = &liveSession{tls: s.TLS, state: "AUTHORIZATION"}
	r.mu.Unlock()
}

// Refuse implements daemon.Observer; Disconnect follows when s is not nil.
func (r *registry) Refuse(*daemon.Session, daemon.Refusal) {}

// Login implements daemon.Observer.
func (r *registry) Login(s *daemon.Session, l daemon.Login) {
	if l.Result != daemon.LoginSuccess {
		return
	}
	r.update(s, func(ls *liveSession) {
		ls.user, ls.state, ls.messages = l.User, "TRANSACTION", l.Messages
	})
}

// Command implements daemon.Observer.
func (r *registry) Command(s *daemon.Session, c daemon.Command) {
	r.update(s, func(ls *liveSession) {
		ls.tls = c.TLS
		ls.sent += c.Octets
	})
}

// Update implements daemon.Observer.
func (r *registry) Update(s *daemon.Session, _ daemon.Update) {
	r.update(s, func(ls *liveSession) { ls.state = "UPDATE" })
}

// Disconnect implements daemon.Observer.
func (r *registry) Disconnect(s *daemon.Session, _ daemon.Disconnect) {
	r.mu.Lock()
	delete(r.sessions, s)
	r.mu.Unlock()
}

func (r *registry) update(s *daemon.Session, f func(*liveSession)) {
	r.mu.Lock()
	if ls := r.sessions[s]; ls != nil {
		f(ls)
	}
	r.mu.Unlock()
}

// whoRow is one line of `pop3d who`.
type whoRow struct {
	h  *daemon.Session
	ls liveSession
}

// snapshot returns the live sessions, oldest first.
func (r *registry) snapshot() []whoRow {
	r.mu.Lock()
	rows := make([]whoRow, 0, len(r.sessions))
	for h, ls := range r.sessions {
		rows = append(rows, whoRow{h: h, ls: *ls})
	}
	r.mu.Unlock()
	slices.SortFunc(rows, func(a, b whoRow) int {
		if c := a.h.Start.Compare(b.h.Start); c != 0 {
			return c
		}
		return strings.Compare(a.h.ID, b.h.ID)
	})
	return rows
}

// writeWho prints the live sessions as a table, one per line.
func (r *registry) writeWho(w io.Writer, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SESSION\tUSER\tREMOTE\tTLS\tSTATE\tSINCE\tMESSAGES\tSENT")
	for _, row := range r.snapshot() {
		user := row.ls.user
		if user == "" {
			user = "-"
		}
		tls := "no"
		if row.ls.tls {
			tls = "yes"
		}
		remote := "-"
		if row.h.RemoteAddr != nil {
			remote = row.h.RemoteAddr.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s (%s)\t%d\t%d\n", row.h.ID, quoteField(user), remote, tls,
			row.ls.state, row.h.Start.UTC().Format(time.RFC3339), now.Sub(row.h.Start).Round(time.Second),
			row.ls.messages, row.ls.sent)
	}
	return tw.Flush()
}

// quoteField keeps a user name with spaces or control characters from
// breaking the table: such names are shown quoted.
func quoteField(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '"' }) {
		return fmt.Sprintf("%q", s)
	}
	return s
}

// kick ends the sessions whose id is target, or else those of the user
// target, and returns how many it told to end.
func (r *registry) kick(target string) int {
	if target == "" {
		return 0 // would match every session not logged in
	}
	var byID, byUser []*daemon.Session
	r.mu.Lock()
	for h, ls := range r.sessions {
		switch {
		case h.ID == target:
			byID = append(byID, h)
		case ls.user == target:
			byUser = append(byUser, h)
		}
	}
	r.mu.Unlock()
	victims := byID
	if len(victims) == 0 {
		victims = byUser
	}
	for _, h := range victims {
		h.Kick()
	}
	return len(victims)
}
