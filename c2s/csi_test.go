package c2s_test

import (
	"strings"
	"testing"

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
	// A message with a body goes out at once, and before it nothing did:
	// the held stanzas were routed first, so one that leaked would be
	// ahead of it in bob's queue.
	_ = a.Send("<message type='chat' to='bob@localhost/laptop'><body>wake up</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>")
	if st := nextNonIQ(t, b); !client.Contains(st, "wake up") {
		t.Fatalf("delivered while inactive, before the urgent message: %s", st.Raw)
	}
	// The urgent message did not flush the held ones: the next urgent
	// message is again the first thing to arrive.
	_ = a.Send("<message type='chat' to='bob@localhost/laptop'><body>marker 1</body></message>")
	if st := nextNonIQ(t, b); !client.Contains(st, "marker 1") {
		t.Fatalf("delivered while inactive, after the urgent message: %s", st.Raw)
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
	// Nothing else was held: a message sent now is the next to arrive.
	_ = a.Send("<message type='chat' to='bob@localhost/laptop'><body>marker 2</body></message>")
	if st := nextNonIQ(t, b); !client.Contains(st, "marker 2") {
		t.Fatalf("coalesced stanza delivered too: %s", st.Raw)
	}
}

// nextNonIQ is the next stanza c receives that is not an iq (keepalive
// pings and sync answers aside).
func nextNonIQ(t *testing.T, c *client.Client) *wire.Stanza {
	t.Helper()
	st, err := c.Expect(timeout, func(s *wire.Stanza) bool { return s.Kind != wire.KindIQ })
	if err != nil {
		t.Fatal(err)
	}
	return st
}
