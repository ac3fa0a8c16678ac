package htpasswd

import (
	"container/list"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"sync"
	"time"
)

// The verified-credentials cache lets a polling client (a phone or a mail
// fetcher logging in every few minutes) skip the expensive hash (bcrypt,
// argon2, SHA-crypt: 50-350 ms of CPU) when it sends the same password it
// logged in with recently. It may only say yes:
//
//   - It stores, per user, HMAC-SHA-256(key, user, hash line, password) with
//     a key made from crypto/rand when the File is opened and never written
//     anywhere, so a memory dump of the process shows no password and no
//     value that can be checked offline without the key (which is in the
//     same memory: the HMAC is a safeguard against casual exposure, not
//     against an attacker who can read the whole process).
//   - The hash line is part of the MAC: a changed password (a new line in
//     the file, a reload that changes it) makes the entry useless at once.
//   - An entry lives ttl after the successful verification that wrote it; a
//     hit does not extend it, so a password is checked against the real hash
//     at least once a ttl.
//   - Only a successful verification against the real hash writes; a
//     password that does not match the entry is checked against the real
//     hash (a wrong one then fails at full cost, as without the cache).
//   - At most max entries, the least recently used evicted first.
//
// The trade-off (documented in pop3d.conf(5)): within ttl, whoever can read
// pop3d's memory (a core dump, swap, a debugger as pop3d's user) finds the
// key and the MACs of the passwords of users who logged in recently, and
// can test guesses against them at HMAC-SHA-256 speed instead of at the
// cost of their bcrypt or argon2 hash. Removing or changing a user's line
// takes effect at once, as without the cache.
type authCache struct {
	key [32]byte
	now func() time.Time

	mu  sync.Mutex
	ttl time.Duration // 0: off
	max int
	ll  *list.List               // of *cacheItem, most recently used first
	m   map[string]*list.Element // by user
	mac hash.Hash                // HMAC under key, guarded by mu
}

// cacheItem is one user's verified credentials.
type cacheItem struct {
	user    string
	sum     [sha256.Size]byte
	expires time.Time
}

// defaultAuthCacheMax bounds the cache: about 200 bytes an entry, so 20 MB
// for the busiest servers' active users.
const defaultAuthCacheMax = 100_000

// newAuthCache returns an empty cache with a fresh random key.
func newAuthCache(ttl time.Duration, max int, now func() time.Time) *authCache {
	c := &authCache{ttl: ttl, max: max, now: now, ll: list.New(), m: make(map[string]*list.Element)}
	if c.now == nil {
		c.now = time.Now
	}
	if c.max <= 0 {
		c.max = defaultAuthCacheMax
	}
	// crypto/rand.Read never fails (Go 1.24+: it crashes the program
	// instead of returning predictable bytes).
	_, _ = rand.Read(c.key[:])
	c.mac = hmac.New(sha256.New, c.key[:])
	return c
}

// sum is the MAC of (user, hash line, password), each length-prefixed so
// that no two triples give the same input. Callers hold c.mu.
func (c *authCache) sum(user, hashLine, pass string) [sha256.Size]byte {
	c.mac.Reset()
	var n [4]byte
	for _, s := range [...]string{user, hashLine, pass} {
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		c.mac.Write(n[:])
		c.mac.Write([]byte(s))
	}
	var out [sha256.Size]byte
	c.mac.Sum(out[:0])
	return out
}

// hit reports whether user logged in with pass while their hash line was
// hashLine, within the ttl.
func (c *authCache) hit(user, hashLine, pass string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ttl <= 0 {
		return false
	}
	el, ok := c.m[user]
	if !ok {
		return false
	}
	it := el.Value.(*cacheItem)
	if !c.now().Before(it.expires) {
		c.ll.Remove(el)
		delete(c.m, user)
		return false
	}
	s := c.sum(user, hashLine, pass)
	if !hmac.Equal(s[:], it.sum[:]) {
		return false
	}
	c.ll.MoveToFront(el)
	return true
}

// put records a successful verification of user/pass against hashLine.
func (c *authCache) put(user, hashLine, pass string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ttl <= 0 {
		return
	}
	it := &cacheItem{user: user, sum: c.sum(user, hashLine, pass), expires: c.now().Add(c.ttl)}
	if el, ok := c.m[user]; ok {
		el.Value = it
		c.ll.MoveToFront(el)
		return
	}
	c.m[user] = c.ll.PushFront(it)
	for c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.m, old.Value.(*cacheItem).user)
	}
}

// setTTL changes the ttl; 0 turns the cache off and empties it. Entries
// already there keep the expiry they were written with, or less: a shorter
// ttl applies to them at once.
func (c *authCache) setTTL(ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ttl <= 0 {
		c.ll.Init()
		clear(c.m)
	} else if ttl < c.ttl {
		limit := c.now().Add(ttl)
		for el := c.ll.Front(); el != nil; el = el.Next() {
			if it := el.Value.(*cacheItem); it.expires.After(limit) {
				it.expires = limit
			}
		}
	}
	c.ttl = ttl
}

// stats returns the number of entries and how many are still valid.
func (c *authCache) stats() (entries, valid int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for el := c.ll.Front(); el != nil; el = el.Next() {
		if now.Before(el.Value.(*cacheItem).expires) {
			valid++
		}
	}
	return c.ll.Len(), valid
}
