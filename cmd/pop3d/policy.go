package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/pop3d/pop3d/daemon"
	"github.com/pop3d/pop3d/htpasswd"
)

// A policy is what pop3d decides about a login once the password is
// verified, from the global keys and the user's extra fields in a Dovecot
// passwd-file line. Field names are Dovecot's where Dovecot has the
// concept (nologin, reason, allow_nets), so that a Dovecot passwd-file
// moves over with its policy; login_delay and expire are pop3d's own.

// maxLoginDelay bounds login_delay: RFC 2449 gives no limit, but a delay
// of more than a year is a typo.
const maxLoginDelay = 366 * 24 * time.Hour

// maxExpireDays bounds expire likewise.
const maxExpireDays = 100 * 366

// userPolicy is one user's policy.
type userPolicy struct {
	nologin    bool
	reason     string         // shown with nologin
	allowNets  []netip.Prefix // nil: any network
	loginDelay time.Duration
	expire     daemon.Expire
}

// globalPolicy is what applies to users without fields of their own.
type globalPolicy struct {
	loginDelay time.Duration
	expire     daemon.Expire
}

// policyFor combines the global values with u's extra fields. The fields
// were checked when the file was loaded (checkExtra), so an error here
// means the file changed under a reader that did not check: refuse.
func policyFor(g globalPolicy, fields []htpasswd.Field) (userPolicy, error) {
	p := userPolicy{loginDelay: g.loginDelay, expire: g.expire}
	_, err := applyFields(&p, fields)
	return p, err
}

// checkExtra is the htpasswd.ExtraChecker of pop3d: a malformed known field
// locks the user out (an allow_nets half read must not let anyone in),
// an unknown one is a warning.
func checkExtra(fields []htpasswd.Field) ([]string, error) {
	var p userPolicy
	return applyFields(&p, fields)
}

// applyFields sets p from fields and returns warnings for unknown keys.
func applyFields(p *userPolicy, fields []htpasswd.Field) ([]string, error) {
	var warnings []string
	seen := make(map[string]bool, len(fields))
	for _, f := range fields {
		if seen[f.Key] {
			return warnings, fmt.Errorf("extra field %s given twice", f.Key)
		}
		seen[f.Key] = true
		var err error
		switch f.Key {
		case "nologin":
			// Dovecot takes nologin with any value (nologin=y) as set.
			p.nologin = true
		case "reason":
			p.reason = f.Value
		case "allow_nets":
			p.allowNets, err = parseNets(f.Value)
		case "login_delay":
			err = setLoginDelay(&p.loginDelay, f.Value)
		case "expire":
			err = setExpire(&p.expire, f.Value)
		case "host", "port", "userdb_host", "userdb_port", "proxy", "proxy_maybe":
			// Where the user lives in a cluster (placement.go): a bad
			// value only keeps the auth_http server from routing the user.
			if w := proxyFieldProblem(f); w != "" {
				warnings = append(warnings, w)
			}
		default:
			warnings = append(warnings, fmt.Sprintf("unknown extra field %q ignored", f.Key))
			continue
		}
		if err != nil {
			return warnings, fmt.Errorf("extra field %s: %w", f.Key, err)
		}
	}
	return warnings, nil
}

// parseNets parses Dovecot's allow_nets: comma-separated addresses or
// CIDRs (spaces after commas tolerated). An empty list allows nobody.
func parseNets(v string) ([]netip.Prefix, error) {
	nets := []netip.Prefix{}
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil {
			a = a.Unmap().WithZone("")
			nets = append(nets, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		pf, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address or CIDR", s)
		}
		if pf.Addr().Is4In6() {
			bits := pf.Bits() - 96
			if bits < 0 {
				return nil, fmt.Errorf("%q: an IPv4-mapped prefix needs at least 96 bits", s)
			}
			pf = netip.PrefixFrom(pf.Addr().Unmap(), bits)
		}
		nets = append(nets, pf.Masked())
	}
	return nets, nil
}

// allowed reports whether remote may log in under p.allowNets.
func (p *userPolicy) allowed(remote net.Addr) bool {
	if p.allowNets == nil {
		return true
	}
	var ip netip.Addr
	if ta, ok := remote.(*net.TCPAddr); ok {
		ip, _ = netip.AddrFromSlice(ta.IP)
	}
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() {
		return false
	}
	for _, n := range p.allowNets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// errDisabled is the answer to a nologin user.
func (p *userPolicy) errDisabled() error {
	text := p.reason
	if text == "" {
		text = "account disabled"
	}
	return &daemon.Error{Code: daemon.CodeAuth, Text: text, Reason: "account disabled", Verified: true}
}

// errNetwork is the answer to a login from outside allow_nets: the same
// as a wrong password on the wire, the reason in the log.
var errNetwork = &daemon.Error{Code: daemon.CodeAuth, Text: "authentication failed", Reason: "network not allowed"}

// delayLeft is how much longer a user who last logged in at last must wait
// at now; 0 when the login may go ahead. A last login in the future (a
// clock stepped back) does not lock the user out for longer than delay.
func delayLeft(delay time.Duration, last, now time.Time) time.Duration {
	if delay <= 0 || last.IsZero() {
		return 0
	}
	since := now.Sub(last)
	if since < 0 {
		since = 0
	}
	if since >= delay {
		return 0
	}
	return delay - since
}

// errLoginDelay is the [LOGIN-DELAY] answer.
func errLoginDelay(left time.Duration) error {
	secs := int64((left + time.Second - 1) / time.Second)
	return &daemon.Error{Code: daemon.CodeLoginDelay,
		Text:   "login delay: wait " + strconv.FormatInt(secs, 10) + " more seconds",
		Reason: "login delay", Verified: true}
}

// setLoginDelay parses seconds ("300") or a Go duration ("5m").
func setLoginDelay(dst *time.Duration, v string) error {
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 || n > int64(maxLoginDelay/time.Second) {
			return fmt.Errorf("%q is out of range (0 to %d seconds)", v, int64(maxLoginDelay/time.Second))
		}
		d = time.Duration(n) * time.Second
	} else {
		var perr error
		d, perr = time.ParseDuration(v)
		if perr != nil || d < 0 || d > maxLoginDelay {
			return fmt.Errorf("%q is not a number of seconds or a duration (e.g. 300, 15m)", v)
		}
	}
	*dst = d.Truncate(time.Second)
	return nil
}

// setExpire parses "never" or a number of days.
func setExpire(dst *daemon.Expire, v string) error {
	if strings.EqualFold(v, "never") {
		*dst = daemon.Expire{}
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > maxExpireDays {
		return errors.New(strconv.Quote(v) + " is not a number of days (0 to " + strconv.Itoa(maxExpireDays) + ") or never")
	}
	*dst = daemon.ExpireAfter(n)
	return nil
}
