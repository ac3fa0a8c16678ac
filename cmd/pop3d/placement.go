package main

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pop3d/pop3d/htpasswd"
)

// defaultBackendPort is the port of a host= field without port=, as in
// Dovecot's proxy fields.
const defaultBackendPort = 110

// errNoBackend is a user with no host= field when no backends are
// configured.
var errNoBackend = errors.New("no host= field and the backends key is empty")

// placement says which backend serves a user: the user's own host= and
// port= extra fields (Dovecot's proxy fields) when the password file has
// them, else the backend of the backends key that rendezvous hashing of the
// user name picks. Rendezvous (highest random weight) hashing gives each
// backend a score per user and takes the highest, so adding a backend
// moves only the users it now wins, about 1/N of them, and removing one
// moves only its own users.
type placement struct {
	backends []netip.AddrPort
}

// place returns the backend of u.
func (p placement) place(u htpasswd.User) (netip.AddrPort, error) {
	if host, ok := u.ExtraValue("host"); ok {
		return fixedBackend(host, u)
	}
	if _, ok := u.ExtraValue("port"); ok {
		return netip.AddrPort{}, fmt.Errorf("user %s: port= without host=", u.Name)
	}
	b, err := p.hashed(u.Name)
	if err != nil {
		return b, fmt.Errorf("user %s: %w", u.Name, err)
	}
	return b, nil
}

// hashed is the rendezvous choice over the backends key for name.
func (p placement) hashed(name string) (netip.AddrPort, error) {
	if len(p.backends) == 0 {
		return netip.AddrPort{}, errNoBackend
	}
	best, bestScore := p.backends[0], score(p.backends[0], name)
	for _, b := range p.backends[1:] {
		if s := score(b, name); s > bestScore || (s == bestScore && b.String() < best.String()) {
			best, bestScore = b, s
		}
	}
	return best, nil
}

// score is the weight of backend b for user name: the first 8 bytes of
// SHA-256 over both. A cryptographic hash because it must be stable across
// versions, machines and processes (every auth server and `pop3d where`
// must agree) and spread evenly whatever the names look like.
func score(b netip.AddrPort, name string) uint64 {
	h := sha256.New()
	h.Write([]byte(b.String()))
	h.Write([]byte{0})
	h.Write([]byte(name))
	var sum [sha256.Size]byte
	return binary.BigEndian.Uint64(h.Sum(sum[:0]))
}

// fixedBackend reads host= and port= of u. host must be an IP address:
// nginx refuses names in Auth-Server.
func fixedBackend(host string, u htpasswd.User) (netip.AddrPort, error) {
	ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("user %s: host=%s is not an IP address (nginx needs one)", u.Name, host)
	}
	port := uint64(defaultBackendPort)
	if v, ok := u.ExtraValue("port"); ok {
		port, err = strconv.ParseUint(v, 10, 16)
		if err != nil || port == 0 {
			return netip.AddrPort{}, fmt.Errorf("user %s: port=%s is not a port number", u.Name, v)
		}
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(port)), nil
}

// proxyFieldProblem checks one of Dovecot's proxy fields as -check and the
// password file's load see it: "" when fine, else the warning.
func proxyFieldProblem(f htpasswd.Field) string {
	switch f.Key {
	case "host", "userdb_host":
		if _, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(f.Value, "["), "]")); err != nil {
			return fmt.Sprintf("extra field %s=%s is not an IP address: nginx cannot route the user", f.Key, f.Value)
		}
	case "port", "userdb_port":
		if p, err := strconv.ParseUint(f.Value, 10, 16); err != nil || p == 0 {
			return fmt.Sprintf("extra field %s=%s is not a port number: nginx cannot route the user", f.Key, f.Value)
		}
	}
	return ""
}
