// Package echo is xmppd's call test service: a JID (echo.DOMAIN by
// default, off unless configured) that answers XEP-0353 proposals and
// Jingle RTP calls, audio and video, and sends the caller's media back, so
// users can check their microphone, camera and network path.
//
// It is a jinglecall.Phone that lives inside the server: no account, no
// c2s connection. The JID is either a subdomain of a host (echo.DOMAIN,
// the default), registered as a router service, or a bare JID on a host
// (echo@DOMAIN), taken by OnInbound hooks before delivery. In both cases an
// OnOutbound hook, registered before the calls module's, takes what local
// users send to it. What it sends is routed with its full JID (JID/echo) as
// the sender. Its ICE goes through the embedded TURN server (credentials
// from the turn module, TURN over UDP, relay-only by default).
//
// Media is echoed packet by packet: each RTP packet received on a content
// is written, payload untouched, to a local track of the same codec on the
// same content (the answer offers one codec per content, the first of the
// caller's that pion knows); picture loss indications from the caller are
// passed on to the caller's sender so that keyframes come back.
//
// Echo calls are not supervised by the calls module: its outbound hook
// never sees them (the echo hook runs first and takes the stanzas), so no
// call record is written and a user in an echo call is not "busy". The
// service ends its calls itself: at max-duration, when ICE fails or stays
// disconnected, or when the caller's session-terminate or JMI finish
// arrives.
//
// It also answers disco#info (a client/bot identity with the Jingle
// features), presence subscriptions and probes with caps (clients such as
// Conversations offer calls only to online contacts whose caps say they
// can take them), and chat messages (with a short explanation). Presence
// needs the subdomain form: for echo@DOMAIN the roster module answers
// subscriptions itself (the account does not exist) before the service's
// inbound hook sees them.
package echo

import (
	"context"
	"crypto/sha1" //nolint:gosec // XEP-0115 caps hashes are SHA-1
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/disco"
	"github.com/xmppd/xmppd/jingle/jinglecall"
	"github.com/xmppd/xmppd/jingle/turn"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/wire"
)

// Resource is the resource of the service's full JID.
const Resource = "echo"

const (
	nsDiscoInfo = "http://jabber.org/protocol/disco#info"
	nsCaps      = "http://jabber.org/protocol/caps"
	capsNode    = "https://github.com/xmppd/xmppd/echo"
	identName   = "Echo test"
)

// Module is the running echo service.
type Module struct {
	cfg   *Config
	r     *router.Router
	log   *slog.Logger
	bare  jid.JID
	full  jid.JID
	turn  *turn.Module
	phone *jinglecall.Phone
	ver   string // XEP-0115 verification string

	mu     sync.Mutex
	active int

	calls, packets atomic.Uint64
}

var modules sync.Map // *router.Router → *Module

// Lookup returns the module registered on r (nil when off).
func Lookup(r *router.Router) *Module {
	if m, ok := modules.Load(r); ok {
		return m.(*Module)
	}
	return nil
}

// Register starts the echo service when <echo/> is enabled; it returns
// nil, nil when it is off. Register it after the turn module (it takes its
// credentials) and before the calls module (its hooks must see the
// stanzas to the service first). d, when not nil, lists the service in the
// server's disco#items.
func Register(cfg *conf.Config, r *router.Router, d *disco.Module, log *slog.Logger) (*Module, error) {
	if !cfg.ModuleEnabled("echo") {
		return nil, nil
	}
	ec := cfg.Module("echo").(*Config)
	s := ec.JID
	if s == "" {
		s = "echo." + cfg.Hosts[0]
	}
	bare, err := jid.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("echo: jid %q: %w", s, err)
	}
	service := bare.Localpart() == ""
	switch {
	case service && r.IsHost(bare.Domainpart()):
		return nil, fmt.Errorf("echo: jid %q is a host of this server; use a subdomain (echo.%s) or a JID on it (echo@%s)", s, s, s)
	case service && r.IsLocal(bare.Domainpart()):
		return nil, fmt.Errorf("echo: jid %q is already a service of this server", s)
	case !service && !r.IsHost(bare.Domainpart()):
		return nil, fmt.Errorf("echo: jid %q is not on one of the hosts (%s)", s, strings.Join(cfg.Hosts, ", "))
	}
	full, err := bare.WithResource(Resource)
	if err != nil {
		return nil, err
	}
	m := &Module{cfg: ec, r: r, log: log.With("module", "echo"), bare: bare, full: full, turn: turn.Lookup(r)}
	if ec.RelayOnly && len(m.iceServers()) == 0 {
		return nil, errors.New("echo: relay-only needs a TURN server: enable <turn/> (or set relay-only=\"false\")")
	}
	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled) // a server has no use for .local names
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se))
	m.phone = jinglecall.New(conn{m}, jinglecall.Config{
		JID: full.String(), RelayOnly: ec.RelayOnly, API: api, ICEServers: m.iceServers(),
		OnIncoming: m.incoming, Log: m.log,
	})
	m.ver = capsVer()
	for _, k := range []wire.Kind{wire.KindMessage, wire.KindPresence, wire.KindIQ} {
		// Outbound: before the calls module's hook (local senders).
		r.OnOutbound(k, m.hook)
		if !service {
			// Inbound: whatever else reaches the JID on a host.
			r.OnInbound(k, m.hook)
		}
	}
	if service {
		r.RegisterService(bare.Domainpart(), m.serve)
		if d != nil {
			d.AddItem(func(string) disco.Item { return disco.Item{JID: bare.String(), Name: identName} })
		}
	}
	modules.Store(r, m)
	m.log.Info("echo: call test service", "jid", bare.String(), "relay_only", ec.RelayOnly, "max_calls", ec.MaxCalls)
	return m, nil
}

// serve is the router service of a service-domain JID (echo.DOMAIN).
func (m *Module) serve(c *router.Context) {
	if !m.hook(c) {
		if c.Stanza.Kind != wire.KindPresence {
			c.Error("cancel", "service-unavailable", "")
		}
	}
}

// JID returns the service's bare JID.
func (m *Module) JID() jid.JID { return m.bare }

// Stats returns the number of calls answered and of RTP packets echoed
// since the start.
func (m *Module) Stats() (calls, packets uint64) { return m.calls.Load(), m.packets.Load() }

// Active returns the number of echo calls going on.
func (m *Module) Active() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.active
}

// Close ends every echo call.
func (m *Module) Close() {
	modules.CompareAndDelete(m.r, m)
	m.phone.Close()
}

// iceServers returns the TURN servers (UDP) with fresh credentials for the
// service's JID, and STUN when ICE is not relay-only.
func (m *Module) iceServers() []webrtc.ICEServer {
	if m.turn == nil {
		return nil
	}
	var svcs []jinglecall.Service
	for _, s := range m.turn.Services(m.bare.String()) {
		svcs = append(svcs, jinglecall.Service{Type: s.Type, Host: s.Host, Port: s.Port, Transport: s.Transport,
			Username: s.Username, Password: s.Password})
	}
	return jinglecall.ICEServers(svcs, func(s jinglecall.Service) bool {
		return s.Transport == "udp" && (s.Type == "turn" || (s.Type == "stun" && !m.cfg.RelayOnly))
	})
}

// hook takes every stanza addressed to the service.
func (m *Module) hook(c *router.Context) bool {
	if !c.To.Bare().Equal(m.bare) {
		return false
	}
	st := c.Stanza
	if from := c.From.String(); st.From != from {
		st.SetAddrs(from, st.To)
	}
	if m.phone.Handle(st) {
		return true
	}
	switch st.Kind {
	case wire.KindIQ:
		m.iq(c)
	case wire.KindPresence:
		m.presence(c)
	case wire.KindMessage:
		m.message(c)
	}
	return true
}

func (m *Module) iq(c *router.Context) {
	st := c.Stanza
	if st.Type != "get" && st.Type != "set" {
		return
	}
	if st.Type == "get" && st.PayloadNS == nsDiscoInfo {
		var q struct {
			Node string `xml:"node,attr"`
		}
		var v struct {
			Query *struct {
				Node string `xml:"node,attr"`
			} `xml:"http://jabber.org/protocol/disco#info query"`
		}
		if st.Decode(&v) == nil && v.Query != nil {
			q.Node = v.Query.Node
		}
		b := []byte("<query xmlns='" + nsDiscoInfo + "'")
		if q.Node != "" {
			b = append(b, " node='"...)
			b = wire.AppendEscapedAttr(b, q.Node)
			b = append(b, '\'')
		}
		b = append(b, "><identity category='client' type='bot' name='"+identName+"'/>"...)
		for _, f := range features() {
			b = append(b, "<feature var='"+f+"'/>"...)
		}
		c.Reply(append(b, "</query>"...))
		return
	}
	c.Error("cancel", "service-unavailable", "")
}

func features() []string {
	f := append([]string{nsDiscoInfo}, jinglecall.Features...)
	sort.Strings(f)
	return f
}

// capsVer is the XEP-0115 verification string of the service's identity
// and features.
func capsVer() string {
	s := "client/bot//" + identName + "<"
	for _, f := range features() {
		s += f + "<"
	}
	sum := sha1.Sum([]byte(s)) //nolint:gosec // XEP-0115
	return base64.StdEncoding.EncodeToString(sum[:])
}

func (m *Module) presence(c *router.Context) {
	to := c.From.Bare()
	switch c.Stanza.Type {
	case "subscribe":
		// Subscription answers come from the bare JID (RFC 6121 §3.1.5).
		m.sendPresence(m.bare, to, "subscribed")
		m.sendPresence(m.full, to, "")
	case "probe":
		m.sendPresence(m.full, to, "")
	case "unsubscribe":
		m.sendPresence(m.bare, to, "unsubscribed")
	}
}

// sendPresence sends a presence of type typ ("" = available, with caps).
func (m *Module) sendPresence(from, to jid.JID, typ string) {
	b := []byte("<presence from='")
	b = wire.AppendEscapedAttr(b, from.String())
	b = append(b, "' to='"...)
	b = wire.AppendEscapedAttr(b, to.String())
	b = append(b, '\'')
	if typ != "" {
		b = append(b, " type='"+typ+"'/>"...)
	} else {
		b = append(b, "><c xmlns='"+nsCaps+"' hash='sha-1' node='"+capsNode+"' ver='"...)
		b = wire.AppendEscapedAttr(b, m.ver)
		b = append(b, "'/></presence>"...)
	}
	m.route(from, to, b)
}

func (m *Module) message(c *router.Context) {
	st := c.Stanza
	if (st.Type != "chat" && st.Type != "" && st.Type != "normal") || !st.HasChild(wire.NSClient, "body") ||
		c.From.Localpart() == "" || c.From.Bare().Equal(m.bare) {
		return
	}
	text := fmt.Sprintf("This is the echo test service. Call this address (audio, video or both) and you get back what you send: "+
		"check your microphone, camera and network. A test call lasts at most %v.", m.cfg.MaxDuration)
	b := []byte("<message type='")
	b = append(b, map[bool]string{true: "chat", false: "normal"}[st.Type == "chat"]...)
	b = append(b, "' from='"...)
	b = wire.AppendEscapedAttr(b, m.full.String())
	b = append(b, "' to='"...)
	b = wire.AppendEscapedAttr(b, c.From.String())
	b = append(b, "'><body>"...)
	b = wire.AppendEscapedText(b, text)
	b = append(b, "</body></message>"...)
	m.route(m.full, c.From, b)
}

// route sends a stanza the service made.
func (m *Module) route(from, to jid.JID, raw []byte) {
	st, err := wire.ParseElement(raw, wire.NSClient)
	if err != nil {
		m.log.Error("echo: bad stanza", "err", err)
		return
	}
	m.r.Route(&router.Context{Context: context.Background(), Router: m.r, Stanza: st, From: from, To: to})
}

// conn is the phone's connection: it stamps the service's full JID and
// routes.
type conn struct{ m *Module }

func (c conn) Send(raw string) error {
	st, err := wire.ParseElement([]byte(raw), wire.NSClient)
	if err != nil {
		return err
	}
	to, err := jid.Parse(st.To)
	if err != nil {
		return err
	}
	st.SetAddrs(c.m.full.String(), st.To)
	c.m.r.Route(&router.Context{Context: context.Background(), Router: c.m.r, Stanza: st, From: c.m.full, To: to})
	return nil
}

// incoming answers a call: busy beyond max-calls, else with the echo.
func (m *Module) incoming(call *jinglecall.Call) {
	m.mu.Lock()
	if m.active >= m.cfg.MaxCalls {
		m.mu.Unlock()
		m.log.Info("echo: busy", "caller", call.Peer(), "sid", call.ID())
		call.Reject(jinglecall.ReasonBusy)
		return
	}
	m.active++
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.active--
		m.mu.Unlock()
	}()
	m.calls.Add(1)
	m.phone.SetICEServers(m.iceServers()) // fresh credentials
	e := &echoCall{m: m, tracks: map[string]*webrtc.TrackLocalStaticRTP{}, ssrc: map[string]uint32{}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	err := call.Accept(ctx, jinglecall.CallOptions{Prepare: e.prepare, OnTrack: e.onTrack})
	cancel()
	if err != nil {
		m.log.Info("echo: call not set up", "caller", call.Peer(), "sid", call.ID(), "err", err)
		return
	}
	m.log.Info("echo: call answered", "caller", call.Peer(), "sid", call.ID(), "media", strings.Join(call.Media(), ","))
	t := time.AfterFunc(m.cfg.MaxDuration, func() {
		call.End(jinglecall.Reason{Condition: jinglecall.ReasonTimeout, Text: fmt.Sprintf("An echo test lasts at most %v", m.cfg.MaxDuration)})
	})
	<-call.Done()
	t.Stop()
	m.log.Info("echo: call ended", "caller", call.Peer(), "sid", call.ID(), "reason", call.Reason().Condition, "packets", e.packets.Load())
}

// echoCall is the media side of one echo call.
type echoCall struct {
	m       *Module
	pc      *webrtc.PeerConnection
	mu      sync.Mutex
	tracks  map[string]*webrtc.TrackLocalStaticRTP // mid → what goes back
	ssrc    map[string]uint32                      // mid → the caller's SSRC
	packets atomic.Uint64
}

// skipCodec lists payload types that are not media codecs of their own.
var skipCodec = map[string]bool{"rtx": true, "red": true, "ulpfec": true, "flexfec-03": true, "cn": true, "telephone-event": true}

// prepare runs with the caller's offer applied: for each offered content
// it keeps one codec (the caller's first that pion knows) and adds a local
// track of that codec on the same content.
func (e *echoCall) prepare(call *jinglecall.Call, pc *webrtc.PeerConnection) error {
	e.pc = pc
	contents := map[string]jinglecall.Content{}
	for _, ct := range call.Remote() {
		contents[ct.Name] = ct
	}
	for _, t := range pc.GetTransceivers() {
		ct, ok := contents[t.Mid()]
		if !ok || ct.Description == nil {
			continue
		}
		kind := t.Kind().String()
		var chosen *webrtc.RTPCodecParameters
		for _, p := range ct.Description.PayloadTypes {
			if skipCodec[strings.ToLower(p.Name)] || p.Name == "" {
				continue
			}
			codec := codecOf(kind, p, ct.Description.Feedback)
			if t.SetCodecPreferences([]webrtc.RTPCodecParameters{codec}) == nil {
				chosen = &codec
				break
			}
		}
		if chosen == nil {
			continue // nothing we can send back: the content stays receive-only
		}
		track, err := webrtc.NewTrackLocalStaticRTP(chosen.RTPCodecCapability, kind, "echo")
		if err != nil {
			return err
		}
		sender, err := pc.AddTrack(track)
		if err != nil {
			return err
		}
		mid := t.Mid()
		for _, tt := range pc.GetTransceivers() {
			if tt.Sender() == sender {
				mid = tt.Mid()
			}
		}
		e.mu.Lock()
		e.tracks[mid] = track
		e.mu.Unlock()
		go e.readRTCP(mid, sender)
	}
	return nil
}

func codecOf(kind string, p jinglecall.PayloadType, descFB []jinglecall.Feedback) webrtc.RTPCodecParameters {
	var fmtp []string
	for _, prm := range p.Parameters {
		if prm.Value == "" {
			fmtp = append(fmtp, prm.Name)
		} else {
			fmtp = append(fmtp, prm.Name+"="+prm.Value)
		}
	}
	var fb []webrtc.RTCPFeedback
	for _, f := range append(append([]jinglecall.Feedback(nil), p.Feedback...), descFB...) {
		fb = append(fb, webrtc.RTCPFeedback{Type: f.Type, Parameter: f.Subtype})
	}
	ch := p.Channels
	if ch == 1 {
		ch = 0
	}
	return webrtc.RTPCodecParameters{PayloadType: webrtc.PayloadType(p.ID), RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: kind + "/" + p.Name, ClockRate: p.ClockRate, Channels: ch,
		SDPFmtpLine: strings.Join(fmtp, ";"), RTCPFeedback: fb,
	}}
}

// onTrack echoes one remote track onto the local track of its content.
func (e *echoCall) onTrack(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	mid := ""
	for _, t := range e.pc.GetTransceivers() {
		if t.Receiver() == recv {
			mid = t.Mid()
		}
	}
	e.mu.Lock()
	local := e.tracks[mid]
	e.ssrc[mid] = uint32(remote.SSRC())
	e.mu.Unlock()
	for {
		pkt, _, err := remote.ReadRTP()
		if err != nil {
			return
		}
		if local == nil {
			continue
		}
		// The caller's header extensions mean nothing on our stream;
		// pion's interceptors add ours.
		pkt.Header.Extension, pkt.Header.Extensions, pkt.Header.ExtensionProfile = false, nil, 0
		if local.WriteRTP(pkt) == nil {
			e.packets.Add(1)
			e.m.packets.Add(1)
		}
	}
}

// readRTCP reads what the caller says about our stream of mid (the
// interceptors need it read) and asks the caller for a keyframe when the
// caller lost a picture of what we echo.
func (e *echoCall) readRTCP(mid string, s *webrtc.RTPSender) {
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				e.mu.Lock()
				ssrc := e.ssrc[mid]
				e.mu.Unlock()
				if ssrc != 0 {
					_ = e.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
				}
			}
		}
	}
}
