package pep_test

import (
	"slices"
	"testing"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/wire"
)

func TestPublishRetrieveRetract(t *testing.T) {
	e := start(t, "alice", "bob")
	a := e.login("alice", "phone")
	b := e.login("bob", "laptop")
	const node = "urn:example:mood"

	// Auto-create with the defaults: max_items 1, presence access.
	r := publish(t, a, node, "one", "<mood xmlns='urn:example:mood'>happy</mood>")
	has(t, r, "<publish node='"+node+"'><item id='one'/></publish>")
	r = publish(t, a, node, "", "<mood xmlns='urn:example:mood'>sad</mood>")
	gen := itemIDs(r)
	if len(gen) != 1 || gen[0] == "" {
		t.Fatalf("no generated item id in %s", r.Raw)
	}
	r = items(t, a, "", node, "/>")
	if got := itemIDs(r); !slices.Equal(got, gen) {
		t.Fatalf("items = %q, want only the newest %q (max_items 1)", got, gen)
	}
	has(t, r, "<mood xmlns='urn:example:mood'>sad</mood>")

	// A node created with configure keeps more, oldest first.
	const multi = "urn:example:notes"
	iq(t, a, "result", "<iq type='set'><pubsub xmlns='"+nsPubSub+"'><create node='"+multi+"'/><configure><x xmlns='jabber:x:data' type='submit'>"+
		"<field var='FORM_TYPE' type='hidden'><value>"+nsPubSub+"#node_config</value></field>"+
		"<field var='pubsub#max_items'><value>3</value></field></x></configure></pubsub></iq>")
	isError(t, iq(t, a, "error", "<iq type='set'><pubsub xmlns='"+nsPubSub+"'><create node='"+multi+"'/></pubsub></iq>"), "cancel", "conflict", "")
	for _, id := range []string{"n1", "n2", "n3", "n4"} {
		publish(t, a, multi, id, "<note xmlns='urn:example:notes'>"+id+"</note>")
	}
	publish(t, a, multi, "n2", "<note xmlns='urn:example:notes'>edited</note>") // now the newest
	if got := itemIDs(items(t, a, "", multi, "/>")); !slices.Equal(got, []string{"n3", "n4", "n2"}) {
		t.Fatalf("items = %q, want [n3 n4 n2]", got)
	}
	if got := itemIDs(items(t, a, "", multi, " max_items='2'/>")); !slices.Equal(got, []string{"n4", "n2"}) {
		t.Fatalf("max_items 2 = %q, want [n4 n2]", got)
	}
	r = items(t, a, "alice@localhost", multi, "><item id='n2'/><item id='gone'/><item id='n3'/></items>")
	if got := itemIDs(r); !slices.Equal(got, []string{"n3", "n2"}) {
		t.Fatalf("by id = %q, want [n3 n2]", got)
	}
	has(t, r, "edited")

	// Retract.
	iq(t, a, "result", "<iq type='set'><pubsub xmlns='"+nsPubSub+"'><retract node='"+multi+"'><item id='n4'/></retract></pubsub></iq>")
	if got := itemIDs(items(t, a, "", multi, "/>")); !slices.Equal(got, []string{"n3", "n2"}) {
		t.Fatalf("after retract = %q", got)
	}
	isError(t, iq(t, a, "error", "<iq type='set'><pubsub xmlns='"+nsPubSub+"'><retract node='"+multi+"'><item id='n4'/></retract></pubsub></iq>"), "cancel", "item-not-found", "")
	isError(t, iq(t, a, "error", "<iq type='set'><pubsub xmlns='"+nsPubSub+"'><retract node='"+multi+"'/></pubsub></iq>"), "modify", "bad-request", "item-required")

	// Errors: others may not publish, a stranger may not read a presence
	// node, bad requests.
	isError(t, iq(t, b, "error", "<iq type='set' to='alice@localhost'><pubsub xmlns='"+nsPubSub+"'><publish node='"+node+"'><item><x xmlns='y'/></item></publish></pubsub></iq>"), "auth", "forbidden", "")
	isError(t, iq(t, b, "error", itemsRaw("alice@localhost", node, "/>")), "auth", "not-authorized", "presence-subscription-required")
	isError(t, iq(t, a, "error", itemsRaw("", "urn:example:none", "/>")), "cancel", "item-not-found", "")
	isError(t, iq(t, a, "error", publishRaw(node, "x", "")), "modify", "bad-request", "payload-required")
	isError(t, iq(t, a, "error", publishRaw(node, "x", "<a xmlns='x'/><b xmlns='x'/>")), "modify", "bad-request", "invalid-payload")
	isError(t, iq(t, a, "error", "<iq type='set'><pubsub xmlns='"+nsPubSub+"'><publish><item><x xmlns='y'/></item></publish></pubsub></iq>"), "modify", "bad-request", "nodeid-required")
	isError(t, iq(t, a, "error", "<iq type='set'><pubsub xmlns='"+nsPubSub+"'><subscribe node='"+node+"' jid='alice@localhost'/></pubsub></iq>"), "cancel", "feature-not-implemented", "unsupported")
	big := "<x xmlns='big'>" + repeat("a", 140*1024) + "</x>"
	isError(t, iq(t, a, "error", publishRaw(node, "big", big)), "modify", "not-acceptable", "payload-too-big")

	// Purge and delete.
	iq(t, a, "result", "<iq type='set'><pubsub xmlns='"+nsOwner+"'><purge node='"+multi+"'/></pubsub></iq>")
	if got := itemIDs(items(t, a, "", multi, "/>")); len(got) != 0 {
		t.Fatalf("after purge = %q", got)
	}
	isError(t, iq(t, b, "error", "<iq type='set' to='alice@localhost'><pubsub xmlns='"+nsOwner+"'><delete node='"+multi+"'/></pubsub></iq>"), "auth", "forbidden", "")
	iq(t, a, "result", "<iq type='set'><pubsub xmlns='"+nsOwner+"'><delete node='"+multi+"'/></pubsub></iq>")
	isError(t, iq(t, a, "error", itemsRaw("", multi, "/>")), "cancel", "item-not-found", "")
	isError(t, iq(t, a, "error", "<iq type='set'><pubsub xmlns='"+nsOwner+"'><delete node='"+multi+"'/></pubsub></iq>"), "cancel", "item-not-found", "")
}

func repeat(s string, n int) string {
	b := make([]byte, 0, len(s)*n)
	for range n {
		b = append(b, s...)
	}
	return string(b)
}

func TestPublishOptions(t *testing.T) {
	e := start(t, "alice")
	a := e.login("alice", "phone")
	const node = "urn:example:private"
	private := []string{"pubsub#persist_items", "true", "pubsub#access_model", "whitelist", "pubsub#max_items", "max", "pubsub#send_last_published_item", "never"}

	// Auto-create takes the options as configuration (XEP-0223).
	publish(t, a, node, "1", "<data xmlns='urn:example:private'/>", private...)
	r := iq(t, a, "result", "<iq type='get'><pubsub xmlns='"+nsOwner+"'><configure node='"+node+"'/></pubsub></iq>")
	has(t, r, "<field var='pubsub#access_model' type='list-single'", "<value>whitelist</value>", "<value>max</value>", "<value>never</value>")

	// The same options are met; true and 1 are the same boolean, and 'max'
	// is the service's limit written as a number.
	publish(t, a, node, "2", "<data xmlns='urn:example:private'/>", private...)
	publish(t, a, node, "3", "<data xmlns='urn:example:private'/>", "pubsub#persist_items", "1", "pubsub#max_items", "1000")

	// Options the node does not meet, unknown fields, impossible values.
	for _, opts := range [][]string{
		{"pubsub#access_model", "open"},
		{"pubsub#persist_items", "false"},
		{"pubsub#max_items", "5"},
		{"pubsub#send_last_published_item", "on_sub_and_presence"},
		{"pubsub#no_such_option", "1"},
		{"pubsub#access_model", "authorize"},
	} {
		r := iq(t, a, "error", publishRaw(node, "4", "<data xmlns='urn:example:private'/>", opts...))
		isError(t, r, "cancel", "conflict", "precondition-not-met")
	}
	// Nothing was published by the refused requests.
	if got := itemIDs(items(t, a, "", node, "/>")); !slices.Equal(got, []string{"1", "2", "3"}) {
		t.Fatalf("items = %q", got)
	}

	// What clients do on precondition-not-met: reconfigure, publish again.
	iq(t, a, "result", "<iq type='set'><pubsub xmlns='"+nsOwner+"'><configure node='"+node+"'><x xmlns='jabber:x:data' type='submit'>"+
		"<field var='FORM_TYPE' type='hidden'><value>"+nsPubSub+"#node_config</value></field>"+
		"<field var='pubsub#access_model'><value>open</value></field>"+
		"<field var='pubsub#max_items'><value>2</value></field></x></configure></pubsub></iq>")
	if got := itemIDs(items(t, a, "", node, "/>")); !slices.Equal(got, []string{"2", "3"}) {
		t.Fatalf("after lowering max_items to 2: %q", got)
	}
	publish(t, a, node, "4", "<data xmlns='urn:example:private'/>", "pubsub#access_model", "open")

	// Configuration errors.
	for _, f := range []string{
		"<field var='pubsub#access_model'><value>authorize</value></field>",
		"<field var='pubsub#max_items'><value>100000</value></field>",
		"<field var='pubsub#persist_items'><value>maybe</value></field>",
	} {
		r := iq(t, a, "error", "<iq type='set'><pubsub xmlns='"+nsOwner+"'><configure node='"+node+"'><x xmlns='jabber:x:data' type='submit'>"+f+"</x></configure></pubsub></iq>")
		isError(t, r, "modify", "not-acceptable", "")
	}
	// Default configuration.
	r = iq(t, a, "result", "<iq type='get'><pubsub xmlns='"+nsOwner+"'><default/></pubsub></iq>")
	has(t, r, "<value>presence</value>", "<value>on_sub_and_presence</value>")
}

func TestNotificationsFollowCaps(t *testing.T) {
	e := start(t, "alice", "bob", "carol")
	e.befriend("alice", "bob")
	const node = "http://jabber.org/protocol/geoloc"
	interested := notify("Test 1.0", node)

	// Alice publishes while bob is offline.
	a := e.login("alice", "desk")
	publish(t, a, node, "first", "<geoloc xmlns='"+node+"'><locality>Paris</locality></geoloc>")

	// Bob comes online with caps the server has never seen: it asks, checks
	// the hash, and sends the last item (with a delay stamp).
	b1 := e.login("bob", "interested")
	online(t, b1, interested, true)
	ev := expect(t, b1, "bob's last item", eventWith(node, "Paris"))
	has(t, ev, "from='alice@localhost'", "to='bob@localhost/interested'", "<item id='first'>", "urn:xmpp:delay")

	// Another of bob's resources without caps, carol (no subscription) with
	// the same caps (cached now: no query), alice's own second resource.
	b2 := e.login("bob", "plain")
	_ = b2.Send("<presence/>")
	c := e.login("carol", "phone")
	online(t, c, interested, false)
	a2 := e.login("alice", "phone")
	online(t, a2, notify("Other 2.0", node), true)
	expect(t, a2, "alice's own last item", eventWith(node, "Paris"))
	never(t, c, "a caps query for a cached ver", discoQuery(interested.ver()))

	// A publish reaches exactly the interested resources allowed to see it.
	publish(t, a, node, "second", "<geoloc xmlns='"+node+"'><locality>Lyon</locality></geoloc>")
	ev = expect(t, b1, "bob's notification", eventWith(node, "Lyon"))
	has(t, ev, "<item id='second'>", "type='replyto' jid='alice@localhost/desk'")
	hasNot(t, ev, "urn:xmpp:delay")
	ev = expect(t, a2, "alice's notification", eventWith(node, "Lyon"))
	hasNot(t, ev, "replyto")
	never(t, b2, "a notification for a resource without +notify", event(node))
	never(t, c, "a notification for a stranger", event(node))
	never(t, a, "a notification for alice's resource without caps", event(node))

	// Retract with notify.
	iq(t, a, "result", "<iq type='set'><pubsub xmlns='"+nsPubSub+"'><retract node='"+node+"' notify='true'><item id='second'/></retract></pubsub></iq>")
	expect(t, b1, "retract notification", eventWith(node, "<retract id='second'/>"))

	// Whitelisted nodes notify the owner only.
	isError(t, iq(t, a, "error", publishRaw(node, "x", "<geoloc xmlns='"+node+"'/>", "pubsub#access_model", "whitelist")), "cancel", "conflict", "precondition-not-met")
	iq(t, a, "result", "<iq type='set'><pubsub xmlns='"+nsOwner+"'><configure node='"+node+"'><x xmlns='jabber:x:data' type='submit'>"+
		"<field var='pubsub#access_model'><value>whitelist</value></field></x></configure></pubsub></iq>")
	publish(t, a, node, "fourth", "<geoloc xmlns='"+node+"'><locality>Metz</locality></geoloc>")
	expect(t, a2, "owner's notification", eventWith(node, "Metz"))
	never(t, b1, "a whitelist notification for a contact", eventWith(node, "Metz"))

	// Deleting the node notifies.
	iq(t, a, "result", "<iq type='set'><pubsub xmlns='"+nsOwner+"'><delete node='"+node+"'/></pubsub></iq>")
	expect(t, a2, "delete notification", func(st *wire.Stanza) bool {
		return st.Kind == wire.KindMessage && client.Contains(st, "<delete node='"+node+"'/>")
	})
}

func TestCapsVerifiedBeforeCaching(t *testing.T) {
	e := start(t, "alice", "bob")
	e.befriend("alice", "bob")
	const node = "http://jabber.org/protocol/tune"
	a := e.login("alice", "desk")
	publish(t, a, node, "t1", "<tune xmlns='"+node+"'><title>One</title></tune>")

	honest := notify("Player 3", node)
	// A liar advertises the honest ver but answers something else: its
	// answer serves itself only (it asked for the tune, so it gets it) and
	// is not cached.
	liar := e.login("bob", "liar")
	_ = liar.Send("<presence>" + honest.element() + "</presence>")
	q := expect(t, liar, "the caps query", discoQuery(honest.ver()))
	lie := notify("Player 3", node, "urn:example:other")
	answerDisco(t, liar, q, lie)
	expect(t, liar, "the liar's own last item", eventWith(node, "One"))

	// The next resource with that ver is asked again, answers truthfully:
	// now the ver is cached, and a third one is not asked.
	b2 := e.login("bob", "second")
	online(t, b2, honest, true)
	expect(t, b2, "last item", eventWith(node, "One"))
	b3 := e.login("bob", "third")
	online(t, b3, honest, false)
	expect(t, b3, "last item from the cache", eventWith(node, "One"))
	never(t, b3, "a query for a cached ver", discoQuery(honest.ver()))
	never(t, b3, "a second copy of the last item", event(node))

	// Unavailable, then available again: a new initial presence, so the
	// last item comes again.
	_ = b2.Send("<presence type='unavailable'/>")
	_ = b2.Send("<presence>" + honest.element() + "</presence>")
	expect(t, b2, "last item after available again", eventWith(node, "One"))

	// Caps that change in a later presence are seen as the presence
	// reaches alice: the session is asked, and gets the last item of what
	// it newly wants (only that).
	const mood = "http://jabber.org/protocol/mood"
	publish(t, a, mood, "m1", "<mood xmlns='"+mood+"'><happy/></mood>")
	moody := notify("Player 4", node, mood)
	_ = b3.Send("<presence>" + moody.element() + "</presence>")
	q = expect(t, b3, "query for the new caps", discoQuery(moody.ver()))
	answerDisco(t, b3, q, moody)
	expect(t, b3, "the last mood item after the caps change", eventWith(mood, "<item id='m1'>"))
	never(t, b3, "the last tune item again", event(node))
	publish(t, a, mood, "m2", "<mood xmlns='"+mood+"'><sad/></mood>")
	expect(t, b3, "the next mood item", eventWith(mood, "<item id='m2'>"))
}
