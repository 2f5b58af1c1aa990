package jinglecall_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/jingle/jinglecall"
	"github.com/xmppd/xmppd/wire"
)

// A phone on a client connection: log in, ask the server for STUN/TURN
// (XEP-0215), call a contact with an Opus track, talk, hang up.
func Example() {
	ctx := context.Background()
	c, err := client.Dial(ctx, client.Config{
		Addr: "example.org:5222", Domain: "example.org", Username: "alice", Password: "secret",
		Resource: "laptop", TLS: &tls.Config{ServerName: "example.org"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	_ = c.Send("<presence/>")

	phone := jinglecall.New(c, jinglecall.Config{JID: c.JID, RelayOnly: true})
	go phone.Run(c.Incoming(), func(st *wire.Stanza) {
		// everything that is not a call: messages, presence, your iqs …
	})
	if _, err := phone.DiscoverICEServers(ctx, "example.org", nil); err != nil {
		log.Fatal(err)
	}

	mic, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "alice")
	ring, cancel := context.WithTimeout(ctx, time.Minute) // how long it may ring
	defer cancel()
	call, err := phone.Call(ring, "bob@example.org", jinglecall.CallOptions{
		Tracks: []webrtc.TrackLocal{mic},
		OnTrack: func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			for {
				pkt, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				_ = pkt // decode and play
			}
		},
	})
	if err != nil {
		log.Fatal(err) // *jinglecall.EndError: busy, decline …, or the context's error
	}
	<-call.Connected()
	for i := 0; i < 50; i++ {
		_ = mic.WriteSample(media.Sample{Data: make([]byte, 160), Duration: 20 * time.Millisecond}) // encoded Opus frames
		time.Sleep(20 * time.Millisecond)
	}
	call.Hangup()
}

// Answering: every incoming call reaches OnIncoming while it rings.
func ExampleConfig_onIncoming() {
	var conn jinglecall.Conn // e.g. a *client.Client
	camera, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "bob")
	busy := false
	phone := jinglecall.New(conn, jinglecall.Config{
		JID: "bob@example.org/phone",
		OnIncoming: func(call *jinglecall.Call) {
			if busy {
				call.Reject(jinglecall.ReasonBusy)
				return
			}
			fmt.Println(call.Peer(), "calls with", call.Media())
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := call.Accept(ctx, jinglecall.CallOptions{Tracks: []webrtc.TrackLocal{camera}}); err != nil {
				return
			}
			<-call.Done()
			fmt.Println("ended:", call.Reason().Condition)
		},
	})
	defer phone.Close()
}

// XEP-0215 entries become pion ICE servers: STUN without a query, TURN with
// its transport, TURN without credentials and TLS over UDP dropped.
func ExampleICEServers() {
	svcs := []jinglecall.Service{
		{Type: "stun", Host: "turn.example.org", Port: 3478, Transport: "udp"},
		{Type: "turn", Host: "turn.example.org", Port: 3478, Transport: "udp", Username: "1795316309:alice@example.org", Password: "RTdeLgFLEkC91BGNuu6rN1jWc1I="},
		{Type: "turns", Host: "turn.example.org", Port: 5349, Transport: "tcp", Username: "1795316309:alice@example.org", Password: "RTdeLgFLEkC91BGNuu6rN1jWc1I="},
		{Type: "turn", Host: "turn.example.org", Port: 3478, Transport: "tcp"},
	}
	for _, s := range jinglecall.ICEServers(svcs, nil) {
		fmt.Println(s.URLs[0], s.Username != "")
	}
	// Output:
	// stun:turn.example.org:3478 false
	// turn:turn.example.org:3478?transport=udp true
	// turns:turn.example.org:5349?transport=tcp true
}

// The SDP ↔ Jingle mapping: a content per m-line, named after its a=mid.
func ExampleSDPToJingle() {
	const offer = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" +
		"a=group:BUNDLE a0\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n" +
		"a=mid:a0\r\na=ice-ufrag:U\r\na=ice-pwd:PPPPPPPPPPPPPPPPPPPPPP\r\n" +
		"a=fingerprint:sha-256 AB:CD\r\na=setup:actpass\r\na=sendonly\r\na=rtcp-mux\r\n" +
		"a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtcp-fb:111 transport-cc\r\n"
	contents, groups, err := jinglecall.SDPToJingle(offer, jinglecall.Initiator, nil)
	if err != nil {
		log.Fatal(err)
	}
	c := contents[0]
	pt := c.Description.PayloadTypes[0]
	fmt.Println(c.Name, c.Creator, c.Senders, c.Description.Media, groups[0].Semantics)
	fmt.Println(pt.ID, pt.Name, pt.ClockRate, pt.Channels, pt.Parameters, pt.Feedback)
	fmt.Println(c.Transport.Ufrag, c.Transport.Fingerprints[0].Hash, c.Transport.Fingerprints[0].Setup)

	// The same content read by the responder's side.
	sdp, _ := jinglecall.JingleToSDP(contents, groups, jinglecall.Initiator)
	fmt.Println(len(sdp) > 0)
	// Output:
	// a0 initiator initiator audio BUNDLE
	// 111 opus 48000 2 [{minptime 10} {useinbandfec 1}] [{transport-cc }]
	// U sha-256 actpass
	// true
}
