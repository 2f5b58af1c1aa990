package pep_test

import (
	"testing"
)

// TestNoNotificationsAcrossABlock: XEP-0191 §3.3 covers PEP. A user who
// blocks a contact gets none of the contact's notifications, neither when
// the contact publishes nor as last items at initial presence; the blocked
// contact gets none of hers either (what the server sends on her behalf to
// a JID she blocks is dropped).
func TestNoNotificationsAcrossABlock(t *testing.T) {
	e := start(t, "alice", "bob")
	e.befriend("alice", "bob")
	const node = "http://jabber.org/protocol/geoloc"
	interested := notify("Test 1.0", node)

	a := e.login("alice", "desk")
	publish(t, a, node, "before", "<geoloc xmlns='"+node+"'><locality>Before</locality></geoloc>")
	b := e.login("bob", "pc")
	iq(t, b, "result", "<iq type='set'><block xmlns='urn:xmpp:blocking'><item jid='alice@localhost'/></block></iq>")
	// Initial presence: bob's own sync item comes, alice's last item does not.
	online(t, b, interested, true)
	never(t, b, "alice's last item for a user who blocks her", eventWith(node, "Before"))

	a2 := e.login("alice", "phone")
	online(t, a2, interested, false)
	expect(t, a2, "alice's own last item", eventWith(node, "Before"))

	// Alice publishes: her own interested resource is told, bob is not.
	publish(t, a, node, "after", "<geoloc xmlns='"+node+"'><locality>After</locality></geoloc>")
	expect(t, a2, "alice's own notification", eventWith(node, "After"))
	// Bob publishes: his own notification comes after alice's would have.
	publish(t, b, node, "bobs", "<geoloc xmlns='"+node+"'><locality>Bobs</locality></geoloc>")
	expect(t, b, "bob's own notification", eventWith(node, "Bobs"))
	never(t, b, "alice's notification for a user who blocks her", eventWith(node, "After"))
	never(t, a2, "bob's notification for a contact he blocks", eventWith(node, "Bobs"))
}
