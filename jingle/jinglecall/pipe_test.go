package jinglecall

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/xmppd/xmppd/wire"
)

// switchboard delivers stanzas between phones in memory, in order, as a
// server would (from stamped; a bare JID reaches every phone of the account).
type switchboard struct {
	mu     sync.Mutex
	phones map[string]*Phone // full JID
	queue  chan func()
	log    func(string)
}

func newSwitchboard(t *testing.T) *switchboard {
	s := &switchboard{phones: map[string]*Phone{}, queue: make(chan func(), 1024)}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case f := <-s.queue:
				f()
			case <-done:
				return
			}
		}
	}()
	t.Cleanup(func() { close(done) })
	return s
}

type pipeConn struct {
	s   *switchboard
	jid string
}

func (c pipeConn) Send(raw string) error {
	st, err := wire.ParseElement([]byte(raw), wire.NSClient)
	if err != nil {
		return err
	}
	to := st.To
	st.SetAddrs(c.jid, to)
	if c.s.log != nil {
		c.s.log(c.jid + " → " + string(st.Raw))
	}
	c.s.queue <- func() {
		c.s.mu.Lock()
		var dst []*Phone
		for j, p := range c.s.phones {
			if j == to || bareJID(j) == to {
				dst = append(dst, p)
			}
		}
		c.s.mu.Unlock()
		for _, p := range dst {
			p.Handle(st)
		}
	}
	return nil
}

func loopbackAPI() *webrtc.API {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return webrtc.NewAPI(webrtc.WithSettingEngine(se))
}

func (s *switchboard) phone(jid string, cfg Config) *Phone {
	cfg.JID = jid
	cfg.API = loopbackAPI()
	p := New(pipeConn{s, jid}, cfg)
	s.mu.Lock()
	s.phones[jid] = p
	s.mu.Unlock()
	return p
}

// A call between two phones over the in-memory switchboard: JMI, Jingle,
// ICE on loopback host candidates, RTP both ways, hang-up.
func TestPipeCall(t *testing.T) {
	s := newSwitchboard(t)
	if testing.Verbose() {
		s.log = func(l string) { t.Log(l) }
	}
	got := map[string]chan *rtp.Packet{"alice": make(chan *rtp.Packet, 100), "bob": make(chan *rtp.Packet, 100)}
	onTrack := func(who string) func(*webrtc.TrackRemote, *webrtc.RTPReceiver) {
		return func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			for {
				p, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				select {
				case got[who] <- p:
				default:
				}
			}
		}
	}
	bobTrack, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "bob")
	incoming := make(chan *Call, 1)
	bob := s.phone("bob@x/phone", Config{OnIncoming: func(c *Call) {
		incoming <- c
		if err := c.Accept(context.Background(), CallOptions{Tracks: []webrtc.TrackLocal{bobTrack}, OnTrack: onTrack("bob")}); err != nil {
			t.Errorf("accept: %v", err)
		}
	}})
	defer bob.Close()
	alice := s.phone("alice@x/pc", Config{})
	defer alice.Close()

	aliceTrack, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "alice")
	var states []State
	var smu sync.Mutex
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call, err := alice.Call(ctx, "bob@x", CallOptions{
		Tracks: []webrtc.TrackLocal{aliceTrack}, Media: []string{"video"}, OnTrack: onTrack("alice"),
		OnState: func(s State) { smu.Lock(); states = append(states, s); smu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	var bc *Call
	select {
	case bc = <-incoming:
	case <-time.After(5 * time.Second):
		t.Fatal("bob's phone did not ring")
	}
	if bc.ID() != call.ID() || bc.Peer() != "alice@x/pc" || call.Peer() != "bob@x/phone" {
		t.Fatalf("ids %s/%s peers %s/%s", bc.ID(), call.ID(), bc.Peer(), call.Peer())
	}
	for _, c := range []*Call{call, bc} {
		select {
		case <-c.Connected():
		case <-time.After(20 * time.Second):
			t.Fatalf("not connected: %v", c.State())
		}
	}
	stop := make(chan struct{})
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: uint32(i * 960)}, Payload: []byte{1, 2, 3, byte(i)}}
			_ = aliceTrack.WriteRTP(pkt)
			_ = bobTrack.WriteRTP(pkt)
		}
	}()
	defer close(stop)
	for _, who := range []string{"alice", "bob"} {
		select {
		case <-got[who]:
		case <-time.After(15 * time.Second):
			t.Fatalf("%s received no RTP", who)
		}
	}
	call.Hangup()
	select {
	case <-bc.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("bob's call did not end")
	}
	if r := bc.Reason(); r.Condition != "success" {
		t.Errorf("bob's reason %+v", r)
	}
	smu.Lock()
	defer smu.Unlock()
	if len(states) < 5 || states[0] != StateProposing || states[len(states)-1] != StateEnded {
		t.Errorf("states %v", states)
	}
}

// freezable drops every packet once frozen: a peer whose network went away
// without a word.
type freezable struct {
	net.PacketConn
	frozen atomic.Bool
}

func (f *freezable) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, a, err := f.PacketConn.ReadFrom(b)
		if err != nil || !f.frozen.Load() {
			return n, a, err
		}
	}
}

func (f *freezable) WriteTo(b []byte, a net.Addr) (int, error) {
	if f.frozen.Load() {
		return len(b), nil
	}
	return f.PacketConn.WriteTo(b, a)
}

// A peer that goes silent (no session-terminate, no DTLS close, no ICE
// answers) is hung up after a bounded time in ICE disconnected, with
// reason connectivity-error, and told so.
func TestSilentPeerEndsCall(t *testing.T) {
	s := newSwitchboard(t)
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fz := &freezable{PacketConn: udp}
	mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: fz})
	defer mux.Close()
	var se webrtc.SettingEngine
	se.SetICEUDPMux(mux)
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	incoming := make(chan *Call, 1)
	bob := s.phone("bob@x/phone", Config{OnIncoming: func(c *Call) {
		incoming <- c
		_ = c.Accept(context.Background(), CallOptions{Media: []string{"audio"}})
	}})
	bob.api = webrtc.NewAPI(webrtc.WithSettingEngine(se))
	defer bob.Close()

	var ase webrtc.SettingEngine
	ase.SetIncludeLoopbackCandidate(true)
	ase.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	ase.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	ase.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// ICE calls a silent path disconnected after 1 s, failed only after 60 s:
	// the phone's own bound (DisconnectTimeout) must end the call.
	ase.SetICETimeouts(time.Second, time.Minute, 200*time.Millisecond)
	alice := s.phone("alice@x/pc", Config{DisconnectTimeout: 2 * time.Second})
	alice.api = webrtc.NewAPI(webrtc.WithSettingEngine(ase))
	defer alice.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call, err := alice.Call(ctx, "bob@x", CallOptions{Media: []string{"audio"}})
	if err != nil {
		t.Fatal(err)
	}
	bc := <-incoming
	for _, c := range []*Call{call, bc} {
		select {
		case <-c.Connected():
		case <-time.After(20 * time.Second):
			t.Fatalf("not connected: %v", c.State())
		}
	}
	fz.frozen.Store(true)
	start := time.Now()
	select {
	case <-call.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("alice's call still %v 20 s after bob went silent", call.State())
	}
	took := time.Since(start)
	if r := call.Reason(); r.Condition != ReasonConnectivityError {
		t.Errorf("alice's reason %+v", r)
	}
	select {
	case <-bc.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("bob was not told")
	}
	if err := bc.Err(); err == nil || !err.(*EndError).Remote || bc.Reason().Condition != ReasonConnectivityError {
		t.Errorf("bob's end: %v", err)
	}
	t.Logf("call ended %v after the peer went silent", took)
}

// Decline, a caller that gives up while it rings, and a call without JMI.
func TestPipeOutcomes(t *testing.T) {
	s := newSwitchboard(t)
	var mode atomic.Value
	incoming := make(chan *Call, 4)
	bob := s.phone("bob@x/phone", Config{OnIncoming: func(c *Call) {
		incoming <- c
		switch mode.Load() {
		case "busy":
			c.Reject(ReasonBusy)
		case "accept":
			_ = c.Accept(context.Background(), CallOptions{Media: []string{"audio"}})
		}
	}})
	defer bob.Close()
	alice := s.phone("alice@x/pc", Config{})
	defer alice.Close()

	mode.Store("busy")
	_, err := alice.Call(context.Background(), "bob@x", CallOptions{Media: []string{"audio"}})
	var ee *EndError
	if !errors.As(err, &ee) || ee.Reason.Condition != ReasonBusy || !ee.Remote {
		t.Fatalf("busy: %v", err)
	}
	<-incoming

	mode.Store("ring")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err = alice.Call(ctx, "bob@x", CallOptions{Media: []string{"audio"}})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unanswered call: %v", err)
	}
	bc := <-incoming
	select {
	case <-bc.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("bob's phone still rings after the retract")
	}
	if r := bc.Reason(); r.Condition != ReasonCancel {
		t.Errorf("retract reason %+v", r)
	}

	mode.Store("accept")
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := alice.Call(ctx, "bob@x", CallOptions{Media: []string{"audio"}, NoJMI: true}); err == nil {
		t.Fatal("a call without JMI to a bare JID was placed")
	}
	c, err := alice.Call(ctx, "bob@x/phone", CallOptions{Media: []string{"audio"}, NoJMI: true})
	if err != nil {
		t.Fatalf("call without JMI: %v", err)
	}
	bc = <-incoming
	if bc.ID() != c.ID() {
		t.Fatalf("ids %s %s", bc.ID(), c.ID())
	}
	bc.Hangup()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("alice's call did not end")
	}
	if r := c.Reason(); r.Condition != ReasonSuccess || len(bob.Calls()) != 0 || len(alice.Calls()) != 0 {
		t.Errorf("end %+v, calls left %d/%d", r, len(bob.Calls()), len(alice.Calls()))
	}
}
