package pep_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/wire"
)

// OMEMO (XEP-0384, both the legacy axolotl nodes and urn:xmpp:omemo:2) and
// avatars (XEP-0084) publish with access_model open, so that anyone can
// start an encrypted chat or see the picture.
func TestOpenNodesForStrangers(t *testing.T) {
	e := start(t, "alice", "bob", "carol")
	e.befriend("alice", "bob")
	a := e.login("alice", "phone")
	c := e.login("carol", "laptop") // no subscription to alice
	b := e.login("bob", "laptop")
	open := []string{"pubsub#access_model", "open"}

	const devicelist = "eu.siacs.conversations.axolotl.devicelist"
	publish(t, a, devicelist, "current", "<list xmlns='eu.siacs.conversations.axolotl'><device id='4223'/></list>", open...)
	const bundle = "eu.siacs.conversations.axolotl.bundles:4223"
	publish(t, a, bundle, "current", "<bundle xmlns='eu.siacs.conversations.axolotl'><signedPreKeyPublic signedPreKeyId='1'>BASE64</signedPreKeyPublic></bundle>", open...)
	const devices2, bundles2 = "urn:xmpp:omemo:2:devices", "urn:xmpp:omemo:2:bundles"
	publish(t, a, devices2, "current", "<devices xmlns='urn:xmpp:omemo:2'><device id='12345' label='Phone'/></devices>", open...)
	for _, id := range []string{"12345", "67890"} {
		publish(t, a, bundles2, id, "<bundle xmlns='urn:xmpp:omemo:2'><spk id='"+id+"'>KEY</spk></bundle>",
			"pubsub#access_model", "open", "pubsub#max_items", "max")
	}
	const avatarData, avatarMeta = "urn:xmpp:avatar:data", "urn:xmpp:avatar:metadata"
	publish(t, a, avatarData, "111f4b3c50d7b0df729d299bc6f8e9ef9066971f", "<data xmlns='urn:xmpp:avatar:data'>qANQR1DBwU4DX7jmYZnncm</data>", open...)
	publish(t, a, avatarMeta, "111f4b3c50d7b0df729d299bc6f8e9ef9066971f", "<metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='12345' id='111f4b3c50d7b0df729d299bc6f8e9ef9066971f' type='image/png'/></metadata>", open...)

	// Carol, a stranger, reads them all.
	has(t, items(t, c, "alice@localhost", devicelist, "/>"), "<device id='4223'/>")
	has(t, items(t, c, "alice@localhost", bundle, "/>"), "signedPreKeyPublic")
	has(t, items(t, c, "alice@localhost", devices2, "/>"), "label='Phone'")
	r := items(t, c, "alice@localhost", bundles2, "><item id='67890'/></items>")
	if got := itemIDs(r); !slices.Equal(got, []string{"67890"}) {
		t.Fatalf("bundle by id = %q", got)
	}
	if got := itemIDs(items(t, c, "alice@localhost", bundles2, "/>")); !slices.Equal(got, []string{"12345", "67890"}) {
		t.Fatalf("bundles (max_items max) = %q", got)
	}
	has(t, items(t, c, "alice@localhost", avatarData, "><item id='111f4b3c50d7b0df729d299bc6f8e9ef9066971f'/></items>"), "qANQR1DBwU4DX7jmYZnncm")

	// What is not open stays closed: presence (default) for strangers,
	// whitelist for everyone but the owner.
	const geoloc = "http://jabber.org/protocol/geoloc"
	publish(t, a, geoloc, "now", "<geoloc xmlns='"+geoloc+"'><locality>Oslo</locality></geoloc>")
	isError(t, iq(t, c, "error", itemsRaw("alice@localhost", geoloc, "/>")), "auth", "not-authorized", "presence-subscription-required")
	has(t, items(t, b, "alice@localhost", geoloc, "/>"), "Oslo")
	publish(t, a, "urn:example:secret", "1", "<secret xmlns='urn:example:secret'/>", "pubsub#access_model", "whitelist")
	isError(t, iq(t, b, "error", itemsRaw("alice@localhost", "urn:example:secret", "/>")), "cancel", "not-allowed", "closed-node")

	// Roster access: contacts in the allowed groups only.
	publish(t, a, "urn:example:family", "1", "<photo xmlns='urn:example:family'/>", "pubsub#access_model", "roster")
	isError(t, iq(t, b, "error", itemsRaw("alice@localhost", "urn:example:family", "/>")), "auth", "not-authorized", "not-in-roster-group")
	iq(t, a, "result", "<iq type='set'><query xmlns='jabber:iq:roster'><item jid='bob@localhost'><group>Family</group></item></query></iq>")
	iq(t, a, "result", "<iq type='set'><pubsub xmlns='"+nsOwner+"'><configure node='urn:example:family'><x xmlns='jabber:x:data' type='submit'>"+
		"<field var='pubsub#roster_groups_allowed'><value>Family</value></field></x></configure></pubsub></iq>")
	items(t, b, "alice@localhost", "urn:example:family", "/>")

	// Discovery shows each requester the nodes it may read.
	discoNodes := func(c *client.Client) []string {
		t.Helper()
		r := iq(t, c, "result", "<iq type='get' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
		var out []string
		for _, part := range strings.Split(string(r.Raw), "node='")[1:] {
			out = append(out, part[:strings.IndexByte(part, '\'')])
		}
		return out
	}
	all := []string{bundle, devicelist, geoloc, avatarData, avatarMeta, devices2, bundles2, "urn:example:family", "urn:example:secret"}
	slices.Sort(all)
	if got := discoNodes(a); !slices.Equal(got, all) {
		t.Fatalf("owner's nodes = %q, want %q", got, all)
	}
	if got := discoNodes(c); slices.Contains(got, geoloc) || slices.Contains(got, "urn:example:secret") || !slices.Contains(got, devicelist) {
		t.Fatalf("a stranger's view = %q", got)
	}
	if got := discoNodes(b); !slices.Contains(got, geoloc) || slices.Contains(got, "urn:example:secret") || !slices.Contains(got, "urn:example:family") {
		t.Fatalf("a contact's view = %q", got)
	}
	r = iq(t, c, "result", "<iq type='get' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#items' node='"+bundles2+"'/></iq>")
	has(t, r, "name='12345'", "name='67890'")
	r = iq(t, c, "result", "<iq type='get' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info' node='"+devicelist+"'/></iq>")
	has(t, r, "<identity category='pubsub' type='leaf'/>")
	isError(t, iq(t, c, "error", "<iq type='get' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info' node='"+geoloc+"'/></iq>"), "cancel", "item-not-found", "")
}

func TestAccountDisco(t *testing.T) {
	e := start(t, "alice", "bob")
	b := e.login("bob", "laptop")
	r := iq(t, b, "result", "<iq type='get' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	has(t, r,
		"<identity category='account' type='registered'/>",
		"<identity category='pubsub' type='pep'/>",
		"var='http://jabber.org/protocol/pubsub#publish-options'",
		"var='http://jabber.org/protocol/pubsub#auto-create'",
		"var='http://jabber.org/protocol/pubsub#access-whitelist'",
		"var='http://jabber.org/protocol/pubsub#config-node-max'",
		"var='urn:xmpp:bookmarks:1#compat'",
		"var='urn:xmpp:bookmarks:1#compat-pep'",
		"var='http://jabber.org/protocol/disco#info'", // the other modules' features stay
	)
	hasNot(t, r, "pubsub#subscribe'")
}

// XEP-0402 bookmarks, kept in step with XEP-0048 bookmarks in PEP
// (#compat-pep) and in XEP-0049 private storage (#compat).
func TestBookmarksCompat(t *testing.T) {
	e := start(t, "alice")
	const v1, legacy = "urn:xmpp:bookmarks:1", "storage:bookmarks"
	a := e.login("alice", "modern")
	online(t, a, notify("Modern 1", v1), true)
	old := e.login("alice", "old")
	online(t, old, notify("Old 1", legacy), true)
	bookmarkOpts := []string{"pubsub#persist_items", "true", "pubsub#access_model", "whitelist", "pubsub#max_items", "max", "pubsub#send_last_published_item", "never"}

	// A modern client adds a bookmark (XEP-0402 §3.2).
	publish(t, a, v1, "council@conference.localhost",
		"<conference xmlns='urn:xmpp:bookmarks:1' name='Council' autojoin='true'><nick>Al</nick><extensions><state xmlns='urn:example:client' minimized='true'/></extensions></conference>",
		bookmarkOpts...)
	expect(t, a, "the :1 notification", eventWith(v1, "council@conference.localhost"))
	// The old client sees it in the legacy PEP node (notified) and in
	// private XML storage.
	ev := expect(t, old, "the storage:bookmarks notification", eventWith(legacy, "council@conference.localhost"))
	has(t, ev, "<item id='current'>", "name='Council'", "autojoin='true'", "<nick>Al</nick>")
	r := items(t, old, "", legacy, "/>")
	has(t, r, "<storage xmlns='storage:bookmarks'><conference jid='council@conference.localhost' name='Council' autojoin='true'><nick>Al</nick></conference></storage>")
	r = iq(t, old, "result", "<iq type='get'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>")
	has(t, r, "<conference jid='council@conference.localhost' name='Council' autojoin='true'>")

	// The old client publishes a whole new list to PEP: the changed room is
	// republished (its extensions kept), the new one published, and only
	// those are notified.
	publish(t, old, legacy, "current", "<storage xmlns='storage:bookmarks'>"+
		"<conference jid='council@conference.localhost' name='The Council' autojoin='true'><nick>Al</nick></conference>"+
		"<conference jid='orchard@conference.localhost' name='Orchard' autojoin='false'/>"+
		"<url name='Site' url='https://example.org/'/></storage>",
		"pubsub#persist_items", "true", "pubsub#access_model", "whitelist")
	ev = expect(t, a, "notification of the renamed room", eventWith(v1, "name='The Council'"))
	has(t, ev, "minimized='true'")
	expect(t, a, "notification of the new room", eventWith(v1, "orchard@conference.localhost"))
	r = items(t, a, "", v1, "/>")
	if got := itemIDs(r); !slices.Equal(got, []string{"council@conference.localhost", "orchard@conference.localhost"}) {
		t.Fatalf(":1 items = %q", got)
	}
	// Private storage got the list as published, <url/> included.
	x, err := e.Srv.Store.Private().Get(context.Background(), "alice@localhost", legacy)
	if err != nil || !strings.Contains(string(x), "orchard@conference.localhost") || !strings.Contains(string(x), "https://example.org/") {
		t.Fatalf("private storage = %q, %v", x, err)
	}

	// An old client using private XML storage removes the council: the
	// modern client hears the retraction when it next reads (and the PEP
	// legacy node follows).
	iq(t, old, "result", "<iq type='set'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'>"+
		"<conference jid='orchard@conference.localhost' name='Orchard' autojoin='false'/><url name='Site' url='https://example.org/'/></storage></query></iq>")
	r = items(t, a, "", v1, "/>")
	if got := itemIDs(r); !slices.Equal(got, []string{"orchard@conference.localhost"}) {
		t.Fatalf(":1 items after the private-storage edit = %q", got)
	}
	expect(t, a, "retraction of the council", eventWith(v1, "<retract id='council@conference.localhost'/>"))
	r = items(t, old, "", legacy, "/>")
	has(t, r, "orchard@conference.localhost", "https://example.org/")
	hasNot(t, r, "council@")

	// Retracting a :1 item updates both legacy views, keeping the URL.
	iq(t, a, "result", "<iq type='set'><pubsub xmlns='"+nsPubSub+"'><retract node='"+v1+"' notify='true'><item id='orchard@conference.localhost'/></retract></pubsub></iq>")
	ev = expect(t, old, "legacy notification of the removal", func(st *wire.Stanza) bool {
		return event(legacy)(st) && !client.Contains(st, "orchard@")
	})
	has(t, ev, "https://example.org/")
	r = iq(t, old, "result", "<iq type='get'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>")
	hasNot(t, r, "orchard@")
	has(t, r, "https://example.org/")
}
