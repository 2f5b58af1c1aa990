package blocking_test

import (
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/wire"
)

const timeout = 10 * time.Second

func presenceFrom(from, typ string) func(*wire.Stanza) bool {
	return func(s *wire.Stanza) bool {
		return s.Kind == wire.KindPresence && s.From == from && s.Type == typ
	}
}

// subscribeBoth makes a and b mutual contacts over the wire, both available.
func subscribeBoth(t *testing.T, a, b *client.Client, aJID, bJID string) {
	t.Helper()
	for _, c := range []*client.Client{a, b} {
		if _, err := c.IQ(timeout, "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>", "r1"); err != nil {
			t.Fatal(err)
		}
		_ = c.Send("<presence/>")
	}
	_ = a.Send("<presence to='" + bJID + "' type='subscribe'/>")
	if _, err := b.Expect(timeout, presenceFrom(aJID, "subscribe")); err != nil {
		t.Fatal(err)
	}
	_ = b.Send("<presence to='" + aJID + "' type='subscribed'/><presence to='" + aJID + "' type='subscribe'/>")
	if _, err := a.Expect(timeout, presenceFrom(bJID, "subscribe")); err != nil {
		t.Fatal(err)
	}
	_ = a.Send("<presence to='" + bJID + "' type='subscribed'/>")
	// Drain the answers, so later checks see only what follows.
	if _, err := a.Expect(timeout, presenceFrom(bJID, "subscribed")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Expect(timeout, presenceFrom(aJID, "subscribed")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Expect(timeout, func(s *wire.Stanza) bool {
		return s.Kind == wire.KindPresence && strings.HasPrefix(s.From, aJID+"/") && s.Type == ""
	}); err != nil {
		t.Fatalf("b does not see a: %v", err)
	}
	if _, err := a.Expect(timeout, func(s *wire.Stanza) bool {
		return s.Kind == wire.KindPresence && strings.HasPrefix(s.From, bJID+"/") && s.Type == ""
	}); err != nil {
		t.Fatalf("a does not see b: %v", err)
	}
}

// nothing checks that c received nothing match accepts: a ping to the
// server is answered after everything queued for c before it, so the
// answer must come before any match. Other elements are kept for later
// expectations.
func nothing(t *testing.T, c *client.Client, what string, match func(*wire.Stanza) bool) {
	t.Helper()
	if err := c.Send("<iq type='get' id='barrier'><ping xmlns='urn:xmpp:ping'/></iq>"); err != nil {
		t.Fatal(err)
	}
	st, err := c.Expect(timeout, func(s *wire.Stanza) bool { return (s.Kind == wire.KindIQ && s.ID == "barrier") || match(s) })
	if err != nil {
		t.Fatalf("%s: no answer to the ping: %v", what, err)
	}
	if st.Kind != wire.KindIQ || st.ID != "barrier" {
		t.Errorf("%s: got %s", what, st.Raw)
		// The answer is still to come: take it, so that the next barrier
		// is not mistaken for it.
		if _, err := c.Expect(timeout, client.ID("barrier")); err != nil {
			t.Fatal(err)
		}
	}
}

func iq(t *testing.T, c *client.Client, raw, id string) *wire.Stanza {
	t.Helper()
	st, err := c.IQ(timeout, raw, id)
	if err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return st
}

func TestBlockingOverTheWire(t *testing.T) {
	e := servertest.Start(t, nil)
	alice, bob := e.AddUser("alice", "pw-alice-1"), e.AddUser("bob", "pw-bob-1")
	a := e.Login("alice", "pw-alice-1", "phone")
	a2 := e.Login("alice", "pw-alice-1", "laptop")
	b := e.Login("bob", "pw-bob-1", "pc")
	subscribeBoth(t, a, b, alice, bob)

	// Discovery.
	if res := iq(t, a, "<iq type='get' id='d' to='"+e.Domain+"'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", "d"); !client.Contains(res, "var='urn:xmpp:blocking'") {
		t.Errorf("disco lacks urn:xmpp:blocking: %s", res.Raw)
	}
	for _, c := range []*client.Client{a, a2} {
		if res := iq(t, c, "<iq type='get' id='bl'><blocklist xmlns='urn:xmpp:blocking'/></iq>", "bl"); res.Type != "result" || !client.Contains(res, "<blocklist xmlns='urn:xmpp:blocking'/>") {
			t.Fatalf("empty blocklist: %s", res.Raw)
		}
	}

	if res := iq(t, a, "<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='"+bob+"'/></block></iq>", "b1"); res.Type != "result" {
		t.Fatalf("block: %s", res.Raw)
	}
	for _, c := range []*client.Client{a, a2} {
		if _, err := c.Expect(timeout, func(s *wire.Stanza) bool {
			return s.Kind == wire.KindIQ && s.Type == "set" && s.PayloadName == "block" && client.Contains(s, "jid='"+bob+"'")
		}); err != nil {
			t.Errorf("no block push: %v", err)
		}
	}
	// Bob is told alice went away, from each of her available resources.
	if _, err := b.Expect(timeout, presenceFrom(alice+"/phone", "unavailable")); err != nil {
		t.Errorf("bob not sent unavailable: %v", err)
	}
	// And she sees bob as gone: his presence will not reach her any more.
	if _, err := a.Expect(timeout, presenceFrom(bob+"/pc", "unavailable")); err != nil {
		t.Errorf("alice not shown bob unavailable: %v", err)
	}
	if res := iq(t, a2, "<iq type='get' id='bl2'><blocklist xmlns='urn:xmpp:blocking'/></iq>", "bl2"); !client.Contains(res, "<item jid='"+bob+"'/>") {
		t.Errorf("blocklist: %s", res.Raw)
	}

	// Bob → alice: the message is answered service-unavailable, presence vanishes.
	_ = b.Send("<message to='" + alice + "' type='chat' id='m1'><body>hello?</body></message>")
	st, err := b.Expect(timeout, client.ID("m1"))
	if err != nil || st.Type != "error" || !client.Contains(st, "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>") {
		t.Fatalf("bob's message: %v %s", err, raw(st))
	}
	_ = b.Send("<presence><status>still here</status></presence>")
	_ = b.Send("<iq to='" + alice + "/phone' type='get' id='v1'><query xmlns='jabber:iq:version'/></iq>")
	if st, err := b.Expect(timeout, client.ID("v1")); err != nil || st.Type != "error" || !client.Contains(st, "service-unavailable") {
		t.Errorf("bob's iq: %v %s", err, raw(st))
	}
	for _, c := range []*client.Client{a, a2} {
		nothing(t, c, "alice from bob", func(s *wire.Stanza) bool { return strings.HasPrefix(s.From, bob) })
	}

	// Alice → bob: not-acceptable with <blocked/>.
	_ = a.Send("<message to='" + bob + "' type='chat' id='m2'><body>Can you hear me now?</body></message>")
	st, err = a.Expect(timeout, client.ID("m2"))
	if err != nil || st.Type != "error" || st.From != bob ||
		!client.Contains(st, "<error type='cancel'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><blocked xmlns='urn:xmpp:blocking:errors'/></error>") ||
		!client.Contains(st, "<body>Can you hear me now?</body>") {
		t.Fatalf("alice's message: %v %s", err, raw(st))
	}
	nothing(t, b, "bob from alice", func(s *wire.Stanza) bool { return strings.HasPrefix(s.From, alice) })

	// Unblock: her presence reaches bob again, and messages flow.
	if res := iq(t, a2, "<iq type='set' id='u1'><unblock xmlns='urn:xmpp:blocking'><item jid='"+bob+"'/></unblock></iq>", "u1"); res.Type != "result" {
		t.Fatalf("unblock: %s", res.Raw)
	}
	for _, c := range []*client.Client{a, a2} {
		if _, err := c.Expect(timeout, func(s *wire.Stanza) bool {
			return s.Kind == wire.KindIQ && s.Type == "set" && s.PayloadName == "unblock" && client.Contains(s, "jid='"+bob+"'")
		}); err != nil {
			t.Errorf("no unblock push: %v", err)
		}
	}
	if _, err := b.Expect(timeout, presenceFrom(alice+"/phone", "")); err != nil {
		t.Errorf("bob did not get alice's presence after unblock: %v", err)
	}
	if _, err := a.Expect(timeout, func(s *wire.Stanza) bool {
		return presenceFrom(bob+"/pc", "")(s) && client.Contains(s, "still here")
	}); err != nil {
		t.Errorf("alice did not get bob's current presence after unblock: %v", err)
	}
	_ = b.Send("<message to='" + alice + "/phone' type='chat' id='m3'><body>back</body></message>")
	if _, err := a.Expect(timeout, client.ID("m3")); err != nil {
		t.Errorf("message after unblock: %v", err)
	}

	// Unblock-all pushes an empty <unblock/>.
	iq(t, a, "<iq type='set' id='b2'><block xmlns='urn:xmpp:blocking'><item jid='x@example.net'/><item jid='example.org'/></block></iq>", "b2")
	iq(t, a, "<iq type='set' id='u2'><unblock xmlns='urn:xmpp:blocking'/></iq>", "u2")
	if _, err := a2.Expect(timeout, func(s *wire.Stanza) bool {
		return s.Kind == wire.KindIQ && s.Type == "set" && client.Contains(s, "<unblock xmlns='urn:xmpp:blocking'/>")
	}); err != nil {
		t.Errorf("no unblock-all push: %v", err)
	}
	if res := iq(t, a2, "<iq type='get' id='bl3'><blocklist xmlns='urn:xmpp:blocking'/></iq>", "bl3"); !client.Contains(res, "<blocklist xmlns='urn:xmpp:blocking'/>") {
		t.Errorf("blocklist after unblock-all: %s", res.Raw)
	}
}

// TestBlockPersists checks the list is stored: a new session of
// the user is protected without asking for anything.
func TestBlockPersists(t *testing.T) {
	e := servertest.Start(t, nil)
	alice, bob := e.AddUser("alice", "pw-alice-1"), e.AddUser("bob", "pw-bob-1")
	a := e.Login("alice", "pw-alice-1", "phone")
	iq(t, a, "<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='"+bob+"/pc'/></block></iq>", "b1")
	_ = a.Close()
	// Logged out: her list still applies, to offline messages too.
	b := e.Login("bob", "pw-bob-1", "pc")
	_ = b.Send("<message to='" + alice + "' type='chat' id='m1'><body>while you were out</body></message>")
	if st, err := b.Expect(timeout, client.ID("m1")); err != nil || st.Type != "error" {
		t.Fatalf("message from a blocked full JID to an offline user: %v %s", err, raw(st))
	}
	b2 := e.Login("bob", "pw-bob-1", "tablet") // another resource: not blocked
	_ = b2.Send("<message to='" + alice + "' type='chat' id='m2'><body>from the tablet</body></message>")
	nothing(t, b2, "error for the tablet", client.ID("m2"))
	a = e.Login("alice", "pw-alice-1", "laptop")
	_ = a.Send("<presence/>")
	st, err := a.Expect(timeout, func(s *wire.Stanza) bool { return s.Kind == wire.KindMessage })
	if err != nil || st.ID != "m2" {
		t.Fatalf("offline delivery: %v %s", err, raw(st))
	}
	nothing(t, a, "the blocked message", client.ID("m1"))
}

func raw(st *wire.Stanza) string {
	if st == nil {
		return "<nil>"
	}
	return string(st.Raw)
}
