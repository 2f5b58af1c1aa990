package c2s_test

import (
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/wire"
)

func TestCSIHoldsPresenceAndChatStates(t *testing.T) {
	e := servertest.Start(t, nil)
	e.AddUser("alice", "secret-pw")
	e.AddUser("bob", "secret-pw")
	a := e.Login("alice", "secret-pw", "phone")
	b := e.Login("bob", "secret-pw", "laptop")
	if !strings.Contains(string(b.Features), "urn:xmpp:csi:0") {
		t.Fatalf("no <csi/> feature: %s", b.Features)
	}
	_ = b.Send("<inactive xmlns='urn:xmpp:csi:0'/>")
	sync(t, b)
	// Directed presence and chat states wait; the newest of each kind wins.
	_ = a.Send("<presence to='bob@localhost/laptop'><show>away</show></presence>")
	_ = a.Send("<presence to='bob@localhost/laptop'><show>dnd</show></presence>")
	_ = a.Send("<message type='chat' to='bob@localhost/laptop'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
	_ = a.Send("<message type='chat' to='bob@localhost/laptop'><paused xmlns='http://jabber.org/protocol/chatstates'/></message>")
	sync(t, a)
	if st, err := b.Expect(300*time.Millisecond, func(s *wire.Stanza) bool { return s.Kind != wire.KindIQ }); err == nil {
		t.Fatalf("delivered while inactive: %s", st.Raw)
	}
	// A message with a body goes out at once.
	_ = a.Send("<message type='chat' to='bob@localhost/laptop'><body>wake up</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>")
	m, err := b.Expect(timeout, client.Kind(wire.KindMessage))
	if err != nil || !client.Contains(m, "wake up") {
		t.Fatalf("urgent message: %v %v", m, err)
	}
	if st, err := b.Expect(300*time.Millisecond, client.Kind(wire.KindPresence)); err == nil {
		t.Fatalf("presence delivered while inactive: %s", st.Raw)
	}
	// Active: the held ones arrive, coalesced.
	_ = b.Send("<active xmlns='urn:xmpp:csi:0'/>")
	p, err := b.Expect(timeout, client.Kind(wire.KindPresence))
	if err != nil || !client.Contains(p, "<show>dnd</show>") {
		t.Fatalf("want the newest presence, got %v %v", p, err)
	}
	cs, err := b.Expect(timeout, client.Kind(wire.KindMessage))
	if err != nil || !client.Contains(cs, "<paused") {
		t.Fatalf("want the newest chat state, got %v %v", cs, err)
	}
	if st, err := b.Expect(300*time.Millisecond, func(s *wire.Stanza) bool { return s.Kind != wire.KindIQ }); err == nil {
		t.Fatalf("coalesced stanza delivered too: %s", st.Raw)
	}
}
