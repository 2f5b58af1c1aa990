package vcard_test

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/vcard"
	"github.com/xmppd/xmppd/wire"
)

const timeout = 10 * time.Second

func presenceFrom(from, typ string) func(*wire.Stanza) bool {
	return func(s *wire.Stanza) bool {
		return s.Kind == wire.KindPresence && s.From == from && s.Type == typ
	}
}

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
	if _, err := b.Expect(timeout, func(s *wire.Stanza) bool {
		return s.Kind == wire.KindPresence && strings.HasPrefix(s.From, aJID+"/") && s.Type == ""
	}); err != nil {
		t.Fatalf("b does not see a: %v", err)
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

func TestVCardOverTheWire(t *testing.T) {
	e := servertest.Start(t, func(c *conf.Config) {
		c.Module("vcard").(*vcard.Config).MaxSize = 4 * conf.KiB
	})
	alice, bob := e.AddUser("alice", "pw-alice-1"), e.AddUser("bob", "pw-bob-1")
	a := e.Login("alice", "pw-alice-1", "phone")
	b := e.Login("bob", "pw-bob-1", "pc")
	subscribeBoth(t, a, b, alice, bob)

	if res := iq(t, b, "<iq type='get' id='d' to='"+e.Domain+"'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", "d"); !client.Contains(res, "var='vcard-temp'") {
		t.Errorf("disco lacks vcard-temp: %s", res.Raw)
	}
	if res := iq(t, a, "<iq type='get' id='g0'><vCard xmlns='vcard-temp'/></iq>", "g0"); res.Type != "result" || !client.Contains(res, "<vCard xmlns='vcard-temp'/>") {
		t.Errorf("own empty vCard: %s", res.Raw)
	}
	if res := iq(t, b, "<iq type='get' id='g1' to='"+alice+"'><vCard xmlns='vcard-temp'/></iq>", "g1"); res.Type != "error" || !client.Contains(res, "service-unavailable") {
		t.Errorf("another's missing vCard: %s", res.Raw)
	}

	img := []byte("GIF89a tiny avatar bytes \x00\x01\x02\xff")
	sum := sha1.Sum(img)
	hash := hex.EncodeToString(sum[:])
	card := "<vCard xmlns='vcard-temp'><FN>Alice</FN><PHOTO><TYPE>image/gif</TYPE><BINVAL>" +
		base64.StdEncoding.EncodeToString(img) + "</BINVAL></PHOTO></vCard>"
	if res := iq(t, a, "<iq type='set' id='s1'>"+card+"</iq>", "s1"); res.Type != "result" {
		t.Fatalf("set: %s", res.Raw)
	}
	// Bob gets her presence again, now with the photo hash.
	want := "<x xmlns='vcard-temp:x:update'><photo>" + hash + "</photo></x>"
	if _, err := b.Expect(timeout, func(s *wire.Stanza) bool {
		return presenceFrom(alice+"/phone", "")(s) && client.Contains(s, want)
	}); err != nil {
		t.Fatalf("bob's view of alice has no photo hash: %v", err)
	}
	// Every later presence carries it, replacing what the client put.
	_ = a.Send("<presence><show>away</show><x xmlns='vcard-temp:x:update'><photo>deadbeef</photo></x></presence>")
	st, err := b.Expect(timeout, func(s *wire.Stanza) bool {
		return presenceFrom(alice+"/phone", "")(s) && client.Contains(s, "<show>away</show>")
	})
	if err != nil || !client.Contains(st, want) || client.Contains(st, "deadbeef") {
		t.Fatalf("presence: %v %s", err, raw(st))
	}

	// A contact's new session learns it from the probe answer too.
	b2 := e.Login("bob", "pw-bob-1", "tablet")
	_ = b2.Send("<presence/>")
	if _, err := b2.Expect(timeout, func(s *wire.Stanza) bool {
		return presenceFrom(alice+"/phone", "")(s) && client.Contains(s, want)
	}); err != nil {
		t.Errorf("probe answer without the hash: %v", err)
	}

	// Bob reads her vCard from her bare JID; the answer comes from the server.
	res := iq(t, b, "<iq type='get' id='g2' to='"+alice+"'><vCard xmlns='vcard-temp'/></iq>", "g2")
	if res.Type != "result" || res.From != alice || !client.Contains(res, card) {
		t.Errorf("bob's get: %s", res.Raw)
	}
	// He cannot change it, and she cannot store a huge one.
	if res := iq(t, b, "<iq type='set' id='s2' to='"+alice+"'><vCard xmlns='vcard-temp'><FN>Mallory</FN></vCard></iq>", "s2"); res.Type != "error" || !client.Contains(res, "forbidden") {
		t.Errorf("bob's set: %s", res.Raw)
	}
	big := "<vCard xmlns='vcard-temp'><DESC>" + strings.Repeat("x", 5000) + "</DESC></vCard>"
	if res := iq(t, a, "<iq type='set' id='s3'>"+big+"</iq>", "s3"); res.Type != "error" || !client.Contains(res, "not-acceptable") {
		t.Errorf("huge vCard: %s", res.Raw)
	}
	if res := iq(t, a, "<iq type='get' id='g3'><vCard xmlns='vcard-temp'/></iq>", "g3"); !client.Contains(res, card) {
		t.Errorf("the refused set changed the vCard: %s", res.Raw)
	}
}

func raw(st *wire.Stanza) string {
	if st == nil {
		return "<nil>"
	}
	return string(st.Raw)
}
