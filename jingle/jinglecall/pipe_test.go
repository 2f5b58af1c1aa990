package jinglecall

import (
	"context"
	"sync"
	"testing"
	"time"

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
	se.SetICEMulticastDNSMode(0x01) // ice.MulticastDNSModeDisabled
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
