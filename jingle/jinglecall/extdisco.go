package jinglecall

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/xmppd/xmppd/wire"
)

// Service is one XEP-0215 external service entry (a STUN or TURN server).
type Service struct {
	Type       string `xml:"type,attr"` // stun, stuns, turn, turns
	Host       string `xml:"host,attr"`
	Port       int    `xml:"port,attr"`
	Transport  string `xml:"transport,attr"` // udp, tcp
	Username   string `xml:"username,attr"`
	Password   string `xml:"password,attr"`
	Expires    string `xml:"expires,attr"` // XEP-0082 DateTime
	Restricted string `xml:"restricted,attr"`
}

// ExpiresAt parses Expires (zero when absent or malformed).
func (s Service) ExpiresAt() time.Time {
	t, _ := time.Parse(time.RFC3339, s.Expires)
	return t
}

// URL is the ICE server URL (RFC 7064/7065): stun:HOST:PORT with no query
// (pion refuses one with ErrSTUNQuery, browsers throw), turn:HOST:PORT?transport=T,
// turns:HOST:PORT?transport=tcp.
func (s Service) URL() string {
	u := s.Type + ":" + net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	switch s.Type {
	case "turn":
		u += "?transport=" + s.Transport
	case "turns":
		u += "?transport=tcp"
	}
	return u
}

// usable reports whether an ICE agent can use the entry (what Conversations
// keeps): stun/stuns/turn/turns over udp or tcp, no TLS over udp, TURN only
// with credentials.
func (s Service) usable() bool {
	if s.Host == "" || s.Port <= 0 || s.Port > 65535 {
		return false
	}
	switch s.Transport {
	case "udp", "tcp":
	case "":
		if s.Type != "stun" {
			return false
		}
	default:
		return false
	}
	switch s.Type {
	case "stun":
		return true
	case "stuns":
		return false // pion has no STUN over TLS
	case "turn":
		return s.Username != "" && s.Password != ""
	case "turns":
		return s.Transport != "udp" && s.Username != "" && s.Password != ""
	}
	return false
}

// ICEServers turns XEP-0215 entries into pion ICE servers, keeping those an
// ICE agent can use; keep, when not nil, filters them further (e.g. only
// UDP TURN).
func ICEServers(services []Service, keep func(Service) bool) []webrtc.ICEServer {
	var out []webrtc.ICEServer
	for _, s := range services {
		if !s.usable() || (keep != nil && !keep(s)) {
			continue
		}
		ice := webrtc.ICEServer{URLs: []string{s.URL()}}
		if s.Type == "turn" || s.Type == "turns" {
			ice.Username, ice.Credential = s.Username, s.Password
		}
		out = append(out, ice)
	}
	return out
}

// ExternalServices asks domain (the user's server) for its STUN/TURN
// services (XEP-0215 <services/>); typ "" asks for all types.
func (p *Phone) ExternalServices(ctx context.Context, domain, typ string) ([]Service, error) {
	payload := "<services xmlns='" + NSExtDisco + "'"
	if typ != "" {
		payload += " type='" + escAttr(typ) + "'"
	}
	res, err := p.query(ctx, domain, "get", payload+"/>")
	if err != nil {
		return nil, err
	}
	var v struct {
		Services *struct {
			Service []Service `xml:"service"`
		} `xml:"urn:xmpp:extdisco:2 services"`
	}
	if err := res.Decode(&v); err != nil {
		return nil, err
	}
	if v.Services == nil {
		return nil, errors.New("jinglecall: no <services/> in the answer")
	}
	return v.Services.Service, nil
}

// DiscoverICEServers fetches the STUN/TURN services of domain (XEP-0215),
// makes them the ICE servers of the calls that follow, and returns them.
// keep filters entries as in ICEServers.
func (p *Phone) DiscoverICEServers(ctx context.Context, domain string, keep func(Service) bool) ([]webrtc.ICEServer, error) {
	svcs, err := p.ExternalServices(ctx, domain, "")
	if err != nil {
		return nil, err
	}
	ice := ICEServers(svcs, keep)
	if len(ice) == 0 {
		return nil, fmt.Errorf("jinglecall: %s offers no usable STUN/TURN service", domain)
	}
	p.SetICEServers(ice)
	return ice, nil
}

// IQError is an iq error answer.
type IQError struct {
	Raw []byte
}

func (e *IQError) Error() string { return "jinglecall: iq error: " + string(e.Raw) }

// query sends an iq and waits for its answer.
func (p *Phone) query(ctx context.Context, to, typ, payload string) (*wire.Stanza, error) {
	ch := make(chan *wire.Stanza, 1)
	id := "jc-" + newID()
	p.mu.Lock()
	p.iqs[id] = func(st *wire.Stanza) { ch <- st }
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.iqs, id)
		p.mu.Unlock()
	}()
	if err := p.send("<iq type='" + typ + "' id='" + id + "' to='" + escAttr(to) + "'>" + payload + "</iq>"); err != nil {
		return nil, err
	}
	select {
	case st := <-ch:
		if st.Type == "error" {
			return nil, &IQError{Raw: st.Raw}
		}
		return st, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
