package jinglecall

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/xmppd/xmppd/wire"
)

// State is where a call is.
type State int

// States of a call, in order.
const (
	StateNew        State = iota
	StateProposing        // outgoing: JMI <propose/> sent
	StateRinging          // outgoing: a device of the callee rings; incoming: ringing here
	StateProceeding       // JMI <proceed/> sent or received: Jingle follows
	StatePending          // session-initiate sent or received, not accepted yet
	StateActive           // session accepted: ICE and DTLS are connecting
	StateConnected        // media flows
	StateEnded
)

var stateNames = [...]string{"new", "proposing", "ringing", "proceeding", "pending", "active", "connected", "ended"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// CallOptions describe the media of a call, for Phone.Call and Call.Accept.
type CallOptions struct {
	// Tracks are sent (e.g. webrtc.TrackLocalStaticSample or
	// TrackLocalStaticRTP). When answering, each goes to an offered
	// content of its kind.
	Tracks []webrtc.TrackLocal
	// Media adds kinds ("audio", "video") to receive without sending
	// (outgoing calls; incoming calls take what the caller offers).
	Media []string
	// OnTrack is called, on its own goroutine, for each remote track; it
	// should read the track until it returns an error. nil: remote media
	// is read and dropped.
	OnTrack func(*webrtc.TrackRemote, *webrtc.RTPReceiver)
	// OnState is told of every state change, on the call's goroutine: it
	// must not block.
	OnState func(State)
	// Prepare, if not nil, may adjust the peer connection before the offer
	// (outgoing) or the answer (incoming, with the caller's offer applied:
	// transceivers exist for the offered contents, see Call.Remote) is
	// created: add tracks, set codec preferences. A sender added here is
	// the caller's to read RTCP from.
	Prepare func(*Call, *webrtc.PeerConnection) error
	// NoJMI places the call with a Jingle session-initiate to a full JID
	// directly, without XEP-0353 (Phone.Call only).
	NoJMI bool
}

func (o *CallOptions) media() []string {
	var out []string
	seen := map[string]bool{}
	add := func(k string) {
		if (k == "audio" || k == "video") && !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	for _, t := range o.Tracks {
		add(t.Kind().String())
	}
	for _, m := range o.Media {
		add(m)
	}
	return out
}

// EndError is why a call ended, as Call.Err returns it.
type EndError struct {
	Reason Reason
	// Remote is true when the other side (or its server) ended the call.
	Remote bool
}

func (e *EndError) Error() string {
	who := "locally"
	if e.Remote {
		who = "by the peer"
	}
	s := "jinglecall: call ended " + who + ": " + e.Reason.Condition
	if e.Reason.Text != "" {
		s += " (" + e.Reason.Text + ")"
	}
	return s
}

// Call is one call (incoming or outgoing). Its methods are safe for
// concurrent use.
type Call struct {
	p        *Phone
	id       string
	incoming bool
	viaJMI   bool
	media    []string
	peerBare string

	events    chan func()
	done      chan struct{}
	accepted  chan struct{}
	connected chan struct{}
	pcClosed  chan struct{}

	mu     sync.Mutex
	peer   string // full JID once known
	st     State
	reason *EndError
	remote []Content
	pcRef  *webrtc.PeerConnection

	// Owned by the call's goroutine.
	opts        CallOptions
	pc          *webrtc.PeerConnection
	proceeded   bool // JMI proceed sent (incoming) or received (outgoing)
	initiated   bool // session-initiate sent or received
	userOK      bool // incoming: the user accepted
	offer       *Jingle
	jingleSent  bool // our session-initiate/accept is out: candidates may follow
	local       []Content
	creators    map[string]Role
	localCands  []Candidate
	remoteSet   bool
	remoteCands []remoteCand
	ended       bool
	setupTimer  *time.Timer
	connTimer   *time.Timer
	discTimer   *time.Timer
}

// maxBufferedCandidates bounds the remote candidates kept before the
// remote description is set.
const maxBufferedCandidates = 64

type remoteCand struct {
	mid string
	c   Candidate
}

func (p *Phone) newCall(id string, incoming, viaJMI bool, peer string, media []string) *Call {
	c := &Call{
		p: p, id: id, incoming: incoming, viaJMI: viaJMI, media: media, peerBare: bareJID(peer),
		events: make(chan func(), 256), done: make(chan struct{}), accepted: make(chan struct{}),
		connected: make(chan struct{}), pcClosed: make(chan struct{}), creators: map[string]Role{},
	}
	if peer != c.peerBare {
		c.peer = peer
	}
	p.mu.Lock()
	if p.closed || p.calls[id] != nil {
		p.mu.Unlock()
		return nil
	}
	p.calls[id] = c
	p.mu.Unlock()
	go c.loop()
	return c
}

func (c *Call) loop() {
	for {
		select {
		case f := <-c.events:
			f()
		case <-c.done:
			return
		}
	}
}

// post queues f on the call's goroutine, waiting for room; false once the
// call has ended.
func (c *Call) post(f func()) bool {
	select {
	case <-c.done:
		return false
	default:
	}
	select {
	case c.events <- f:
		return true
	case <-c.done:
		return false
	}
}

// tryPost queues f without waiting (for stanza handlers).
func (c *Call) tryPost(f func()) bool {
	select {
	case <-c.done:
		return false
	case c.events <- f:
		return true
	default:
		c.p.log.Warn("jinglecall: call event queue full; event dropped", "sid", c.id)
		return false
	}
}

// ID is the call's id: the JMI id and the Jingle sid.
func (c *Call) ID() string { return c.id }

// Incoming reports whether the peer called.
func (c *Call) Incoming() bool { return c.incoming }

// Media lists the kinds of media the call was proposed or offered with.
func (c *Call) Media() []string { return append([]string(nil), c.media...) }

// Peer returns the peer's JID: the full JID once known (a caller, or the
// callee's device that answered), else the bare JID called.
func (c *Call) Peer() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.peer != "" {
		return c.peer
	}
	return c.peerBare
}

func (c *Call) peerFull() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peer
}

// State returns the call's state.
func (c *Call) State() State { return c.state() }

func (c *Call) state() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

func (c *Call) setState(s State) {
	c.mu.Lock()
	changed := c.st != s
	c.st = s
	c.mu.Unlock()
	if changed && c.opts.OnState != nil {
		c.opts.OnState(s)
	}
}

// Remote returns the peer's contents as last received (the offer of an
// incoming call, the answer of an outgoing one).
func (c *Call) Remote() []Content {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Content(nil), c.remote...)
}

// PeerConnection returns the call's peer connection (nil before the Jingle
// session is set up).
func (c *Call) PeerConnection() *webrtc.PeerConnection {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pcRef
}

// Done is closed when the call has ended.
func (c *Call) Done() <-chan struct{} { return c.done }

// Connected is closed when the media connection (ICE + DTLS) is up.
func (c *Call) Connected() <-chan struct{} { return c.connected }

// Err returns why the call ended (an *EndError), or nil while it goes on.
func (c *Call) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reason == nil {
		return nil
	}
	return c.reason
}

// Reason returns the reason the call ended with ("" while it goes on).
func (c *Call) Reason() Reason {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reason == nil {
		return Reason{}
	}
	return c.reason.Reason
}

// Accept answers an incoming call with opts: JMI <proceed/> (to the
// caller's device), then the session-accept for the caller's offer. It
// returns when the session-accept is sent, or the call ended, or ctx ended
// (the call is then ended with reason cancel).
func (c *Call) Accept(ctx context.Context, opts CallOptions) error {
	if !c.incoming {
		return errors.New("jinglecall: Accept on an outgoing call")
	}
	if !c.post(func() {
		if c.userOK {
			return
		}
		c.opts = opts
		c.userOK = true
		if c.viaJMI && !c.proceeded {
			c.proceeded = true
			c.p.sendJMI(c.peer, "proceed", c.id, nil, nil)
			c.setState(StateProceeding)
			c.startSetupTimer()
		}
		if c.offer != nil {
			c.answer()
		}
	}) {
		return c.Err()
	}
	select {
	case <-c.accepted:
		return nil
	case <-c.done:
		return c.Err()
	case <-ctx.Done():
		c.post(func() { c.end(Reason{Condition: ReasonCancel}, true) })
		return ctx.Err()
	}
}

// Reject declines an incoming call (JMI <reject/> or a session-terminate)
// with reason (busy, decline …; "" = decline).
func (c *Call) Reject(reason string) {
	if reason == "" {
		reason = ReasonDecline
	}
	c.End(Reason{Condition: reason})
	<-c.done
}

// Hangup ends the call with reason success (or cancel while an outgoing
// call rings, decline while an incoming call rings) and tells the peer. It
// returns when the call has ended.
func (c *Call) Hangup() {
	c.post(func() {
		r := ReasonSuccess
		switch {
		case !c.incoming && !c.proceeded && c.viaJMI:
			r = ReasonCancel
		case c.incoming && !c.userOK:
			r = ReasonDecline
		}
		c.end(Reason{Condition: r}, true)
	})
	<-c.done
}

// End ends the call with reason and tells the peer; it does not wait.
func (c *Call) End(reason Reason) {
	c.post(func() { c.end(reason, true) })
}

// end finishes the call. notify: we end it and tell the peer; otherwise
// the peer (or its server) ended it, and we answer a JMI <finish/> when
// the call was set up with JMI.
func (c *Call) end(r Reason, notify bool) {
	if c.ended {
		return
	}
	c.ended = true
	peer := c.peerFull()
	switch {
	case notify && c.viaJMI && !c.incoming && !c.proceeded:
		c.p.sendJMI(c.peerBare, "retract", c.id, &r, nil)
	case notify && c.viaJMI && c.incoming && !c.proceeded:
		c.p.sendJMI(peer, "reject", c.id, &r, nil)
	case notify:
		if c.initiated && peer != "" {
			j := Jingle{Action: "session-terminate", SID: c.id, Reason: &r}
			c.sendIQ(peer, marshal(j), nil)
		}
		if c.viaJMI && peer != "" {
			c.p.sendJMI(peer, "finish", c.id, &r, nil)
		}
	case c.viaJMI && c.proceeded && peer != "":
		c.p.sendJMI(peer, "finish", c.id, &r, nil)
	}
	for _, t := range []*time.Timer{c.setupTimer, c.connTimer, c.discTimer} {
		if t != nil {
			t.Stop()
		}
	}
	c.mu.Lock()
	c.reason = &EndError{Reason: r, Remote: !notify}
	c.mu.Unlock()
	c.setState(StateEnded)
	c.p.mu.Lock()
	if c.p.calls[c.id] == c {
		delete(c.p.calls, c.id)
	}
	c.p.mu.Unlock()
	c.p.log.Info("jinglecall: call ended", "sid", c.id, "peer", c.Peer(), "reason", r.Condition, "by_peer", !notify)
	close(c.done)
	pc := c.pc
	go func() {
		if pc != nil {
			_ = pc.Close()
		}
		close(c.pcClosed)
	}()
}

func (c *Call) fail(cond string, err error) {
	c.p.log.Warn("jinglecall: call failed", "sid", c.id, "err", err)
	c.end(Reason{Condition: cond, Text: err.Error()}, true)
}

func (c *Call) startSetupTimer() {
	if c.setupTimer != nil {
		return
	}
	c.setupTimer = time.AfterFunc(c.p.cfg.SetupTimeout, func() {
		c.post(func() {
			select {
			case <-c.accepted:
			default:
				c.end(Reason{Condition: ReasonTimeout, Text: "the session was not set up in time"}, true)
			}
		})
	})
}

// onProceed (outgoing): a device of the callee answered.
func (c *Call) onProceed(from string) {
	if c.proceeded || c.ended {
		return
	}
	c.proceeded = true
	c.mu.Lock()
	c.peer = from
	c.mu.Unlock()
	c.setState(StateProceeding)
	c.startSession(from)
}

// newPC makes the peer connection with the phone's ICE configuration.
func (c *Call) newPC() (*webrtc.PeerConnection, error) {
	cfg := webrtc.Configuration{
		ICEServers:    c.p.iceServers(),
		BundlePolicy:  webrtc.BundlePolicyMaxBundle,
		RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire,
	}
	if c.p.cfg.RelayOnly {
		cfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := c.p.api.NewPeerConnection(cfg)
	if err != nil {
		return nil, err
	}
	pc.OnICECandidate(func(ic *webrtc.ICECandidate) {
		if ic == nil {
			return
		}
		cand, mid := CandidateFromICE(*ic), ic.SDPMid
		c.post(func() { c.localCandidate(mid, cand) })
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		c.post(func() { c.pcState(s) })
	})
	onTrack := c.opts.OnTrack
	pc.OnTrack(func(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
		if onTrack != nil {
			onTrack(t, r)
			return
		}
		buf := make([]byte, 1500)
		for {
			if _, _, err := t.Read(buf); err != nil {
				return
			}
		}
	})
	c.pc = pc
	c.mu.Lock()
	c.pcRef = pc
	c.mu.Unlock()
	c.connTimer = time.AfterFunc(c.p.cfg.ConnectTimeout+c.p.cfg.SetupTimeout, func() {
		c.post(func() {
			select {
			case <-c.connected:
			default:
				c.end(Reason{Condition: ReasonConnectivityError, Text: "the media connection did not come up"}, true)
			}
		})
	})
	return pc, nil
}

// addTracks adds the option's tracks and reads their RTCP (interceptors
// such as NACK need it read).
func (c *Call) addTracks(pc *webrtc.PeerConnection) error {
	for _, t := range c.opts.Tracks {
		s, err := pc.AddTrack(t)
		if err != nil {
			return err
		}
		go func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := s.Read(buf); err != nil {
					return
				}
			}
		}()
	}
	return nil
}

// startSession (outgoing) sends the session-initiate with our offer.
func (c *Call) startSession(to string) {
	if c.ended {
		return
	}
	c.mu.Lock()
	c.peer = to
	c.mu.Unlock()
	c.startSetupTimer()
	pc, err := c.newPC()
	if err != nil {
		c.fail(ReasonFailedApplication, err)
		return
	}
	if err := c.addTracks(pc); err != nil {
		c.fail(ReasonFailedApplication, err)
		return
	}
	have := map[string]bool{}
	for _, t := range c.opts.Tracks {
		have[t.Kind().String()] = true
	}
	for _, m := range c.media {
		if have[m] {
			continue
		}
		kind := webrtc.RTPCodecTypeAudio
		if m == "video" {
			kind = webrtc.RTPCodecTypeVideo
		}
		if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			c.fail(ReasonFailedApplication, err)
			return
		}
	}
	if c.opts.Prepare != nil {
		if err := c.opts.Prepare(c, pc); err != nil {
			c.fail(ReasonFailedApplication, err)
			return
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		c.fail(ReasonFailedApplication, err)
		return
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		c.fail(ReasonFailedApplication, err)
		return
	}
	contents, groups, err := SDPToJingle(offer.SDP, Initiator, nil)
	if err != nil {
		c.fail(ReasonFailedApplication, err)
		return
	}
	for i := range contents {
		contents[i].Transport.Candidates = nil // trickled
		c.creators[contents[i].Name] = Initiator
	}
	c.local = contents
	j := Jingle{Action: "session-initiate", SID: c.id, Initiator: c.p.jid, Contents: contents, Groups: groups}
	c.initiated = true
	c.sendIQ(to, marshal(j), func(st *wire.Stanza) {
		c.end(Reason{Condition: ReasonFailedApplication, Text: "session-initiate refused"}, false)
	})
	c.setState(StatePending)
	c.jingleSent = true
	c.flushLocal()
}

// onInitiate (incoming) takes the caller's offer.
func (c *Call) onInitiate(j *Jingle) {
	if c.initiated || c.ended {
		return
	}
	c.initiated = true
	c.offer = j
	for _, ct := range j.Contents {
		cr := Role(ct.Creator)
		if cr != Initiator && cr != Responder {
			cr = Initiator
		}
		c.creators[ct.Name] = cr
	}
	c.mu.Lock()
	c.remote = j.Contents
	c.mu.Unlock()
	if c.userOK {
		c.answer()
	} else if c.state() < StatePending && c.proceeded {
		c.setState(StatePending)
	}
}

// answer (incoming) applies the offer and sends the session-accept.
func (c *Call) answer() {
	if c.ended || c.pc != nil {
		return
	}
	pc, err := c.newPC()
	if err != nil {
		c.fail(ReasonFailedApplication, err)
		return
	}
	text, err := JingleToSDP(c.offer.Contents, c.offer.Groups, Initiator)
	if err != nil {
		c.fail(ReasonFailedApplication, err)
		return
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: text}); err != nil {
		c.fail(ReasonFailedApplication, err)
		return
	}
	c.remoteSet = true
	if c.opts.Prepare != nil {
		if err := c.opts.Prepare(c, pc); err != nil {
			c.fail(ReasonFailedApplication, err)
			return
		}
	}
	if err := c.addTracks(pc); err != nil {
		c.fail(ReasonFailedApplication, err)
		return
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		c.fail(ReasonFailedApplication, err)
		return
	}
	if err := pc.SetLocalDescription(ans); err != nil {
		c.fail(ReasonFailedApplication, err)
		return
	}
	contents, groups, err := SDPToJingle(ans.SDP, Responder, func(name string) Role { return c.creators[name] })
	if err != nil {
		c.fail(ReasonFailedApplication, err)
		return
	}
	for i := range contents {
		contents[i].Transport.Candidates = nil
	}
	c.local = contents
	j := Jingle{Action: "session-accept", SID: c.id, Initiator: c.peerFull(), Responder: c.p.jid, Contents: contents, Groups: groups}
	c.sendIQ(c.peerFull(), marshal(j), func(st *wire.Stanza) {
		c.end(Reason{Condition: ReasonFailedApplication, Text: "session-accept refused"}, false)
	})
	c.jingleSent = true
	c.flushLocal()
	c.applyRemoteCands()
	c.setState(StateActive)
	close(c.accepted)
}

// onAccept (outgoing) applies the callee's answer.
func (c *Call) onAccept(j *Jingle) {
	if c.incoming || c.ended || c.remoteSet || c.pc == nil {
		return
	}
	text, err := JingleToSDP(j.Contents, j.Groups, Responder)
	if err != nil {
		c.fail(ReasonFailedApplication, err)
		return
	}
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: text}); err != nil {
		c.fail(ReasonFailedApplication, err)
		return
	}
	c.remoteSet = true
	c.mu.Lock()
	c.remote = j.Contents
	c.mu.Unlock()
	c.applyRemoteCands()
	c.setState(StateActive)
	close(c.accepted)
}

func (c *Call) onTransportInfo(j *Jingle) {
	if c.ended {
		return
	}
	for _, ct := range j.Contents {
		if ct.Transport == nil {
			continue
		}
		for _, cand := range ct.Transport.Candidates {
			if len(c.remoteCands) >= maxBufferedCandidates {
				break
			}
			c.remoteCands = append(c.remoteCands, remoteCand{ct.Name, cand})
		}
	}
	if c.remoteSet {
		c.applyRemoteCands()
	}
}

// applyRemoteCands adds the buffered remote candidates (pion refuses them
// before the remote description is set).
func (c *Call) applyRemoteCands() {
	for _, rc := range c.remoteCands {
		mid := rc.mid
		if err := c.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: rc.c.SDP(), SDPMid: &mid}); err != nil {
			c.p.log.Debug("jinglecall: remote candidate refused", "sid", c.id, "candidate", rc.c.SDP(), "err", err)
		}
	}
	c.remoteCands = nil
}

// localCandidate trickles a gathered candidate (transport-info), or keeps
// it until our session-initiate/accept is out.
func (c *Call) localCandidate(mid string, cand Candidate) {
	if c.ended {
		return
	}
	c.localCands = append(c.localCands, cand)
	_ = mid // with BUNDLE every candidate belongs to the bundle's first content
	if c.jingleSent {
		c.flushLocal()
	}
}

func (c *Call) flushLocal() {
	if len(c.localCands) == 0 || len(c.local) == 0 {
		return
	}
	first := c.local[0]
	t := &Transport{Ufrag: first.Transport.Ufrag, Pwd: first.Transport.Pwd, Candidates: c.localCands}
	j := Jingle{Action: "transport-info", SID: c.id, Contents: []Content{{
		Creator: string(c.creators[first.Name]), Name: first.Name, Transport: t,
	}}}
	if j.Contents[0].Creator == "" {
		j.Contents[0].Creator = string(Initiator)
	}
	c.localCands = nil
	c.sendIQ(c.peerFull(), marshal(j), nil)
}

func (c *Call) pcState(s webrtc.PeerConnectionState) {
	if c.ended {
		return
	}
	c.p.log.Debug("jinglecall: connection state", "sid", c.id, "state", s.String())
	switch s {
	case webrtc.PeerConnectionStateConnected:
		if c.discTimer != nil {
			c.discTimer.Stop()
			c.discTimer = nil
		}
		select {
		case <-c.connected:
		default:
			close(c.connected)
		}
		c.setState(StateConnected)
	case webrtc.PeerConnectionStateDisconnected:
		c.lostMedia(c.p.cfg.DisconnectTimeout, "the media connection was lost")
	case webrtc.PeerConnectionStateFailed:
		c.end(Reason{Condition: ReasonConnectivityError, Text: "the media connection failed"}, true)
	case webrtc.PeerConnectionStateClosed:
		// Not closed by us (end marks the call first): the peer closed
		// DTLS. Its session-terminate usually follows over XMPP (slower
		// than UDP); if none comes, the call ends on its own.
		d := c.p.cfg.DisconnectTimeout
		if d > closeGrace {
			d = closeGrace
		}
		c.lostMedia(d, "the peer closed the media connection")
	}
}

// closeGrace is how long a call whose peer closed the media connection
// waits for the peer's session-terminate.
const closeGrace = 3 * time.Second

// lostMedia ends the call after d unless the connection comes back.
func (c *Call) lostMedia(d time.Duration, why string) {
	if c.discTimer != nil {
		return
	}
	c.discTimer = time.AfterFunc(d, func() {
		c.post(func() {
			if c.discTimer != nil {
				c.end(Reason{Condition: ReasonConnectivityError, Text: why}, true)
			}
		})
	})
}

func marshal(j Jingle) string {
	b, err := xml.Marshal(j)
	if err != nil {
		panic("jinglecall: marshal: " + err.Error()) // only fixed types
	}
	return string(b)
}
