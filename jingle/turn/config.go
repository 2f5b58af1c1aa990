package turn

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/xmppd/xmppd/conf"
)

// Config is <modules><turn …/></modules>.
type Config struct {
	conf.ModuleBase
	// Embedded runs the TURN/STUN server in xmppd; false only lists the
	// <external> servers.
	Embedded bool `conf:"embedded"`
	// Listen is the UDP and TCP address of STUN/TURN; "" = none.
	Listen string `conf:"listen"`
	// TLSListen is TURNS (TLS over TCP, the domain's certificate); "" = none.
	TLSListen string `conf:"tls-listen"`
	// RelayAddress is the public IPv4 address relayed traffic uses; ""
	// takes the listen address (which must then be a specific IPv4 address).
	RelayAddress string `conf:"relay-address"`
	// RelayBind is the local address relay sockets bind to; "" =
	// relay-address when it is an address of this machine, else 0.0.0.0.
	RelayBind string `conf:"relay-bind"`
	// Ports is the relay port range.
	Ports PortRange `conf:"ports"`
	// Host is the name or address clients are given by XEP-0215; "" =
	// relay-address. TURNS clients check the certificate against it.
	Host string `conf:"host"`
	// Realm is the STUN realm; "" = the first host.
	Realm string `conf:"realm"`
	// Secret is the TURN REST API shared secret; "" = generated once and
	// kept in the data directory (turn-secret).
	Secret string `conf:"secret"`
	// CredentialTTL is how long handed-out credentials are valid.
	CredentialTTL time.Duration `conf:"credential-ttl,min=1m"`
	// MaxAllocationsPerUser caps live allocations per JID; 0 = unlimited.
	MaxAllocationsPerUser int `conf:"max-allocations-per-user,min=0"`
	// BandwidthPerAllocation and BandwidthPerUser are bytes per second in
	// each direction; 0 = unlimited. Beyond them packets are dropped.
	BandwidthPerAllocation conf.ByteSize `conf:"bandwidth-per-allocation,min=0"`
	BandwidthPerUser       conf.ByteSize `conf:"bandwidth-per-user,min=0"`
	// UDPSockets is the number of UDP sockets sharing listen's port, one
	// reader each; 0 = 4 × GOMAXPROCS (DefaultUDPSockets).
	UDPSockets int `conf:"udp-sockets,min=0,max=1024"`
	// ReceiveBuffer and SendBuffer are the kernel buffers of each UDP
	// listening socket (SO_RCVBUF, SO_SNDBUF).
	ReceiveBuffer conf.ByteSize `conf:"receive-buffer,min=65536,max=1073741824"`
	SendBuffer    conf.ByteSize `conf:"send-buffer,min=65536,max=1073741824"`
	// AllowPeers may always be relayed to, overriding the built-in refusals
	// (loopback, private, link-local …) and DenyPeers.
	AllowPeers conf.PrefixList `conf:"allow-peers"`
	// DenyPeers are refused in addition to the built-in ranges.
	DenyPeers conf.PrefixList `conf:"deny-peers"`
	// External lists TURN servers run elsewhere (coturn with
	// use-auth-secret) whose credentials xmppd computes.
	External []External `conf:"external"`
}

// External is <external host="…" secret="…"/>: a TURN server with the TURN
// REST API (coturn: use-auth-secret, static-auth-secret).
type External struct {
	Host string `conf:"host,required"`
	// Port serves STUN and TURN over UDP and TCP; TLSPort TURNS (0 = none).
	Port    int `conf:"port,min=1,max=65535"`
	TLSPort int `conf:"tls-port,min=0,max=65535"`
	// Transports offered on Port: "udp", "tcp" or both.
	Transports string `conf:"transports"`
	// STUN lists the server as a STUN server too.
	STUN bool `conf:"stun"`
	// Secret is the shared secret (coturn's static-auth-secret).
	Secret string `conf:"secret,required"`
}

// SetDefaults implements conf.Defaulter.
func (e *External) SetDefaults() { *e = External{Port: 3478, Transports: "udp, tcp", STUN: true} }

func (e *External) transports() (udp, tcp bool) {
	for _, t := range strings.FieldsFunc(e.Transports, func(r rune) bool { return r == ',' || r == ' ' }) {
		switch t {
		case "udp":
			udp = true
		case "tcp":
			tcp = true
		}
	}
	return udp, tcp
}

// PortRange is "LOW-HIGH", inclusive.
type PortRange struct{ Low, High int }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *PortRange) UnmarshalText(b []byte) error {
	lo, hi, err := ParsePorts(strings.TrimSpace(string(b)))
	if err != nil {
		return err
	}
	*p = PortRange{lo, hi}
	return nil
}

// String writes the range as in the file.
func (p PortRange) String() string { return strconv.Itoa(p.Low) + "-" + strconv.Itoa(p.High) }

// Defaults.
const (
	DefaultListen    = "127.0.0.1:3478"
	DefaultTLSListen = "127.0.0.1:5349"
	DefaultTTL       = 24 * time.Hour
)

// DefaultConfig returns the module's defaults: off; when enabled, the
// embedded server on loopback (a production server sets listen, tls-listen
// and relay-address to its public addresses).
func DefaultConfig() *Config {
	c := &Config{
		Embedded:               true,
		Listen:                 DefaultListen,
		TLSListen:              DefaultTLSListen,
		Ports:                  PortRange{49152, 65535},
		CredentialTTL:          DefaultTTL,
		MaxAllocationsPerUser:  10,
		BandwidthPerAllocation: conf.ByteSize(1000 * 1000),
		ReceiveBuffer:          DefaultSocketBuffer,
		SendBuffer:             DefaultSocketBuffer,
	}
	c.SetEnabled(false)
	return c
}

func init() {
	conf.RegisterModule("turn", func() any { return DefaultConfig() })
}

// Validate implements the conf module check.
func (c *Config) Validate() error {
	if c.Embedded {
		for attr, v := range map[string]string{"listen": c.Listen, "tls-listen": c.TLSListen} {
			if v == "" {
				continue
			}
			if _, err := conf.ParseHostPort(v); err != nil {
				return conf.AttrError(attr, "%v", err)
			}
		}
		if c.Listen == "" && c.TLSListen == "" && c.Enabled() {
			return conf.AttrError("listen", "the embedded TURN server needs listen or tls-listen (or embedded=\"false\" with <external> servers)")
		}
		if _, err := c.relayAddress(); err != nil {
			return conf.AttrError("relay-address", "%v", err)
		}
		if c.RelayBind != "" {
			if a, err := netip.ParseAddr(c.RelayBind); err != nil || !a.Unmap().Is4() {
				return conf.AttrError("relay-bind", "%q is not an IPv4 address", c.RelayBind)
			}
		}
	} else if len(c.External) == 0 && c.Enabled() {
		return conf.AttrError("embedded", "with embedded=\"false\" list at least one <external> server")
	}
	for i := range c.External {
		e := &c.External[i]
		if udp, tcp := e.transports(); !udp && !tcp {
			return fmt.Errorf("external %s: transports %q: give udp, tcp or both", e.Host, e.Transports)
		}
		for _, t := range strings.FieldsFunc(e.Transports, func(r rune) bool { return r == ',' || r == ' ' }) {
			if t != "udp" && t != "tcp" {
				return fmt.Errorf("external %s: transports: %q is not udp or tcp", e.Host, t)
			}
		}
	}
	return nil
}

// relayAddress is relay-address, or the listen address when it is a
// specific IPv4 address.
func (c *Config) relayAddress() (netip.Addr, error) {
	if c.RelayAddress != "" {
		a, err := netip.ParseAddr(c.RelayAddress)
		if err != nil || !a.Unmap().Is4() || a.Unmap().IsUnspecified() {
			return netip.Addr{}, fmt.Errorf("%q is not an IPv4 address (relays are IPv4)", c.RelayAddress)
		}
		return a.Unmap(), nil
	}
	l := c.Listen
	if l == "" {
		l = c.TLSListen
	}
	h, _, _ := net.SplitHostPort(l)
	a, err := netip.ParseAddr(h)
	if err != nil || !a.Unmap().Is4() || a.Unmap().IsUnspecified() {
		return netip.Addr{}, fmt.Errorf("needed: the public IPv4 address relays use (listen %q is not a specific IPv4 address)", l)
	}
	return a.Unmap(), nil
}
