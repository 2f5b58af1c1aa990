package jinglecall

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/xmppd/xmppd/wire"
)

// Conn is the XMPP connection a Phone rides on: anything that sends raw
// stanzas (client.Client does). Incoming stanzas are handed to
// Phone.Handle (or Phone.Run reads them from a channel).
type Conn interface {
	Send(raw string) error
}

// Config configures a Phone.
type Config struct {
	// JID is the phone's own full JID (client.Client.JID).
	JID string
	// ICEServers for the calls (see DiscoverICEServers, ICEServers).
	ICEServers []webrtc.ICEServer
	// RelayOnly makes ICE use TURN relays only (iceTransportPolicy
	// "relay"): the peer never learns this device's addresses.
	RelayOnly bool
	// API builds the peer connections; nil uses pion's defaults (the
	// default codecs: Opus, G.722, PCMU, PCMA, VP8, VP9, H.264, AV1 …, and
	// the default interceptors: NACK, RTCP reports, TWCC).
	API *webrtc.API
	// OnIncoming is told of each incoming call (a JMI <propose/> or a
	// Jingle session-initiate without one) while it rings, on its own
	// goroutine; it answers with Call.Accept or Call.Reject. With no
	// OnIncoming the phone only calls out: proposals are left to the
	// account's other devices.
	OnIncoming func(*Call)
	// DisconnectTimeout: a call whose connection stays disconnected this
	// long ends (connectivity-error). Default 10 s. A failed ICE
	// connection ends the call at once.
	DisconnectTimeout time.Duration
	// ConnectTimeout: a call whose media connection is not up this long
	// after the session was set up ends (connectivity-error). Default 30 s.
	ConnectTimeout time.Duration
	// SetupTimeout bounds the Jingle negotiation after JMI <proceed/>
	// (session-initiate, then session-accept). Default 30 s.
	SetupTimeout time.Duration
	// IQTimeout bounds the wait for an iq answer. Default 15 s.
	IQTimeout time.Duration
	// Log receives the phone's diagnostics; nil discards them.
	Log *slog.Logger
}

// Phone is a Jingle endpoint on one XMPP connection: it places and answers
// calls (XEP-0353 JMI, XEP-0166/0167/0176/0320/0338/0339) with pion/webrtc
// peer connections. It is safe for concurrent use.
type Phone struct {
	conn Conn
	cfg  Config
	jid  string
	bare string
	api  *webrtc.API
	log  *slog.Logger

	mu     sync.Mutex
	ice    []webrtc.ICEServer
	calls  map[string]*Call
	iqs    map[string]func(*wire.Stanza)
	closed bool
}

// New returns a phone on conn. Feed it incoming stanzas with Handle or Run.
func New(conn Conn, cfg Config) *Phone {
	if cfg.DisconnectTimeout <= 0 {
		cfg.DisconnectTimeout = 10 * time.Second
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 30 * time.Second
	}
	if cfg.SetupTimeout <= 0 {
		cfg.SetupTimeout = 30 * time.Second
	}
	if cfg.IQTimeout <= 0 {
		cfg.IQTimeout = 15 * time.Second
	}
	p := &Phone{
		conn: conn, cfg: cfg, jid: cfg.JID, bare: bareJID(cfg.JID), api: cfg.API, log: cfg.Log,
		ice: cfg.ICEServers, calls: map[string]*Call{}, iqs: map[string]func(*wire.Stanza){},
	}
	if p.api == nil {
		p.api = webrtc.NewAPI()
	}
	if p.log == nil {
		p.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return p
}

// JID returns the phone's own full JID.
func (p *Phone) JID() string { return p.jid }

// SetICEServers replaces the ICE servers used by calls set up from now on.
func (p *Phone) SetICEServers(s []webrtc.ICEServer) {
	p.mu.Lock()
	p.ice = append([]webrtc.ICEServer(nil), s...)
	p.mu.Unlock()
}

func (p *Phone) iceServers() []webrtc.ICEServer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]webrtc.ICEServer(nil), p.ice...)
}

// Calls returns the calls going on (ringing or set up).
func (p *Phone) Calls() []*Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*Call, 0, len(p.calls))
	for _, c := range p.calls {
		out = append(out, c)
	}
	return out
}

// Close hangs up every call and waits (up to 10 s) until their peer
// connections are closed. The phone takes no new calls afterwards.
func (p *Phone) Close() {
	p.mu.Lock()
	p.closed = true
	calls := make([]*Call, 0, len(p.calls))
	for _, c := range p.calls {
		calls = append(calls, c)
	}
	p.mu.Unlock()
	for _, c := range calls {
		c.Hangup()
	}
	deadline := time.After(10 * time.Second)
	for _, c := range calls {
		select {
		case <-c.pcClosed:
		case <-deadline:
			return
		}
	}
}

// Run hands every stanza from in to Handle; the ones the phone does not
// take go to other (may be nil). It returns when in is closed (the stream
// ended): the calls are then hung up locally.
func (p *Phone) Run(in <-chan *wire.Stanza, other func(*wire.Stanza)) {
	for st := range in {
		if !p.Handle(st) && other != nil {
			other(st)
		}
	}
	p.Close()
}

// Handle takes one incoming stanza and reports whether it was the phone's:
// a JMI message (also carbon copies of the account's own), a Jingle iq, or
// the answer to an iq the phone sent. It never blocks on the network.
func (p *Phone) Handle(st *wire.Stanza) bool {
	switch st.Kind {
	case wire.KindIQ:
		switch st.Type {
		case "result", "error":
			p.mu.Lock()
			f := p.iqs[st.ID]
			delete(p.iqs, st.ID)
			p.mu.Unlock()
			if f != nil {
				f(st)
				return true
			}
			return false
		case "set":
			if st.PayloadNS == NSJingle && st.PayloadName == "jingle" {
				p.handleJingle(st)
				return true
			}
		}
	case wire.KindMessage:
		if st.Type == "error" {
			return p.handleBounce(st)
		}
		if st.HasChild(NSCarbons, "sent") {
			return p.handleCarbon(st)
		}
		for _, n := range []string{"propose", "ringing", "proceed", "reject", "retract", "finish", "accept"} {
			if st.HasChild(NSJMI, n) {
				var m jmiMessage
				if err := st.Decode(&m); err != nil {
					return true
				}
				if e := m.jmi(); e != nil {
					p.handleJMI(st.From, e)
				}
				return true
			}
		}
	}
	return false
}

// call returns the call with sid.
func (p *Phone) call(sid string) *Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[sid]
}

func (p *Phone) send(raw string) error {
	if err := p.conn.Send(raw); err != nil {
		p.log.Warn("jinglecall: send failed", "err", err)
		return err
	}
	return nil
}

// handleJMI processes a live JMI element from 'from'.
func (p *Phone) handleJMI(from string, e *jmiElem) {
	if e.ID == "" {
		return
	}
	c := p.call(e.ID)
	reason := Reason{}
	if e.Reason != nil {
		reason = *e.Reason
	}
	switch e.XMLName.Local {
	case "propose":
		if c != nil || bareJID(from) == p.bare || !strings.Contains(from, "/") {
			return // a duplicate, or one of our own devices
		}
		p.mu.Lock()
		closed := p.closed
		p.mu.Unlock()
		if p.cfg.OnIncoming == nil || closed {
			return
		}
		var media []string
		for _, d := range e.Desc {
			if d.Media != "" {
				media = append(media, d.Media)
			}
		}
		c = p.newCall(e.ID, true, true, from, media)
		if c == nil {
			return
		}
		c.setState(StateRinging)
		p.sendJMI(from, "ringing", e.ID, nil, nil)
		go p.cfg.OnIncoming(c)
	case "ringing":
		if c != nil && !c.incoming && bareJID(from) == c.peerBare {
			c.tryPost(func() {
				if c.state() == StateProposing {
					c.setState(StateRinging)
				}
			})
		}
	case "proceed":
		if c != nil && !c.incoming && bareJID(from) == c.peerBare && strings.Contains(from, "/") {
			c.tryPost(func() { c.onProceed(from) })
		}
	case "reject":
		if c != nil && !c.incoming && bareJID(from) == c.peerBare {
			c.tryPost(func() {
				if !c.proceeded {
					c.end(reason, false)
				}
			})
		}
	case "retract":
		if c != nil && c.incoming && bareJID(from) == c.peerBare {
			c.tryPost(func() { c.end(reasonOr(reason, ReasonCancel), false) })
		}
	case "accept":
		// Older clients (JMI 0.2) tell their own account's other devices
		// that they answered with <accept/> to the bare JID.
		if c != nil && c.incoming && bareJID(from) == p.bare && from != p.jid {
			c.tryPost(func() {
				if !c.proceeded {
					c.end(Reason{Condition: ReasonCancel, Text: "answered on another device"}, false)
				}
			})
		}
	case "finish":
		if c != nil && bareJID(from) == c.peerBare {
			c.tryPost(func() { c.end(reasonOr(reason, ReasonSuccess), false) })
		}
	}
}

func reasonOr(r Reason, cond string) Reason {
	if r.Condition == "" {
		r.Condition = cond
	}
	return r
}

// handleBounce ends an outgoing call whose proposal came back as an error.
func (p *Phone) handleBounce(st *wire.Stanza) bool {
	if !st.HasChild(NSJMI, "propose") {
		return false
	}
	var m jmiMessage
	if err := st.Decode(&m); err != nil {
		return true
	}
	if e := m.jmi(); e != nil {
		if c := p.call(e.ID); c != nil && !c.incoming {
			c.tryPost(func() {
				if !c.proceeded {
					c.end(Reason{Condition: ReasonGeneralError, Text: "the proposal bounced"}, false)
				}
			})
		}
	}
	return true
}

// handleCarbon looks at a copy of a message one of the account's other
// devices sent: a <proceed/> or <reject/> there stops the ringing here.
func (p *Phone) handleCarbon(st *wire.Stanza) bool {
	var m carbonMessage
	if err := st.Decode(&m); err != nil || m.Sent == nil || bareJID(st.From) != p.bare {
		return false
	}
	e := m.Sent.Forwarded.Message.jmi()
	if e == nil {
		return false
	}
	if c := p.call(e.ID); c != nil && c.incoming {
		switch e.XMLName.Local {
		case "proceed", "reject", "accept":
			c.tryPost(func() {
				if !c.proceeded {
					c.end(Reason{Condition: ReasonCancel, Text: "answered on another device"}, false)
				}
			})
		}
	}
	return true
}

func (p *Phone) handleJingle(st *wire.Stanza) {
	var v jingleIQ
	if err := st.Decode(&v); err != nil || v.Jingle == nil || v.Jingle.SID == "" {
		p.iqError(st, "modify", "bad-request", "")
		return
	}
	j := v.Jingle
	from := st.From
	c := p.call(j.SID)
	if j.Action == "session-initiate" {
		switch {
		case c == nil:
			p.mu.Lock()
			closed := p.closed
			p.mu.Unlock()
			if p.cfg.OnIncoming == nil || closed {
				p.iqError(st, "cancel", "service-unavailable", "")
				return
			}
			var media []string
			for _, ct := range j.Contents {
				if ct.Description != nil {
					media = append(media, ct.Description.Media)
				}
			}
			c = p.newCall(j.SID, true, false, from, media)
			if c == nil {
				p.iqError(st, "cancel", "conflict", "")
				return
			}
			p.iqResult(st)
			c.tryPost(func() { c.onInitiate(j) })
			c.tryPost(func() {
				if c.state() < StateRinging {
					c.setState(StateRinging)
				}
			})
			go p.cfg.OnIncoming(c)
		case c.incoming && c.peerFull() == from:
			p.iqResult(st)
			c.tryPost(func() { c.onInitiate(j) })
		default:
			p.iqError(st, "cancel", "bad-request", "out-of-order")
		}
		return
	}
	if c == nil || c.peerFull() != from {
		p.iqError(st, "cancel", "item-not-found", "unknown-session")
		return
	}
	var f func()
	switch j.Action {
	case "session-accept":
		f = func() { c.onAccept(j) }
	case "transport-info":
		f = func() { c.onTransportInfo(j) }
	case "session-terminate":
		r := Reason{Condition: ReasonSuccess}
		if j.Reason != nil {
			r = reasonOr(*j.Reason, ReasonSuccess)
		}
		f = func() { c.end(r, false) }
	case "session-info":
		f = func() {}
	default:
		p.iqError(st, "cancel", "feature-not-implemented", "unsupported-info")
		return
	}
	if !c.tryPost(f) {
		p.iqError(st, "wait", "resource-constraint", "")
		return
	}
	p.iqResult(st)
}

func (p *Phone) iqResult(st *wire.Stanza) {
	_ = p.send("<iq type='result' id='" + escAttr(st.ID) + "' to='" + escAttr(st.From) + "'/>")
}

// iqError answers st with a stanza error; jingleCond, if not "", adds a
// Jingle error condition (urn:xmpp:jingle:errors:1).
func (p *Phone) iqError(st *wire.Stanza, typ, cond, jingleCond string) {
	b := "<iq type='error' id='" + escAttr(st.ID) + "' to='" + escAttr(st.From) + "'><error type='" + typ + "'><" + cond +
		" xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
	if jingleCond != "" {
		b += "<" + jingleCond + " xmlns='" + NSJingleErrors + "'/>"
	}
	_ = p.send(b + "</error></iq>")
}

// sendJMI sends a JMI element (type chat, with a store hint).
func (p *Phone) sendJMI(to, name, id string, reason *Reason, media []string) {
	b := "<message type='chat' id='jm-" + newID() + "' to='" + escAttr(to) + "'><" + name + " xmlns='" + NSJMI + "' id='" + escAttr(id) + "'>"
	for _, m := range media {
		b += "<description xmlns='" + NSRTP + "' media='" + escAttr(m) + "'/>"
	}
	if reason != nil {
		cond := reason.Condition
		if cond == "" {
			cond = ReasonSuccess
		}
		b += "<reason xmlns='" + NSJingle + "'><" + cond + "/>"
		if reason.Text != "" {
			b += "<text>" + escText(reason.Text) + "</text>"
		}
		b += "</reason>"
	}
	_ = p.send(b + "</" + name + "><store xmlns='" + NSHints + "'/></message>")
}

// sendIQ sends an iq set carrying payload to 'to' and calls onError (on the
// call's goroutine) if it is answered with an error.
func (c *Call) sendIQ(to, payload string, onError func(*wire.Stanza)) {
	p := c.p
	id := "jc-" + newID()
	p.mu.Lock()
	p.iqs[id] = func(st *wire.Stanza) {
		if st.Type == "error" && onError != nil {
			c.tryPost(func() { onError(st) })
		}
	}
	p.mu.Unlock()
	time.AfterFunc(p.cfg.IQTimeout, func() {
		p.mu.Lock()
		delete(p.iqs, id)
		p.mu.Unlock()
	})
	_ = p.send("<iq type='set' id='" + id + "' to='" + escAttr(to) + "'>" + payload + "</iq>")
}

// Call places a call to 'to' and returns when the callee has accepted it
// (its session-accept was applied), or fails: the callee rejected it
// (*EndError with the reason, e.g. busy or decline), nobody answered before
// ctx ended (the proposal is retracted), or the session could not be set
// up. 'to' is a bare JID for a JMI call (every device of the callee rings);
// with opts.NoJMI it is the full JID that gets the session-initiate.
func (p *Phone) Call(ctx context.Context, to string, opts CallOptions) (*Call, error) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("jinglecall: the phone is closed")
	}
	media := opts.media()
	if len(media) == 0 {
		return nil, fmt.Errorf("jinglecall: a call needs audio or video (tracks or Media)")
	}
	id := uuid4()
	peer := to
	if !opts.NoJMI {
		peer = bareJID(to)
	} else if !strings.Contains(to, "/") {
		return nil, fmt.Errorf("jinglecall: a call without JMI goes to a full JID, not %q", to)
	}
	c := p.newCall(id, false, !opts.NoJMI, peer, media)
	if c == nil {
		return nil, fmt.Errorf("jinglecall: the phone is closed")
	}
	c.opts = opts
	if opts.NoJMI {
		c.tryPost(func() { c.startSession(peer) })
	} else {
		c.post(func() {
			c.setState(StateProposing)
			p.sendJMI(peer, "propose", id, nil, media)
		})
	}
	select {
	case <-c.accepted:
		return c, nil
	case <-c.done:
		return nil, c.Err()
	case <-ctx.Done():
		c.post(func() { c.end(Reason{Condition: ReasonCancel}, true) })
		<-c.done
		return nil, ctx.Err()
	}
}

func bareJID(j string) string {
	if i := strings.IndexByte(j, '/'); i >= 0 {
		return j[:i]
	}
	return j
}

func escAttr(s string) string { return string(wire.AppendEscapedAttr(nil, s)) }
func escText(s string) string { return string(wire.AppendEscapedText(nil, s)) }

// uuid4 returns a random (version 4) UUID: JMI ids are UUIDs and become
// the Jingle sid.
func uuid4() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
