package roster_test

import (
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/wire"
)

// TestSubscribeReachesResourceThatNeverFetchedRoster: a friend request
// reaches every available resource (RFC 6121 §3.1.3), also one whose client
// never asked for the roster (StanzaJS-style web clients). A request sent
// while no resource is available is kept and delivered at initial presence.
func TestSubscribeReachesResourceThatNeverFetchedRoster(t *testing.T) {
	const timeout = 10 * time.Second
	e := servertest.Start(t, nil)
	alice := e.AddUser("alice", "pw-alice-1")
	bob := e.AddUser("bob", "pw-bob-1")
	carol := e.AddUser("carol", "pw-carol-1")
	isSubscribe := func(from string) func(*wire.Stanza) bool {
		return func(s *wire.Stanza) bool {
			return s.Kind == wire.KindPresence && s.Type == "subscribe" && s.From == from
		}
	}

	web := e.Login("bob", "pw-bob-1", "web") // no roster request
	desk := e.Login("bob", "pw-bob-1", "desk")
	if _, err := desk.IQ(timeout, "<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>", "r"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{web, desk} {
		_ = c.Send("<presence/>")
	}
	// Both are available once each sees the other's presence.
	for _, c := range []*client.Client{web, desk} {
		if _, err := c.Expect(timeout, func(s *wire.Stanza) bool {
			return s.Kind == wire.KindPresence && strings.HasPrefix(s.From, bob+"/") && s.Type == ""
		}); err != nil {
			t.Fatalf("own presence: %v", err)
		}
	}

	a := e.Login("alice", "pw-alice-1", "phone")
	_ = a.Send("<presence to='" + bob + "' type='subscribe'><status>It is me, Alice</status></presence>")
	for name, c := range map[string]*client.Client{"web": web, "desk": desk} {
		st, err := c.Expect(timeout, isSubscribe(alice))
		if err != nil {
			t.Fatalf("%s did not get the subscription request: %v", name, err)
		}
		if !client.Contains(st, "It is me, Alice") {
			t.Errorf("%s: request without its status: %s", name, st.Raw)
		}
	}

	// Nobody available: kept, and delivered at initial presence to a
	// resource that never fetches the roster either.
	_ = web.Close()
	_ = desk.Close()
	c := e.Login("carol", "pw-carol-1", "phone")
	_ = c.Send("<presence to='" + bob + "' type='subscribe'/>")
	if _, err := c.IQ(timeout, "<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>", "p"); err != nil {
		t.Fatal(err)
	}
	web = e.Login("bob", "pw-bob-1", "web2")
	_ = web.Send("<presence/>")
	for _, from := range []string{alice, carol} {
		if _, err := web.Expect(timeout, isSubscribe(from)); err != nil {
			t.Errorf("pending request from %s at initial presence: %v", from, err)
		}
	}
}
