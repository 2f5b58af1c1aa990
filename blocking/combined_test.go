package blocking_test

import (
	"strings"
	"testing"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/push"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/wire"
)

// Blocking combined with the modules that store, copy or announce
// messages: what a blocked contact sent must reach the user by no path.

func block(t *testing.T, c *client.Client, j string) {
	t.Helper()
	if res := iq(t, c, "<iq type='set' id='blk'><block xmlns='urn:xmpp:blocking'><item jid='"+j+"'/></block></iq>", "blk"); res.Type != "result" {
		t.Fatalf("block %s: %s", j, res.Raw)
	}
}

func unblock(t *testing.T, c *client.Client, j string) {
	t.Helper()
	if res := iq(t, c, "<iq type='set' id='ublk'><unblock xmlns='urn:xmpp:blocking'><item jid='"+j+"'/></unblock></iq>", "ublk"); res.Type != "result" {
		t.Fatalf("unblock %s: %s", j, res.Raw)
	}
}

func chat(to, id, body string) string {
	return "<message to='" + to + "' type='chat' id='" + id + "'><body>" + body + "</body></message>"
}

// sendAndWait sends a message and waits until the server routed it (a
// ping round trip after it).
func sendAndWait(t *testing.T, c *client.Client, raw string) {
	t.Helper()
	if err := c.Send(raw); err != nil {
		t.Fatal(err)
	}
	iq(t, c, "<iq type='get' id='routed'><ping xmlns='urn:xmpp:ping'/></iq>", "routed")
}

func bodyIs(body string) func(*wire.Stanza) bool {
	return func(s *wire.Stanza) bool { return s.Kind == wire.KindMessage && client.Contains(s, body) }
}

// TestOfflineMessageFromContactBlockedBeforePresence: a message stored
// while the user was offline is not delivered at initial presence when she
// blocked its sender after it was stored (XEP-0191 §3.3); it is dropped,
// and stays dropped after an unblock.
func TestOfflineMessageFromContactBlockedBeforePresence(t *testing.T) {
	e := servertest.Start(t, nil)
	alice, bob := e.AddUser("alice", "pw-alice-1"), e.AddUser("bob", "pw-bob-1")
	e.AddUser("carol", "pw-carol-1")
	a := e.Login("alice", "pw-alice-1", "phone")
	c := e.Login("carol", "pw-carol-1", "phone")
	sendAndWait(t, a, chat(bob, "m-alice", "from alice, stored"))
	sendAndWait(t, c, chat(bob, "m-carol", "from carol, stored"))

	b := e.Login("bob", "pw-bob-1", "pc")
	block(t, b, alice)
	_ = b.Send("<presence/>")
	if _, err := b.Expect(timeout, client.ID("m-carol")); err != nil {
		t.Fatalf("carol's offline message: %v", err)
	}
	nothing(t, b, "the blocked contact's offline message", client.ID("m-alice"))

	// Unblocked, the message does not come back: it was dropped.
	unblock(t, b, alice)
	_ = b.Close()
	b = e.Login("bob", "pw-bob-1", "pc2")
	sendAndWait(t, c, chat(bob, "m-carol2", "marker"))
	_ = b.Send("<presence/>")
	if _, err := b.Expect(timeout, client.ID("m-carol2")); err != nil {
		t.Fatalf("carol's second offline message: %v", err)
	}
	nothing(t, b, "the dropped message after unblock", client.ID("m-alice"))
}

// mamQuery runs an archive query and returns the bodies' results in order.
func mamQuery(t *testing.T, c *client.Client, qid string) []*wire.Stanza {
	t.Helper()
	if err := c.Send("<iq type='set' id='" + qid + "'><query xmlns='urn:xmpp:mam:2' queryid='" + qid + "'/></iq>"); err != nil {
		t.Fatal(err)
	}
	if res, err := c.Expect(timeout, client.ID(qid)); err != nil || res.Type != "result" {
		t.Fatalf("mam query: %v %s", err, raw(res))
	}
	var out []*wire.Stanza
	for {
		st, err := c.Expect(0, func(s *wire.Stanza) bool {
			return s.Kind == wire.KindMessage && client.Contains(s, "queryid='"+qid+"'")
		})
		if err != nil {
			return out
		}
		out = append(out, st)
	}
}

func anyContains(sts []*wire.Stanza, s string) bool {
	for _, st := range sts {
		if client.Contains(st, s) {
			return true
		}
	}
	return false
}

// TestArchiveCatchUpLeavesOutBlockedContact: a client that catches up
// through the archive (XEP-0313) instead of offline storage does not get
// what a contact it blocks sent either; its own messages to that contact
// stay, and unblocking shows the contact's messages again (the archive
// keeps them).
func TestArchiveCatchUpLeavesOutBlockedContact(t *testing.T) {
	e := servertest.Start(t, nil)
	alice, bob := e.AddUser("alice", "pw-alice-1"), e.AddUser("bob", "pw-bob-1")
	e.AddUser("carol", "pw-carol-1")
	b := e.Login("bob", "pw-bob-1", "pc")
	_ = b.Send("<presence/>")
	sendAndWait(t, b, chat(alice, "m-bob", "bob to alice"))
	_ = b.Close()

	a := e.Login("alice", "pw-alice-1", "phone")
	c := e.Login("carol", "pw-carol-1", "phone")
	sendAndWait(t, a, chat(bob, "m-alice", "alice while bob was away"))
	sendAndWait(t, c, chat(bob, "m-carol", "carol while bob was away"))

	// The catch-up: query before initial presence, block, query again.
	b = e.Login("bob", "pw-bob-1", "phone")
	block(t, b, alice)
	res := mamQuery(t, b, "q1")
	if !anyContains(res, "carol while bob was away") || !anyContains(res, "bob to alice") {
		t.Fatalf("archive lacks carol's or bob's own message: %d results", len(res))
	}
	if anyContains(res, "alice while bob was away") {
		t.Errorf("the archive served a message from a blocked contact")
	}
	// The offline flush leaves out what the archive served (carol's) and
	// what the user blocks (alice's).
	_ = b.Send("<presence/>")
	nothing(t, b, "the blocked contact's message at initial presence", client.ID("m-alice"))

	unblock(t, b, alice)
	if res := mamQuery(t, b, "q2"); !anyContains(res, "alice while bob was away") {
		t.Errorf("after unblock, the archive does not show alice's message again")
	}
}

// TestCarbonsOfBlockedContact: no <received/> copy of a blocked contact's
// message reaches the user's other resources, whichever resource it was
// sent to.
func TestCarbonsOfBlockedContact(t *testing.T) {
	e := servertest.Start(t, nil)
	alice, bob := e.AddUser("alice", "pw-alice-1"), e.AddUser("bob", "pw-bob-1")
	e.AddUser("carol", "pw-carol-1")
	b1 := e.Login("bob", "pw-bob-1", "pc")
	b2 := e.Login("bob", "pw-bob-1", "phone")
	for _, c := range []*client.Client{b1, b2} {
		iq(t, c, "<iq type='set' id='cb'><enable xmlns='urn:xmpp:carbons:2'/></iq>", "cb")
		_ = c.Send("<presence/>")
	}
	block(t, b1, alice)
	a := e.Login("alice", "pw-alice-1", "phone")
	c := e.Login("carol", "pw-carol-1", "phone")
	for _, to := range []string{bob, bob + "/phone"} {
		_ = a.Send(chat(to, "m-alice", "blocked words"))
		if st, err := a.Expect(timeout, client.ID("m-alice")); err != nil || st.Type != "error" {
			t.Fatalf("alice's message to %s: %v %s", to, err, raw(st))
		}
	}
	sendAndWait(t, c, chat(bob+"/phone", "m-carol", "carol's words"))
	if _, err := b1.Expect(timeout, func(s *wire.Stanza) bool {
		return client.Contains(s, "<received xmlns='urn:xmpp:carbons:2'") && client.Contains(s, "carol's words")
	}); err != nil {
		t.Fatalf("no carbon of carol's message: %v", err)
	}
	for _, cl := range []*client.Client{b1, b2} {
		nothing(t, cl, "a copy of the blocked contact's message", bodyIs("blocked words"))
	}
}

func propose(to, id string) string {
	return "<message to='" + to + "' type='chat' id='p-" + id + "'><propose xmlns='urn:xmpp:jingle-message:0' id='" + id + "'>" +
		"<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose><store xmlns='urn:xmpp:hints'/></message>"
}

// TestJMIProposeFromBlockedContact: a XEP-0353 proposal from a blocked
// contact does not ring any resource, and its answer is the one a missing
// account gets, also while the user is in another call (a "busy" answer
// would tell the blocked contact she is online and talking).
func TestJMIProposeFromBlockedContact(t *testing.T) {
	e := servertest.Start(t, nil)
	alice, bob := e.AddUser("alice", "pw-alice-1"), e.AddUser("bob", "pw-bob-1")
	carol := e.AddUser("carol", "pw-carol-1")
	b := e.Login("bob", "pw-bob-1", "phone")
	_ = b.Send("<presence/>")
	block(t, b, alice)
	a := e.Login("alice", "pw-alice-1", "phone")
	c := e.Login("carol", "pw-carol-1", "phone")
	_ = c.Send("<presence/>")

	wantUnavailable := func(id string) {
		t.Helper()
		st, err := a.Expect(timeout, client.ID("p-"+id))
		if err != nil || st.Type != "error" || !client.Contains(st, "<service-unavailable ") {
			t.Fatalf("answer to alice's proposal %s: %v %s", id, err, raw(st))
		}
	}
	_ = a.Send(propose(bob, "call-1"))
	wantUnavailable("call-1")

	// Bob takes carol's call; alice tries again.
	_ = c.Send(propose(bob, "call-2"))
	if _, err := b.Expect(timeout, client.ID("p-call-2")); err != nil {
		t.Fatalf("carol's proposal: %v", err)
	}
	_ = b.Send("<message to='" + carol + "/phone' type='chat' id='pr-2'><proceed xmlns='urn:xmpp:jingle-message:0' id='call-2'/><store xmlns='urn:xmpp:hints'/></message>")
	if _, err := c.Expect(timeout, client.ID("pr-2")); err != nil {
		t.Fatalf("bob's proceed: %v", err)
	}
	_ = a.Send(propose(bob, "call-3"))
	wantUnavailable("call-3")
	nothing(t, a, "a busy answer", func(s *wire.Stanza) bool { return client.Contains(s, "<reject ") })
	nothing(t, b, "a proposal from the blocked contact", func(s *wire.Stanza) bool { return strings.HasPrefix(s.From, alice) })
}

// TestNoPushForBlockedContact: a device registered for push (XEP-0357) is
// not woken for what a blocked contact sends, message or call.
func TestNoPushForBlockedContact(t *testing.T) {
	e := servertest.Start(t, func(cfg *conf.Config) {
		cfg.Module("push").(*push.Config).Throttle = 0
	})
	alice, bob := e.AddUser("alice", "pw-alice-1"), e.AddUser("bob", "pw-bob-1")
	carol := e.AddUser("carol", "pw-carol-1")
	svc := e.AddUser("pushsvc", "pw-push-1")
	s := e.Login("pushsvc", "pw-push-1", "app")
	_ = s.Send("<presence/>")

	b := e.Login("bob", "pw-bob-1", "phone")
	block(t, b, alice)
	if res := iq(t, b, "<iq type='set' id='en'><enable xmlns='urn:xmpp:push:0' jid='"+svc+"/app' node='bob-device'/></iq>", "en"); res.Type != "result" {
		t.Fatalf("enable: %s", res.Raw)
	}
	_ = b.Close()

	a := e.Login("alice", "pw-alice-1", "phone")
	c := e.Login("carol", "pw-carol-1", "phone")
	for _, raw := range []string{chat(bob, "p-m", "blocked words"), propose(bob, "call-1")} {
		_ = a.Send(raw)
		if st, err := a.Expect(timeout, func(s *wire.Stanza) bool { return s.Type == "error" }); err != nil {
			t.Fatalf("alice's stanza was not refused: %v", err)
		} else if !client.Contains(st, "<service-unavailable ") {
			t.Fatalf("alice's stanza: %s", st.Raw)
		}
	}
	sendAndWait(t, c, chat(bob, "m-carol", "carol's words"))
	// Carol's is the first and only message the device is told about.
	pub, err := s.Expect(timeout, func(st *wire.Stanza) bool { return st.Kind == wire.KindIQ && st.Type == "set" })
	if err != nil {
		t.Fatalf("no push for carol's message: %v", err)
	}
	_ = s.Send("<iq type='result' to='" + pub.From + "' id='" + pub.ID + "'/>")
	if !client.Contains(pub, carol) || client.Contains(pub, alice) || !client.Contains(pub, "<value>1</value>") {
		t.Errorf("push: %s", pub.Raw)
	}
	nothing(t, s, "a push for the blocked contact", func(st *wire.Stanza) bool {
		return st.Kind == wire.KindIQ && client.Contains(st, alice)
	})
}
