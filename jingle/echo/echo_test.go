package echo_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/jingle/echo"
	"github.com/xmppd/xmppd/jingle/jinglecall"
	"github.com/xmppd/xmppd/jingle/jinglecall/jingletest"
	"github.com/xmppd/xmppd/server"
	"github.com/xmppd/xmppd/wire"
)

func withEcho(edit func(*echo.Config)) func(*conf.Config) {
	return func(cfg *conf.Config) {
		ec := cfg.Module("echo").(*echo.Config)
		ec.SetEnabled(true)
		if edit != nil {
			edit(ec)
		}
	}
}

// A call to the echo service returns the caller's media: every packet that
// comes back carries a payload the caller sent, on the same kind of track
// and codec, through the embedded TURN server (relay on both sides).
func TestEchoReturnsMedia(t *testing.T) {
	env, tm := jingletest.StartServer(t, withEcho(nil))
	em := echo.Lookup(env.Srv.Router)
	if em == nil || em.JID().String() != "echo."+env.Domain {
		t.Fatalf("echo module %v", em)
	}
	alice, _ := jingletest.Login(t, env, "alice", "laptop", jinglecall.Config{})
	src, sink := jingletest.NewSource(t, "alice"), jingletest.NewSink()

	before := tm.Stats()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	call, err := alice.Call(ctx, em.JID().String(), jinglecall.CallOptions{Tracks: src.Tracks(), OnTrack: sink.OnTrack})
	if err != nil {
		t.Fatalf("calling the echo service: %v", err)
	}
	if call.Peer() != em.JID().String()+"/echo" {
		t.Errorf("answered by %s", call.Peer())
	}
	jingletest.WaitConnected(t, call, 30*time.Second)
	if l, r := jingletest.SelectedPair(call); l != "relay" || r != "relay" {
		t.Errorf("selected pair %s → %s, want relay → relay", l, r)
	}
	if em.Active() != 1 {
		t.Errorf("active echo calls: %d", em.Active())
	}
	src.Send(3 * time.Second)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if sink.Received("audio").Packets >= src.Sent("audio").Packets && sink.Received("video").Packets >= src.Sent("video").Packets {
			break
		}
	}
	after := tm.Stats()
	for _, kind := range []string{"audio", "video"} {
		s, r := src.Sent(kind), sink.Received(kind)
		t.Logf("%s: sent %d packets (%d bytes), %d came back (%d bytes)", kind, s.Packets, s.Bytes, r.Packets, r.Bytes)
		if s.Packets == 0 || r.Packets < s.Packets/2 {
			t.Errorf("%s: %d of %d packets came back", kind, r.Packets, s.Packets)
		}
		seen := map[string]bool{}
		for _, p := range sink.Payloads(kind) {
			if !src.SentPayload(p) || !strings.HasPrefix(string(p), "alice "+kind+" ") {
				t.Errorf("%s: a payload alice did not send on %s: %.24q", kind, kind, p)
				break
			}
			seen[string(p)] = true
		}
		if len(seen) < s.Packets/2 {
			t.Errorf("%s: only %d distinct payloads came back", kind, len(seen))
		}
	}
	if a, v := sink.Codec("audio"), sink.Codec("video"); a != "audio/opus" || v != "video/VP8" {
		t.Errorf("codecs back: %s %s", a, v)
	}
	sent := src.Sent("audio").Bytes + src.Sent("video").Bytes
	t.Logf("TURN: %d allocations; relayed %d bytes client→peer, %d bytes peer→client for %d payload bytes sent (each way)",
		after.AllocationsTotal-before.AllocationsTotal, after.BytesToPeers-before.BytesToPeers, after.BytesFromPeers-before.BytesFromPeers, sent)
	// Out and back: each payload byte crosses the relay at least twice in each counter.
	if d := after.BytesToPeers - before.BytesToPeers; d < uint64(sent) {
		t.Errorf("TURN relayed %d bytes to peers, less than the %d payload bytes sent", d, sent)
	}
	if _, pk := em.Stats(); pk == 0 {
		t.Error("the echo service counted no packets")
	}

	call.Hangup()
	deadline := time.Now().Add(10 * time.Second)
	for em.Active() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if em.Active() != 0 {
		t.Errorf("the echo call is still active after the hang-up")
	}
}

// The service can also be a JID on a host (hooks instead of a service
// domain).
func TestEchoOnHostJID(t *testing.T) {
	env, _ := jingletest.StartServer(t, func(cfg *conf.Config) {
		withEcho(func(c *echo.Config) { c.JID = "echo@" + cfg.Hosts[0] })(cfg)
	})
	alice, _ := jingletest.Login(t, env, "alice", "laptop", jinglecall.Config{})
	src, sink := jingletest.NewSource(t, "alice"), jingletest.NewSink()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	call, err := alice.Call(ctx, "echo@"+env.Domain, jinglecall.CallOptions{Tracks: src.Tracks()[:1], OnTrack: sink.OnTrack})
	if err != nil {
		t.Fatal(err)
	}
	defer call.Hangup()
	if call.Peer() != "echo@"+env.Domain+"/echo" {
		t.Errorf("answered by %s", call.Peer())
	}
	jingletest.WaitConnected(t, call, 30*time.Second)
	src.Send(time.Second)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && sink.Received("audio").Packets < src.Sent("audio").Packets; {
		time.Sleep(50 * time.Millisecond)
	}
	if s, r := src.Sent("audio"), sink.Received("audio"); r.Packets < s.Packets/2 {
		t.Errorf("%d of %d audio packets came back", r.Packets, s.Packets)
	}
	for _, p := range sink.Payloads("audio") {
		if !src.SentPayload(p) {
			t.Fatalf("a payload alice did not send: %.24q", p)
		}
	}
	if len(env.Srv.Calls.Active()) != 0 {
		t.Errorf("the calls module tracks the echo call: %v", env.Srv.Calls.Active())
	}
}

// Beyond max-calls the service answers busy.
func TestEchoBusy(t *testing.T) {
	env, _ := jingletest.StartServer(t, withEcho(func(c *echo.Config) { c.MaxCalls = 1 }))
	alice, _ := jingletest.Login(t, env, "alice", "laptop", jinglecall.Config{})
	bob, _ := jingletest.Login(t, env, "bob", "phone", jinglecall.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first, err := alice.Call(ctx, "echo."+env.Domain, jinglecall.CallOptions{Media: []string{"audio"}})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Hangup()
	_, err = bob.Call(ctx, "echo."+env.Domain, jinglecall.CallOptions{Media: []string{"audio"}})
	var ee *jinglecall.EndError
	if !errors.As(err, &ee) || ee.Reason.Condition != jinglecall.ReasonBusy || !ee.Remote {
		t.Fatalf("second call: %v", err)
	}
}

// The service answers disco#info, presence subscriptions and probes (with
// caps) and chat messages, without an account.
func TestEchoPresenceDisco(t *testing.T) {
	env, _ := jingletest.StartServer(t, withEcho(nil))
	env.AddUser("carol", "secret-pw")
	c := env.Login("carol", "secret-pw", "pc")
	echoJID := "echo." + env.Domain
	const timeout = 10 * time.Second

	st, err := c.IQ(timeout, "<iq type='get' id='d1' to='"+echoJID+"/echo'><query xmlns='http://jabber.org/protocol/disco#info' node='n#v'/></iq>", "d1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"type='bot'", "urn:xmpp:jingle:1", "urn:xmpp:jingle:apps:rtp:video", "urn:xmpp:jingle-message:0", "node='n#v'"} {
		if !client.Contains(st, want) {
			t.Errorf("disco#info lacks %s: %s", want, st.Raw)
		}
	}
	st, err = c.IQ(timeout, "<iq type='get' id='i1' to='"+env.Domain+"'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>", "i1")
	if err != nil || !client.Contains(st, "jid='"+echoJID+"'") {
		t.Errorf("the server's disco#items lacks the echo service: %v %v", st, err)
	}
	st, err = c.IQ(timeout, "<iq type='get' id='v1' to='"+echoJID+"'><query xmlns='jabber:iq:version'/></iq>", "v1")
	if err != nil || st.Type != "error" || !client.Contains(st, "service-unavailable") {
		t.Errorf("other iq: %v %v", st, err)
	}

	// A client that requested its roster and is available.
	if _, err := c.IQ(timeout, "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>", "r1"); err != nil {
		t.Fatal(err)
	}
	_ = c.Send("<presence/>")
	_ = c.Send("<presence type='subscribe' to='" + echoJID + "'/>")
	st, err = c.Expect(timeout, func(s *wire.Stanza) bool { return s.Kind == wire.KindPresence && s.Type == "subscribed" })
	if err != nil || st.From != echoJID {
		t.Fatalf("subscribed: %v %v", st, err)
	}
	st, err = c.Expect(timeout, func(s *wire.Stanza) bool {
		return s.Kind == wire.KindPresence && s.Type == "" && s.From == echoJID+"/echo"
	})
	if err != nil || !client.Contains(st, "http://jabber.org/protocol/caps") {
		t.Fatalf("echo's presence: %v %v", st, err)
	}
	// A later login probes the contact, which answers with its presence.
	c2 := env.Login("carol", "secret-pw", "phone")
	if _, err := c2.IQ(timeout, "<iq type='get' id='r2'><query xmlns='jabber:iq:roster'/></iq>", "r2"); err != nil {
		t.Fatal(err)
	}
	_ = c2.Send("<presence/>")
	if _, err := c2.Expect(timeout, func(s *wire.Stanza) bool {
		return s.Kind == wire.KindPresence && s.Type == "" && s.From == echoJID+"/echo"
	}); err != nil {
		t.Fatalf("no presence from the echo service after a probe: %v", err)
	}

	_ = c.Send("<message type='chat' to='" + echoJID + "' id='m1'><body>hello?</body></message>")
	st, err = c.Expect(timeout, func(s *wire.Stanza) bool { return s.Kind == wire.KindMessage && s.From == echoJID+"/echo" })
	if err != nil || !client.Contains(st, "echo test") {
		t.Fatalf("answer to a chat message: %v %v", st, err)
	}
}

// relay-only without a TURN server is a configuration error at start.
func TestEchoNeedsTURN(t *testing.T) {
	cfg := conf.Default(t.TempDir())
	withEcho(nil)(cfg)
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		_ = srv.Shutdown(context.Background())
		t.Fatal("server.New accepted relay-only echo without TURN")
	}
	if !strings.Contains(err.Error(), "relay-only") {
		t.Fatalf("error: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for jid, ok := range map[string]bool{"": true, "echo@example.org": true, "example.org": true, "echo@example.org/x": false, "Echo@example.org": false} {
		c := echo.DefaultConfig()
		c.JID = jid
		if err := c.Validate(); (err == nil) != ok {
			t.Errorf("jid %q: %v", jid, err)
		}
	}
}
