package turn

import (
	"net/netip"
	"testing"
)

func TestPolicy(t *testing.T) {
	p := &Policy{
		Own:   map[netip.Addr]bool{netip.MustParseAddr("198.51.100.7"): true, netip.MustParseAddr("203.0.113.5"): true},
		Relay: netip.MustParseAddr("203.0.113.5"),
		Deny:  []netip.Prefix{netip.MustParsePrefix("198.51.100.128/25")},
	}
	cases := map[string]string{
		"8.8.8.8":          peerOK,
		"2001:4860::8888":  peerOK,
		"127.0.0.1":        peerSpecial,
		"127.5.5.5":        peerSpecial,
		"::1":              peerSpecial,
		"10.1.2.3":         peerSpecial,
		"172.16.0.1":       peerSpecial,
		"172.31.255.255":   peerSpecial,
		"192.168.1.1":      peerSpecial,
		"fd00::1":          peerSpecial,
		"fc12::1":          peerSpecial,
		"100.64.0.1":       peerSpecial,
		"100.127.255.254":  peerSpecial,
		"169.254.1.1":      peerSpecial,
		"fe80::1":          peerSpecial,
		"224.0.0.1":        peerSpecial,
		"239.1.1.1":        peerSpecial,
		"ff02::1":          peerSpecial,
		"0.0.0.0":          peerSpecial,
		"::":               peerSpecial,
		"0.1.2.3":          peerSpecial,
		"255.255.255.255":  peerSpecial,
		"::ffff:10.0.0.1":  peerSpecial,
		"::ffff:127.0.0.1": peerSpecial,
		"64:ff9b::a00:1":   peerSpecial, // NAT64 of 10.0.0.1
		"64:ff9b::808:808": peerOK,      // NAT64 of 8.8.8.8
		"198.51.100.7":     peerOwn,
		"198.51.100.200":   peerDenied,
		"203.0.113.5":      peerRelay,
		"100.63.255.255":   peerOK,
		"100.128.0.0":      peerOK,
	}
	for ip, want := range cases {
		if got := p.Check(netip.MustParseAddr(ip)); got != want {
			t.Errorf("%s: %q, want %q", ip, got, want)
		}
	}
	p.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("198.51.100.200/32")}
	for _, ip := range []string{"127.0.0.1", "127.9.9.9", "::ffff:127.0.0.1", "198.51.100.200"} {
		if got := p.Check(netip.MustParseAddr(ip)); got != peerOK {
			t.Errorf("allowed %s: %q", ip, got)
		}
	}
	if got := p.Check(netip.MustParseAddr("10.0.0.1")); got != peerSpecial {
		t.Errorf("10.0.0.1 with a loopback allow-list: %q", got)
	}
}

func TestMayReach(t *testing.T) {
	relay := netip.MustParseAddr("203.0.113.5")
	s := &Server{
		policy:      Policy{Relay: relay, Own: map[netip.Addr]bool{relay: true}},
		relays:      map[int]*relayConn{50000: {}},
		listenPorts: map[int]bool{3478: true, 5349: true},
	}
	for _, c := range []struct {
		ip   string
		port int
		ok   bool
	}{
		{"8.8.8.8", 3478, true},      // someone else's TURN port is fine
		{"203.0.113.5", 50000, true}, // another allocation on this server
		{"203.0.113.5", 50001, false},
		{"203.0.113.5", 22, false},
		{"203.0.113.5", 3478, false},
		{"127.0.0.1", 50000, false},
	} {
		if got := s.mayReach(netip.MustParseAddr(c.ip), c.port); got != c.ok {
			t.Errorf("%s:%d: %v", c.ip, c.port, got)
		}
	}
	s.policy.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	s.policy.Own[netip.MustParseAddr("127.0.0.1")] = true
	if !s.mayReach(netip.MustParseAddr("127.0.0.1"), 40000) || s.mayReach(netip.MustParseAddr("127.0.0.1"), 3478) {
		t.Error("allow-listed loopback: any port but our own listeners")
	}
}

func TestParsePorts(t *testing.T) {
	if lo, hi, err := ParsePorts("49152-65535"); err != nil || lo != 49152 || hi != 65535 {
		t.Fatal(lo, hi, err)
	}
	for _, bad := range []string{"", "1", "0-10", "10-5", "1-70000", "a-b", "-"} {
		if _, _, err := ParsePorts(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
