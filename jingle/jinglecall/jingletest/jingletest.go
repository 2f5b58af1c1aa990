// Package jingletest helps test calls end to end: a real xmppd with the
// embedded TURN server on loopback, logged-in phones (jinglecall.Phone on a
// client.Client), a synthetic media source (Opus-sized audio and VP8-sized
// video RTP packets whose payloads say who sent them) and a sink that
// counts and keeps what arrives.
package jingletest

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/jingle/jinglecall"
	"github.com/xmppd/xmppd/jingle/turn"
	"github.com/xmppd/xmppd/server/servertest"
)

// StartServer runs xmppd with the embedded TURN server on 127.0.0.1
// (UDP/TCP, no TURNS) relaying between loopback addresses, then edit.
func StartServer(t *testing.T, edit func(*conf.Config)) (*servertest.Env, *turn.Module) {
	t.Helper()
	env := servertest.Start(t, func(cfg *conf.Config) {
		tc := cfg.Module("turn").(*turn.Config)
		tc.SetEnabled(true)
		tc.Listen, tc.TLSListen = "127.0.0.1:0", ""
		tc.AllowPeers = conf.PrefixList{netip.MustParsePrefix("127.0.0.0/8")}
		if edit != nil {
			edit(cfg)
		}
	})
	m := turn.Lookup(env.Srv.Router)
	if m == nil {
		t.Fatal("the turn module is not registered")
	}
	t.Cleanup(func() { _ = m.Close() })
	return env, m
}

// UDPTURN keeps only TURN over UDP (one relay allocation per call).
func UDPTURN(s jinglecall.Service) bool { return s.Type == "turn" && s.Transport == "udp" }

// Login logs local in (account created with password), sends initial
// presence, starts a phone on the connection, fetches the server's
// STUN/TURN by XEP-0215 (TURN over UDP only) and makes ICE relay-only.
func Login(t *testing.T, env *servertest.Env, local, resource string, cfg jinglecall.Config) (*jinglecall.Phone, *client.Client) {
	t.Helper()
	env.AddUser(local, "secret-pw")
	c := env.Login(local, "secret-pw", resource)
	if err := c.Send("<presence/>"); err != nil {
		t.Fatal(err)
	}
	cfg.JID = c.JID
	cfg.RelayOnly = true
	p := jinglecall.New(c, cfg)
	go p.Run(c.Incoming(), nil)
	t.Cleanup(p.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ice, err := p.DiscoverICEServers(ctx, env.Domain, UDPTURN)
	if err != nil {
		t.Fatalf("%s: XEP-0215: %v", local, err)
	}
	if len(ice) != 1 {
		t.Fatalf("%s: ICE servers %+v", local, ice)
	}
	return p, c
}

// Sizes and rates of the synthetic media.
const (
	AudioPayload = 160  // bytes per audio packet (an Opus frame at ~64 kbit/s)
	AudioRate    = 50   // packets per second (20 ms frames)
	VideoPayload = 1000 // bytes per video packet
	VideoRate    = 30   // packets per second
)

// Source sends synthetic RTP on an Opus audio track and a VP8 video track.
// Each payload starts with "TAG KIND SEQ" so that a receiver can tell whose
// packet it got.
type Source struct {
	Tag          string
	Audio, Video *webrtc.TrackLocalStaticRTP

	mu    sync.Mutex
	sent  map[string]*Count
	paylo map[string]bool
}

// Count is packets and payload bytes.
type Count struct{ Packets, Bytes int }

// NewSource makes the tracks.
func NewSource(t *testing.T, tag string) *Source {
	t.Helper()
	a, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", tag)
	if err != nil {
		t.Fatal(err)
	}
	v, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", tag)
	if err != nil {
		t.Fatal(err)
	}
	return &Source{Tag: tag, Audio: a, Video: v, sent: map[string]*Count{"audio": {}, "video": {}}, paylo: map[string]bool{}}
}

// Tracks returns the audio and video tracks.
func (s *Source) Tracks() []webrtc.TrackLocal { return []webrtc.TrackLocal{s.Audio, s.Video} }

// Send writes audio and video packets at their rates for d.
func (s *Source) Send(d time.Duration) {
	var wg sync.WaitGroup
	run := func(kind string, tr *webrtc.TrackLocalStaticRTP, size, rate int, tsStep uint32) {
		defer wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		stop := time.After(d)
		for seq := 0; ; seq++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			payload := make([]byte, size)
			copy(payload, fmt.Sprintf("%s %s %06d ", s.Tag, kind, seq))
			for i := 24; i < size; i++ {
				payload[i] = byte(seq + i)
			}
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Marker: kind == "video", SequenceNumber: uint16(seq), Timestamp: uint32(seq) * tsStep}, Payload: payload}
			if err := tr.WriteRTP(pkt); err != nil {
				continue
			}
			s.mu.Lock()
			s.sent[kind].Packets++
			s.sent[kind].Bytes += size
			s.paylo[string(payload)] = true
			s.mu.Unlock()
		}
	}
	wg.Add(2)
	go run("audio", s.Audio, AudioPayload, AudioRate, 960)
	go run("video", s.Video, VideoPayload, VideoRate, 3000)
	wg.Wait()
}

// Sent returns what was written on the track of kind.
func (s *Source) Sent(kind string) Count {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.sent[kind]
}

// SentPayload reports whether p is a payload this source sent.
func (s *Source) SentPayload(p []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paylo[string(p)]
}

// Sink records the remote tracks of a call: use OnTrack as
// CallOptions.OnTrack.
type Sink struct {
	mu       sync.Mutex
	got      map[string]*Count
	payloads map[string][][]byte
	codecs   map[string]string
}

// NewSink returns an empty sink.
func NewSink() *Sink {
	return &Sink{got: map[string]*Count{"audio": {}, "video": {}}, payloads: map[string][][]byte{}, codecs: map[string]string{}}
}

// OnTrack reads a remote track until it ends.
func (k *Sink) OnTrack(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	kind := tr.Kind().String()
	k.mu.Lock()
	k.codecs[kind] = tr.Codec().MimeType
	k.mu.Unlock()
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		k.mu.Lock()
		c := k.got[kind]
		if c == nil {
			c = &Count{}
			k.got[kind] = c
		}
		c.Packets++
		c.Bytes += len(p.Payload)
		k.payloads[kind] = append(k.payloads[kind], append([]byte(nil), p.Payload...))
		k.mu.Unlock()
	}
}

// Received returns what arrived on the remote track of kind.
func (k *Sink) Received(kind string) Count {
	k.mu.Lock()
	defer k.mu.Unlock()
	if c := k.got[kind]; c != nil {
		return *c
	}
	return Count{}
}

// Payloads returns the payloads received on kind.
func (k *Sink) Payloads(kind string) [][]byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([][]byte(nil), k.payloads[kind]...)
}

// Codec returns the MIME type of the remote track of kind ("" if none).
func (k *Sink) Codec(kind string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.codecs[kind]
}

// WaitConnected waits until the call's media connection is up.
func WaitConnected(t *testing.T, c *jinglecall.Call, d time.Duration) {
	t.Helper()
	select {
	case <-c.Connected():
	case <-c.Done():
		t.Fatalf("call %s ended before connecting: %v", c.ID(), c.Err())
	case <-time.After(d):
		t.Fatalf("call %s not connected after %v (state %v)", c.ID(), d, c.State())
	}
}

// SelectedPair returns the types of the local and remote candidates ICE
// chose (e.g. "relay", "relay").
func SelectedPair(c *jinglecall.Call) (local, remote string) {
	pc := c.PeerConnection()
	if pc == nil {
		return "", ""
	}
	for _, tr := range pc.GetTransceivers() {
		s := tr.Sender()
		if s == nil || s.Transport() == nil {
			continue
		}
		pair, err := s.Transport().ICETransport().GetSelectedCandidatePair()
		if err != nil || pair == nil {
			continue
		}
		return pair.Local.Typ.String(), pair.Remote.Typ.String()
	}
	return "", ""
}
