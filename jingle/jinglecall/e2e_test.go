package jinglecall_test

import (
	"context"
	"testing"
	"time"

	"github.com/xmppd/xmppd/jingle/jinglecall"
	"github.com/xmppd/xmppd/jingle/jinglecall/jingletest"
	"github.com/xmppd/xmppd/storage"
)

// Two Go WebRTC clients log in to a real server, fetch TURN credentials by
// XEP-0215, use relay-only ICE, ring with JMI, set up Jingle audio+video and
// exchange RTP for 3 s through the embedded TURN server; the hang-up leaves
// a call record with reason success.
func TestCallThroughTURN(t *testing.T) {
	env, tm := jingletest.StartServer(t, nil)

	aliceSrc, bobSrc := jingletest.NewSource(t, "alice"), jingletest.NewSource(t, "bob")
	aliceSink, bobSink := jingletest.NewSink(), jingletest.NewSink()
	rang := make(chan *jinglecall.Call, 1)
	bob, _ := jingletest.Login(t, env, "bob", "phone", jinglecall.Config{
		OnIncoming: func(c *jinglecall.Call) {
			rang <- c
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := c.Accept(ctx, jinglecall.CallOptions{Tracks: bobSrc.Tracks(), OnTrack: bobSink.OnTrack}); err != nil {
				t.Errorf("bob accepts: %v", err)
			}
		},
	})
	alice, _ := jingletest.Login(t, env, "alice", "laptop", jinglecall.Config{})

	before := tm.Stats()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	call, err := alice.Call(ctx, "bob@"+env.Domain, jinglecall.CallOptions{Tracks: aliceSrc.Tracks(), OnTrack: aliceSink.OnTrack})
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	var bc *jinglecall.Call
	select {
	case bc = <-rang:
	case <-time.After(10 * time.Second):
		t.Fatal("bob's phone did not ring")
	}
	if call.Peer() != bob.JID() || bc.Peer() != alice.JID() || bc.ID() != call.ID() {
		t.Fatalf("peers %s / %s, ids %s / %s", call.Peer(), bc.Peer(), call.ID(), bc.ID())
	}
	if m := bc.Media(); len(m) != 2 || m[0] != "audio" || m[1] != "video" {
		t.Errorf("proposed media %v", m)
	}
	jingletest.WaitConnected(t, call, 30*time.Second)
	jingletest.WaitConnected(t, bc, 30*time.Second)
	for _, c := range []*jinglecall.Call{call, bc} {
		if l, r := jingletest.SelectedPair(c); l != "relay" || r != "relay" {
			t.Errorf("selected candidate pair %s → %s, want relay → relay", l, r)
		}
	}

	start := tm.Stats()
	done := make(chan struct{})
	go func() { bobSrc.Send(3 * time.Second); close(done) }()
	aliceSrc.Send(3 * time.Second)
	<-done
	// Let what is in flight arrive (generous on a loaded machine).
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if aliceSink.Received("video").Packets >= bobSrc.Sent("video").Packets &&
			bobSink.Received("video").Packets >= aliceSrc.Sent("video").Packets &&
			aliceSink.Received("audio").Packets >= bobSrc.Sent("audio").Packets &&
			bobSink.Received("audio").Packets >= aliceSrc.Sent("audio").Packets {
			break
		}
	}
	after := tm.Stats()

	var sentBytes, sentPackets int
	for _, x := range []struct {
		name string
		src  *jingletest.Source
		sink *jingletest.Sink
	}{{"alice → bob", aliceSrc, bobSink}, {"bob → alice", bobSrc, aliceSink}} {
		for _, kind := range []string{"audio", "video"} {
			s, r := x.src.Sent(kind), x.sink.Received(kind)
			t.Logf("%s %s: sent %d packets (%d bytes), received %d (%d bytes)", x.name, kind, s.Packets, s.Bytes, r.Packets, r.Bytes)
			sentBytes += s.Bytes
			sentPackets += s.Packets
			if s.Packets == 0 || r.Packets < s.Packets/2 {
				t.Errorf("%s %s: %d of %d packets arrived", x.name, kind, r.Packets, s.Packets)
			}
			for _, p := range x.sink.Payloads(kind) {
				if !x.src.SentPayload(p) {
					t.Errorf("%s %s: a payload nobody sent: %.24q", x.name, kind, p)
					break
				}
			}
		}
	}
	if got := aliceSink.Codec("video"); got != "video/VP8" {
		t.Errorf("alice's video codec %q", got)
	}
	if got := bobSink.Codec("audio"); got != "audio/opus" {
		t.Errorf("bob's audio codec %q", got)
	}
	toPeers := after.BytesToPeers - start.BytesToPeers
	fromPeers := after.BytesFromPeers - start.BytesFromPeers
	t.Logf("TURN: %d allocations for the call; relayed %d bytes client→peer and %d bytes peer→client (%d packets) while %d payload bytes (%d packets) were sent",
		after.AllocationsTotal-before.AllocationsTotal, toPeers, fromPeers, after.PacketsToPeers-start.PacketsToPeers, sentBytes, sentPackets)
	// Every media packet crosses the relay twice (into one allocation, out
	// of the other), with SRTP headers and tags on top of the payload.
	if toPeers < uint64(sentBytes) || fromPeers < uint64(sentBytes) {
		t.Errorf("TURN relayed %d / %d bytes, less than the %d payload bytes sent", toPeers, fromPeers, sentBytes)
	}
	if after.AllocationsTotal-before.AllocationsTotal < 2 {
		t.Errorf("allocations: %d", after.AllocationsTotal-before.AllocationsTotal)
	}

	call.Hangup()
	select {
	case <-bc.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("bob's side did not end")
	}
	if r := bc.Reason(); r.Condition != jinglecall.ReasonSuccess {
		t.Errorf("bob's end reason %+v", r)
	}
	rec := waitRecord(t, env.Srv.Store, call.ID())
	if rec.EndReason != storage.CallSuccess || rec.Answer.IsZero() || rec.Caller != alice.JID() || rec.Callee != bob.JID() {
		t.Errorf("call record %+v", rec)
	}
	if len(rec.Media) != 2 {
		t.Errorf("record media %v", rec.Media)
	}
}

func waitRecord(t *testing.T, st storage.Store, id string) storage.CallRecord {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		recs, err := st.Calls().List(context.Background(), "", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.ID == id && !r.End.IsZero() {
				return r
			}
		}
	}
	t.Fatalf("no finished record for call %s", id)
	return storage.CallRecord{}
}
