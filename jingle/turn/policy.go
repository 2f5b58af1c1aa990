package turn

import (
	"net"
	"net/netip"
)

// Special-purpose IPv4 ranges that netip.Addr has no predicate for.
var (
	cgnat     = netip.MustParsePrefix("100.64.0.0/10") // RFC 6598 shared address space
	thisNet   = netip.MustParsePrefix("0.0.0.0/8")     // RFC 791 "this network"
	ietfProto = netip.MustParsePrefix("192.0.0.0/24")  // RFC 6890 IETF protocol assignments
	benchmark = netip.MustParsePrefix("198.18.0.0/15") // RFC 2544
	reserved  = netip.MustParsePrefix("240.0.0.0/4")   // RFC 1112, includes 255.255.255.255
	nat64     = netip.MustParsePrefix("64:ff9b::/96")  // RFC 6052 well-known prefix
)

// Policy decides which peer addresses an allocation may relay to. The
// default refuses everything that is not a public unicast address: loopback,
// private (RFC 1918, RFC 4193 ULA), shared CGNAT space (100.64.0.0/10),
// link-local, multicast, unspecified, reserved and "this network" ranges, the
// server's own addresses, and Deny. Allow overrides all of it.
type Policy struct {
	Allow []netip.Prefix // always permitted (tests: 127.0.0.0/8)
	Deny  []netip.Prefix // refused in addition to the built-in ranges
	// Own are the server's addresses (interfaces, listeners).
	Own map[netip.Addr]bool
	// Relay is the advertised relay address. It is one of the server's
	// own, but allocations may reach each other through it (both parties
	// of a call on this TURN server): the relay sockets then only let
	// packets through to live relay ports, never to other services.
	Relay netip.Addr
}

// Verdicts of Policy.Check.
const (
	peerOK      = ""
	peerRelay   = "relay"   // permitted: our relay address (relay ports only)
	peerSpecial = "special" // loopback, private, link-local, multicast …
	peerOwn     = "own"     // one of the server's addresses
	peerDenied  = "denied"  // in Deny
)

// Check returns "" (or "relay" for the relay address) when ip may be a
// peer, else the reason for refusing it.
func (p *Policy) Check(ip netip.Addr) string {
	ip = ip.Unmap()
	if !ip.IsValid() {
		return peerSpecial
	}
	if inAny(p.Allow, ip) {
		return peerOK
	}
	if inAny(p.Deny, ip) {
		return peerDenied
	}
	if special(ip) {
		return peerSpecial
	}
	if ip.Is6() && nat64.Contains(ip) {
		b := ip.As16()
		v4 := netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		if r := p.Check(v4); r != peerOK {
			return r
		}
	}
	if ip == p.Relay {
		return peerRelay
	}
	if p.Own[ip] {
		return peerOwn
	}
	return peerOK
}

// special reports addresses no relay should reach by default.
func special(ip netip.Addr) bool {
	return ip.IsUnspecified() || ip.IsLoopback() || ip.IsPrivate() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() ||
		ip.IsMulticast() ||
		ip.Is4() && (cgnat.Contains(ip) || thisNet.Contains(ip) || ietfProto.Contains(ip) ||
			benchmark.Contains(ip) || reserved.Contains(ip))
}

func inAny(l []netip.Prefix, ip netip.Addr) bool {
	for _, p := range l {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ownAddrs returns the addresses of the machine's interfaces plus extra.
func ownAddrs(extra ...netip.Addr) map[netip.Addr]bool {
	own := map[netip.Addr]bool{}
	if as, err := net.InterfaceAddrs(); err == nil {
		for _, a := range as {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					own[ip.Unmap()] = true
				}
			}
		}
	}
	for _, a := range extra {
		if a.IsValid() && !a.IsUnspecified() {
			own[a.Unmap()] = true
		}
	}
	return own
}
