package interop

import (
	"context"
	"errors"
	"testing"

	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/storage"
)

// TestSlixmppRosterSubscription runs the RFC 6121 §3 subscription handshake
// in both directions between two slixmpp clients and checks every roster
// push and presence each one sees, then the rosters on both sides and in
// storage: both end with subscription "both", no pending request, and each
// has received the other's presence. Then presence updates, a logout and a
// login with a presence probe, and the removal of the contact.
func TestSlixmppRosterSubscription(t *testing.T) {
	t.Parallel()
	e := servertest.Start(t, nil)
	aliceJID := e.AddUser("alice", "alice pw")
	bobJID := e.AddUser("bob", "bob pw")
	a := startSlix(t, e, "alice", "alice pw", "slix-a", scramOnly)
	b := startSlix(t, e, "bob", "bob pw", "slix-b", scramOnly)
	aFull := a.online().str("jid")
	bFull := b.online().str("jid")
	for _, p := range []*proc{a, b} {
		r := p.expect("initial roster", evNamed("roster"))
		if len(r.obj("items")) != 0 {
			t.Errorf("%s: initial roster not empty: %v", p.name, r)
		}
	}

	// Alice adds Bob (RFC 6121 §2.3): a push with subscription none.
	a.do(map[string]any{"cmd": "roster_set", "jid": bobJID, "name": "Bob", "groups": []string{"Friends"}})
	a.expect("roster_set result", func(e event) bool { return e.is("roster_set_result") && e.str("type") == "result" })
	push := a.expect("push of bob (none)", rosterPush(bobJID, "none", ""))
	if it := push.obj("items").obj(bobJID); it.str("name") != "Bob" || it.str("groups") != "[Friends]" {
		t.Errorf("pushed item = %v, want name Bob, groups [Friends]", it)
	}

	// Alice subscribes (§3.1.2): her push shows ask=subscribe; Bob gets
	// the request from her bare JID (§3.1.3).
	a.do(map[string]any{"cmd": "subscribe", "jid": bobJID})
	a.expect("push of bob (none, ask)", rosterPush(bobJID, "none", "subscribe"))
	b.expect("subscribe from alice's bare JID", presenceFrom("subscribe", aliceJID))

	// Bob approves (§3.1.5): his push says from; Alice gets subscribed, a
	// push with to, and Bob's current presence.
	b.do(map[string]any{"cmd": "subscribed", "jid": aliceJID})
	b.expect("push of alice (from)", rosterPush(aliceJID, "from", ""))
	a.expect("subscribed from bob", presenceFrom("subscribed", bobJID))
	a.expect("push of bob (to)", rosterPush(bobJID, "to", ""))
	a.expect("bob's available presence", presenceFrom("available", bFull))

	// Bob subscribes back.
	b.do(map[string]any{"cmd": "subscribe", "jid": aliceJID})
	b.expect("push of alice (from, ask)", rosterPush(aliceJID, "from", "subscribe"))
	a.expect("subscribe from bob's bare JID", presenceFrom("subscribe", bobJID))

	// Alice approves: both are now "both".
	a.do(map[string]any{"cmd": "subscribed", "jid": bobJID})
	a.expect("push of bob (both)", rosterPush(bobJID, "both", ""))
	b.expect("push of alice (both)", rosterPush(aliceJID, "both", ""))
	b.expect("subscribed from alice", presenceFrom("subscribed", aliceJID))
	b.expect("alice's available presence", presenceFrom("available", aFull))

	// A roster get agrees on both sides: slixmpp's own (with the version of
	// the last push, XEP-0237: the answer is empty when nothing changed since,
	// or the full roster), then one without a version.
	for _, c := range []struct {
		p       *proc
		contact string
	}{{a, bobJID}, {b, aliceJID}} {
		checkItems := func(r event) {
			t.Helper()
			items := r.obj("items")
			it := items.obj(c.contact)
			if len(items) != 1 || it.str("subscription") != "both" || it.str("ask") != "" {
				t.Errorf("%s: roster = %v, want only %s with subscription both and no ask", c.p.name, items, c.contact)
			}
		}
		c.p.do(map[string]any{"cmd": "get_roster"})
		req := c.p.expect("roster request", evNamed("roster_request"))
		if r := c.p.expect("versioned roster result", evNamed("roster")); r["query"] == true {
			checkItems(r)
		} else if req.str("ver") == "" {
			t.Errorf("%s: empty roster result to a request without a version", c.p.name)
		}
		c.p.do(map[string]any{"cmd": "get_roster", "full": true})
		checkItems(c.p.expect("full roster result", evNamed("roster")))
	}
	// And so does the store.
	for _, c := range [][2]string{{aliceJID, bobJID}, {bobJID, aliceJID}} {
		it, err := e.Srv.Store.Roster().Item(context.Background(), c[0], c[1])
		if err != nil {
			t.Errorf("stored item %s in %s's roster: %v", c[1], c[0], err)
			continue
		}
		if it.Subscription != storage.SubBoth || it.Ask || it.PendingIn {
			t.Errorf("stored item %s in %s's roster = %+v, want both, no ask, no pending-in", c[1], c[0], it)
		}
	}

	// Presence broadcast to a subscriber (§4.4): Alice goes away, Bob sees it.
	a.do(map[string]any{"cmd": "presence", "show": "away", "status": "lunch"})
	pr := b.expect("alice's away presence", func(e event) bool {
		return presenceFrom("away", aFull)(e) || (presenceFrom("available", aFull)(e) && e.str("show") == "away")
	})
	if pr.str("status") != "lunch" {
		t.Errorf("status = %q, want lunch", pr.str("status"))
	}
	// Bob logs out (§4.5) and in again with another resource: Alice sees
	// him leave and come back, and his server probes Alice's presence for
	// him (§4.3), still "away".
	b.send(map[string]any{"cmd": "quit"})
	b.wait(waitEvent)
	a.expect("bob's unavailable presence", presenceFrom("unavailable", bFull))
	b2 := startSlix(t, e, "bob", "bob pw", "slix-b2", scramOnly)
	b2Full := b2.online().str("jid")
	if r := b2.expect("roster at login", evNamed("roster")); r.obj("items").obj(aliceJID).str("subscription") != "both" {
		t.Errorf("bob's roster at his next login = %v, want alice with both", r.obj("items"))
	}
	a.expect("bob's new available presence", presenceFrom("available", b2Full))
	if pr := b2.expect("alice's presence after the probe", func(e event) bool {
		return e.is("presence") && e.str("frm") == aFull
	}); pr.str("show") != "away" || pr.str("status") != "lunch" {
		t.Errorf("probed presence = %v, want show away, status lunch", pr)
	}

	// Alice removes Bob (§2.5.2): her push says remove; her server cancels
	// both subscriptions, so Bob ends with none and each gets the other's
	// unavailable presence (§3.2.3, §3.3.3).
	a.do(map[string]any{"cmd": "roster_remove", "jid": bobJID})
	a.expect("push of bob (remove)", rosterPush(bobJID, "remove", ""))
	b2.expect("unsubscribed from alice", presenceFrom("unsubscribed", aliceJID))
	b2.expect("push of alice (none)", rosterPush(aliceJID, "none", ""))
	b2.expect("alice's unavailable presence", presenceFrom("unavailable", aFull))
	a.expect("bob's unavailable presence", presenceFrom("unavailable", b2Full))
	if _, err := e.Srv.Store.Roster().Item(context.Background(), aliceJID, bobJID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("bob still in alice's stored roster: %v", err)
	}
	if it, err := e.Srv.Store.Roster().Item(context.Background(), bobJID, aliceJID); err != nil || it.Subscription != storage.SubNone || it.Ask || it.PendingIn {
		t.Errorf("alice in bob's stored roster = %+v, %v; want subscription none, nothing pending", it, err)
	}
}
