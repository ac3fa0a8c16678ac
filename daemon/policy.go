package daemon

import (
	"strconv"
	"time"
)

// Expire is an RFC 2449 EXPIRE value: how many days after its first
// retrieval the server deletes a message. The zero value is NEVER.
type Expire struct {
	Days int  // 0: retrieved messages are deleted when the session ends with QUIT
	Set  bool // false: NEVER
}

// ExpireAfter returns the EXPIRE value of days (0 or more).
func ExpireAfter(days int) Expire { return Expire{Days: max(days, 0), Set: true} }

// String is the CAPA form: "NEVER" or the number of days.
func (e Expire) String() string {
	if !e.Set {
		return "NEVER"
	}
	return strconv.Itoa(e.Days)
}

// UserPolicy is what RFC 2449 lets a server tell a client about its
// user's limits: LOGIN-DELAY (the shortest time between two logins) and
// EXPIRE.
type UserPolicy struct {
	LoginDelay time.Duration // 0: none
	Expire     Expire
}

// PolicyMailbox may be implemented by a Mailbox whose user has limits of
// their own (CAPA announces them after login) and whose store remembers
// when messages were first retrieved (for EXPIRE).
type PolicyMailbox interface {
	// Policy is the user's LOGIN-DELAY and EXPIRE.
	Policy() UserPolicy
	// FirstRetrieved is when message i was first retrieved with RETR in
	// an earlier session that ended with QUIT; false if never.
	FirstRetrieved(i int) (time.Time, bool)
}

// now is the engine's clock.
func (c *Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// capaPolicy writes the LOGIN-DELAY and EXPIRE capability lines: before
// login the server's values, with USER when users may differ (RFC 2449
// section 6.5 and 6.7); after login the user's own.
func (s *session) capaPolicy() {
	p := s.policy
	suffix := ""
	if s.state == stateAuth {
		p = UserPolicy{LoginDelay: s.cfg.LoginDelay, Expire: s.cfg.Expire}
		if s.cfg.PerUserPolicy != nil && s.cfg.PerUserPolicy() {
			suffix = " USER"
		}
	}
	if p.LoginDelay > 0 || suffix != "" {
		s.reply("LOGIN-DELAY " + strconv.FormatInt(int64(p.LoginDelay/time.Second), 10) + suffix)
	}
	s.reply("EXPIRE " + p.Expire.String() + suffix)
}

// expired returns the messages EXPIRE deletes at this UPDATE, in
// ascending order, skipping those already marked deleted: with EXPIRE 0
// every message retrieved, in this session or before; with EXPIRE n those
// first retrieved more than n days ago. A message never retrieved is never
// expired. TOP is a preview and does not count.
func (s *session) expired() []int {
	if !s.policy.Expire.Set {
		return nil
	}
	pm, _ := s.mbox.(PolicyMailbox)
	age := time.Duration(s.policy.Expire.Days) * 24 * time.Hour
	now := s.cfg.now()
	var out []int
	for i := range s.mbox.Len() {
		if s.deleted.has(i) {
			continue
		}
		if s.policy.Expire.Days == 0 && s.retrieved.has(i) {
			out = append(out, i)
			continue
		}
		if pm == nil {
			continue
		}
		if at, ok := pm.FirstRetrieved(i); ok && (age == 0 || now.Sub(at) > age) {
			out = append(out, i)
		}
	}
	return out
}
