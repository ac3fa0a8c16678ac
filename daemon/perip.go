package daemon

import "net/netip"

// ipv6ClientBits is how much of an IPv6 address names one client: a /64 is
// one subnet, handed to one customer whole, so one host can use 2^64
// addresses. Counting each of them apart would let a single client fill
// every slot.
const ipv6ClientBits = 64

// clientKey is the address the per-IP limit and the refusal log count a
// client under: an IPv4 address itself (IPv4-mapped IPv6 counts as
// IPv4), an IPv6 address's /64.
func clientKey(ip netip.Addr) netip.Addr {
	ip = ip.Unmap()
	if !ip.Is6() {
		return ip
	}
	p, err := ip.WithZone("").Prefix(ipv6ClientBits)
	if err != nil {
		return ip
	}
	return p.Addr()
}

// clientKeyString is how a client key is logged: an IPv4 address, or an
// IPv6 /64 in CIDR form.
func clientKeyString(k netip.Addr) string {
	if k.Is6() {
		return netip.PrefixFrom(k, ipv6ClientBits).String()
	}
	return k.String()
}
