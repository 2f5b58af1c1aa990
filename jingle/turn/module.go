package turn

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/xmppd/xmppd/certs"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/wire"
)

// NS is XEP-0215 External Service Discovery, also the disco feature.
const NS = "urn:xmpp:extdisco:2"

// Service is one XEP-0215 entry.
type Service struct {
	Type       string // stun, turn or turns
	Host       string
	Port       int
	Transport  string // udp or tcp
	Username   string // TURN REST credentials (turn, turns)
	Password   string
	Expires    time.Time
	Restricted bool
}

// URL is the ICE server URL (RFC 7064/7065): stun:HOST:PORT without a
// query (browsers and pion refuse one), turn:HOST:PORT?transport=udp|tcp,
// turns:HOST:PORT?transport=tcp.
func (s Service) URL() string {
	u := s.Type + ":" + net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	if s.Type != "stun" {
		u += "?transport=" + s.Transport
	}
	return u
}

// Module is the XEP-0215 service and, when configured, the embedded TURN
// server.
type Module struct {
	cfg    *Config
	r      *router.Router
	log    *slog.Logger
	secret string  // the embedded server's
	srv    *Server // nil when not embedded
	host   string  // what clients are told for the embedded server
}

var modules sync.Map // *router.Router → *Module

// Lookup returns the module registered on r (nil when the module is off).
// It is how other modules (calls, the echo service) find the credentials
// API until the server keeps the module itself.
func Lookup(r *router.Router) *Module {
	if m, ok := modules.Load(r); ok {
		return m.(*Module)
	}
	return nil
}

// Register starts the embedded TURN server (if configured) and answers
// XEP-0215 queries to the server's domains. It returns nil, nil when the
// module is off.
func Register(cfg *conf.Config, r *router.Router, cs *certs.Store, log *slog.Logger) (*Module, error) {
	if !cfg.ModuleEnabled("turn") {
		return nil, nil
	}
	tc := cfg.Module("turn").(*Config)
	m := &Module{cfg: tc, r: r, log: log}
	if tc.Embedded {
		secret := tc.Secret
		if secret == "" {
			var err error
			if secret, err = loadSecret(filepath.Join(cfg.DataDir, "turn-secret")); err != nil {
				return nil, fmt.Errorf("turn: secret: %w", err)
			}
		}
		relay, err := tc.relayAddress()
		if err != nil {
			return nil, fmt.Errorf("turn: relay-address: %w", err)
		}
		var bind netip.Addr
		if tc.RelayBind != "" {
			bind, _ = netip.ParseAddr(tc.RelayBind)
		}
		realm := tc.Realm
		if realm == "" {
			realm = cfg.Hosts[0]
		}
		o := Options{
			Listen: tc.Listen, TLSListen: tc.TLSListen,
			RelayAddress: relay, RelayBind: bind,
			MinPort: tc.Ports.Low, MaxPort: tc.Ports.High,
			Realm: realm, Secret: secret,
			MaxAllocationsPerUser:  tc.MaxAllocationsPerUser,
			BandwidthPerAllocation: int64(tc.BandwidthPerAllocation),
			BandwidthPerUser:       int64(tc.BandwidthPerUser),
			Allow:                  tc.AllowPeers, Deny: tc.DenyPeers,
			ReceiveBuffer: int(tc.ReceiveBuffer), SendBuffer: int(tc.SendBuffer),
			UDPSockets: tc.UDPSockets,
			Log:        log,
		}
		if tc.TLSListen != "" {
			if cs == nil {
				return nil, errors.New("turn: tls-listen needs the server certificate")
			}
			o.TLS = cs.TLSConfig(uint16(cfg.TLS.MinVersion))
		}
		if m.srv, err = NewServer(o); err != nil {
			return nil, err
		}
		m.secret = secret
		m.host = tc.Host
		if m.host == "" {
			m.host = relay.String()
		}
		if isLoopbackHost(m.host) || relay.IsLoopback() {
			log.Warn("turn: the embedded TURN server is on loopback: only clients on this machine can use it; set listen, tls-listen and relay-address to public addresses")
		}
	}
	r.AddFeature(router.ToServer, NS)
	r.HandleIQ("get", NS, router.ToServer, m.handle)
	modules.Store(r, m)
	return m, nil
}

func isLoopbackHost(h string) bool {
	a, err := netip.ParseAddr(h)
	return h == "localhost" || err == nil && a.IsLoopback()
}

// Close stops the embedded server.
func (m *Module) Close() error {
	modules.CompareAndDelete(m.r, m)
	if m.srv != nil {
		return m.srv.Close()
	}
	return nil
}

// Server returns the embedded TURN server (nil when not embedded).
func (m *Module) Server() *Server { return m.srv }

// Stats returns the embedded server's counters (zero when not embedded).
func (m *Module) Stats() Stats {
	if m.srv == nil {
		return Stats{}
	}
	return m.srv.Stats()
}

// TTL is the configured credential lifetime.
func (m *Module) TTL() time.Duration { return m.cfg.CredentialTTL }

// Credentials returns TURN REST credentials of the embedded server for jid
// (a bare JID) valid for ttl (0: the configured credential-ttl). They are
// empty when there is no embedded server.
func (m *Module) Credentials(jid string, ttl time.Duration) (username, password string, expires time.Time) {
	if m.srv == nil {
		return "", "", time.Time{}
	}
	if ttl <= 0 {
		ttl = m.cfg.CredentialTTL
	}
	return Credentials(m.secret, jid, ttl)
}

// Services returns every STUN/TURN entry for jid (a bare JID) with fresh
// credentials: the embedded server's, then the external ones.
func (m *Module) Services(jid string) []Service {
	var out []Service
	exp := time.Now().Add(m.cfg.CredentialTTL).Truncate(time.Second)
	add := func(secret, host string, port, tlsPort int, udp, tcp, stunToo bool) {
		user, pass := CredentialsUntil(secret, jid, exp)
		turn := func(typ, transport string, port int) {
			out = append(out, Service{Type: typ, Host: host, Port: port, Transport: transport,
				Username: user, Password: pass, Expires: exp, Restricted: true})
		}
		if port > 0 {
			if stunToo && udp {
				out = append(out, Service{Type: "stun", Host: host, Port: port, Transport: "udp"})
			}
			if udp {
				turn("turn", "udp", port)
			}
			if tcp {
				turn("turn", "tcp", port)
			}
		}
		if tlsPort > 0 {
			turn("turns", "tcp", tlsPort)
		}
	}
	if s := m.srv; s != nil {
		add(m.secret, m.host, port(s.udpAddr), port(s.tlsAddr), s.udpAddr != nil, s.tcpAddr != nil, true)
	}
	for _, e := range m.cfg.External {
		udp, tcp := e.transports()
		add(e.Secret, e.Host, e.Port, e.TLSPort, udp, tcp, e.STUN)
	}
	return out
}

func port(a net.Addr) int {
	if a == nil {
		return 0
	}
	return int(addrPort(a).Port())
}

type servicesReq struct {
	Services *struct {
		Type string `xml:"type,attr"`
	} `xml:"urn:xmpp:extdisco:2 services"`
	Credentials *struct {
		Service []struct {
			Host      string `xml:"host,attr"`
			Type      string `xml:"type,attr"`
			Port      string `xml:"port,attr"`
			Transport string `xml:"transport,attr"`
		} `xml:"service"`
	} `xml:"urn:xmpp:extdisco:2 credentials"`
}

// handle answers <services/> and <credentials/> (XEP-0215 §3.1, §3.3).
func (m *Module) handle(c *router.Context) {
	from := c.From
	if from.Localpart() == "" || !c.Router.IsHost(from.Domainpart()) {
		c.Error("auth", "forbidden", "External services are for local users")
		return
	}
	var q servicesReq
	if err := c.Stanza.Decode(&q); err != nil {
		c.Error("modify", "bad-request", "")
		return
	}
	all := m.Services(from.Bare().String())
	switch {
	case q.Services != nil:
		typ := q.Services.Type
		b := []byte("<services xmlns='" + NS + "'")
		if typ != "" {
			b = append(b, " type='"...)
			b = wire.AppendEscapedAttr(b, typ)
			b = append(b, '\'')
		}
		b = append(b, '>')
		for _, s := range all {
			if typ == "" || s.Type == typ {
				b = appendService(b, s)
			}
		}
		c.Reply(append(b, "</services>"...))
	case q.Credentials != nil:
		if len(q.Credentials.Service) == 0 {
			c.Error("modify", "bad-request", "Name a service")
			return
		}
		b := []byte("<credentials xmlns='" + NS + "'>")
		found := false
		for _, want := range q.Credentials.Service {
			for _, s := range all {
				if s.Restricted && strings.EqualFold(s.Host, want.Host) && s.Type == want.Type &&
					(want.Port == "" || want.Port == strconv.Itoa(s.Port)) &&
					(want.Transport == "" || want.Transport == s.Transport) {
					b = appendService(b, s)
					found = true
				}
			}
		}
		if !found {
			c.Error("cancel", "item-not-found", "No such restricted service")
			return
		}
		c.Reply(append(b, "</credentials>"...))
	default:
		c.Error("modify", "bad-request", "")
	}
}

func appendService(b []byte, s Service) []byte {
	attr := func(name, v string) {
		b = append(b, ' ')
		b = append(b, name...)
		b = append(b, "='"...)
		b = wire.AppendEscapedAttr(b, v)
		b = append(b, '\'')
	}
	b = append(b, "<service"...)
	attr("type", s.Type)
	attr("host", s.Host)
	attr("port", strconv.Itoa(s.Port))
	attr("transport", s.Transport)
	if s.Restricted {
		attr("restricted", "1")
		attr("username", s.Username)
		attr("password", s.Password)
		attr("expires", s.Expires.UTC().Format("2006-01-02T15:04:05Z"))
	}
	return append(b, "/>"...)
}

// loadSecret reads the shared secret kept in path, creating it once.
func loadSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if s := strings.TrimSpace(string(b)); err == nil && len(s) >= 32 {
		return s, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	s := hex.EncodeToString(raw[:])
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s+"\n"), 0o600); err != nil {
		return "", err
	}
	return s, os.Rename(tmp, path)
}
