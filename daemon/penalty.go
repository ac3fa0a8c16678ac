package daemon

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
)

// The brute-force penalty, as Dovecot's anvil keeps it: each failed login
// from a client address doubles that address's failure delay, from
// Config.AuthFailureDelay up to penaltyMaxDelay, across connections; a
// successful login resets it, and an address quiet for penaltyTTL is
// forgotten. An attacker opening many connections thus waits as long as one
// retrying on a single connection.
//
// The table has a fixed size so that an address flood cannot grow memory:
// penaltySets sets of penaltyWays entries, an address hashed to one set
// and, when the set is full, replacing its least recently failed entry.
// Addresses are counted as the per-IP limit counts them (clientKey).
const (
	penaltyMaxDelay = 15 * time.Second
	penaltyTTL      = 15 * time.Minute
	penaltySets     = 2048
	penaltyWays     = 4
	maxPenaltyShift = 16 // doublings beyond this are capped anyway
)

type penaltyEntry struct {
	key   netip.Addr
	fails uint32
	last  int64 // unix ns of the last failure
}

// penalties is the per-address table. Safe for concurrent use.
type penalties struct {
	seed maphash.Seed
	mu   sync.Mutex
	sets [penaltySets][penaltyWays]penaltyEntry
}

func newPenalties() *penalties { return &penalties{seed: maphash.MakeSeed()} }

// penaltyKey is the address an entry is kept for, the same client key as
// the per-IP limit's (clientKey); false for none (not an IP connection).
func penaltyKey(ip netip.Addr) (netip.Addr, bool) {
	if !ip.IsValid() {
		return netip.Addr{}, false
	}
	return clientKey(ip), true
}

func (p *penalties) set(key netip.Addr) *[penaltyWays]penaltyEntry {
	b := key.As16()
	return &p.sets[maphash.Bytes(p.seed, b[:])%penaltySets]
}

// fail counts a failed login from ip at now and returns the delay before
// its answer: base doubled for each earlier failure still remembered,
// capped at penaltyMaxDelay (or base, if larger).
func (p *penalties) fail(ip netip.Addr, base time.Duration, now time.Time) time.Duration {
	key, ok := penaltyKey(ip)
	if !ok {
		return base
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	set := p.set(key)
	t := now.UnixNano()
	for w := range set {
		e := &set[w]
		if e.fails > 0 && e.key == key {
			if t-e.last > int64(penaltyTTL) {
				e.fails = 0
			}
			e.fails++
			e.last = t
			return penaltyDelay(base, e.fails)
		}
	}
	// A free or expired entry, else the least recently failed one.
	victim := 0
	for w := range set {
		if set[w].fails == 0 || t-set[w].last > int64(penaltyTTL) {
			victim = w
			break
		}
		if set[w].last < set[victim].last {
			victim = w
		}
	}
	set[victim] = penaltyEntry{key: key, fails: 1, last: t}
	return base
}

// reset forgets ip's failures (a successful login).
func (p *penalties) reset(ip netip.Addr) {
	key, ok := penaltyKey(ip)
	if !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	set := p.set(key)
	for w := range set {
		if set[w].key == key {
			set[w] = penaltyEntry{}
		}
	}
}

// current is the delay a failure from ip would get now, without counting
// one: what a verified refusal (a disabled account) waits.
func (p *penalties) current(ip netip.Addr, base time.Duration, now time.Time) time.Duration {
	key, ok := penaltyKey(ip)
	if !ok {
		return base
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.set(key) {
		if e.fails > 0 && e.key == key && now.UnixNano()-e.last <= int64(penaltyTTL) {
			return penaltyDelay(base, e.fails+1)
		}
	}
	return base
}

// penaltyDelay is base doubled fails-1 times, capped.
func penaltyDelay(base time.Duration, fails uint32) time.Duration {
	limit := max(penaltyMaxDelay, base)
	d := base
	for n := uint32(1); n < fails && n < maxPenaltyShift && d < limit; n++ {
		d *= 2
	}
	return min(d, limit)
}
