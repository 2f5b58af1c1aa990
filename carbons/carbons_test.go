package carbons

import (
	"encoding/xml"
	"github.com/xmppd/xmppd/router/routertest"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/router"

	"github.com/xmppd/xmppd/wire"
)

const (
	alice = "alice@example.com"
	bob   = "bob@example.com"
)

// online binds full with available presence of priority prio, carbons on
// or off.
func (e *env) online(full string, prio int, carbons bool) *fakeSession {
	e.t.Helper()
	s := e.bind(full)
	s.SetPresence(&wire.Stanza{Kind: wire.KindPresence, Name: "presence", Raw: []byte("<presence/>")}, prio)
	if carbons {
		e.enable(s)
	}
	return s
}

func (e *env) enable(s *fakeSession) {
	e.t.Helper()
	if res := e.iq(s, `<iq type='set' id='cb'><enable xmlns='urn:xmpp:carbons:2'/></iq>`, "cb"); res.Type != "result" {
		e.t.Fatalf("enable: %s", res.Raw)
	}
}

// carbon is a decoded copy.
type carbon struct {
	Kind     string // sent or received
	From, To string
	Type     string
	Inner    *wire.Stanza // the forwarded message
}

// carbons returns the carbon copies among sts (and fails on malformed ones).
func carbons(t *testing.T, sts []*wire.Stanza) []carbon {
	t.Helper()
	var out []carbon
	for _, st := range sts {
		if st.Kind != wire.KindMessage || st.PayloadNS != NS {
			continue
		}
		var v struct {
			Wrapper []struct {
				XMLName   xml.Name
				Forwarded struct {
					Message struct {
						Inner []byte `xml:",innerxml"`
						From  string `xml:"from,attr"`
					} `xml:"jabber:client message"`
				} `xml:"urn:xmpp:forward:0 forwarded"`
			} `xml:",any"`
		}
		if err := st.Decode(&v); err != nil || len(v.Wrapper) != 1 {
			t.Fatalf("malformed carbon %s: %v", st.Raw, err)
		}
		if v.Wrapper[0].Forwarded.Message.From == "" {
			t.Fatalf("the forwarded message is not a jabber:client message: %s", st.Raw)
		}
		// Take the inner message out as bytes and parse it.
		raw := string(st.Raw)
		i := strings.Index(raw, "<forwarded xmlns='"+NSForward+"'>") + len("<forwarded xmlns='"+NSForward+"'>")
		j := strings.LastIndex(raw, "</forwarded>")
		inner, err := wire.ParseElement([]byte(raw[i:j]), "")
		if err != nil || inner.Kind != wire.KindOther || inner.NS != wire.NSClient {
			t.Fatalf("forwarded message %q: %v", raw[i:j], err)
		}
		out = append(out, carbon{Kind: v.Wrapper[0].XMLName.Local, From: st.From, To: st.To, Type: st.Type, Inner: inner})
	}
	return out
}

func messages(sts []*wire.Stanza) []*wire.Stanza {
	var out []*wire.Stanza
	for _, st := range sts {
		if st.Kind == wire.KindMessage && st.PayloadNS != NS {
			out = append(out, st)
		}
	}
	return out
}

func TestEnableDisable(t *testing.T) {
	e := newEnv(t, alice, bob)
	a := e.bind(alice + "/phone")
	b := e.bind(bob + "/pc")
	for _, raw := range []string{
		`<iq type='set' id='1'><enable xmlns='urn:xmpp:carbons:2'/></iq>`,
		`<iq type='set' id='1'><enable xmlns='urn:xmpp:carbons:2'/></iq>`, // again: still fine (§8)
	} {
		if res := e.iq(a, raw, "1"); res.Type != "result" || res.To != alice+"/phone" {
			t.Fatalf("%s: %s", raw, res.Raw)
		}
	}
	if !Enabled(a) {
		t.Fatal("not enabled")
	}
	for range 2 {
		if res := e.iq(a, `<iq type='set' id='2'><disable xmlns='urn:xmpp:carbons:2'/></iq>`, "2"); res.Type != "result" {
			t.Fatalf("disable: %s", res.Raw)
		}
	}
	if Enabled(a) {
		t.Fatal("still enabled")
	}
	for _, c := range []struct {
		s         *fakeSession
		raw, cond string
	}{
		{b, `<iq type='set' id='3' to='alice@example.com'><enable xmlns='urn:xmpp:carbons:2'/></iq>`, "not-allowed"},
		{a, `<iq type='set' id='3'><other xmlns='urn:xmpp:carbons:2'/></iq>`, "bad-request"},
		{a, `<iq type='get' id='3'><enable xmlns='urn:xmpp:carbons:2'/></iq>`, "feature-not-implemented"},
	} {
		if res := e.iq(c.s, c.raw, "3"); res.Type != "error" || routertest.Condition(res) != c.cond {
			t.Errorf("%s: %s, want %s", c.raw, res.Raw, c.cond)
		}
	}
	if Enabled(a) {
		t.Error("bob enabled alice's carbons")
	}
	if got := e.r.Features(router.ToServer); !contains(got, NS) {
		t.Errorf("server features %q lack %s", got, NS)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestReceivedAndSent(t *testing.T) {
	e := newEnv(t, alice, bob)
	phone := e.online(alice+"/phone", 0, true)
	laptop := e.online(alice+"/laptop", 0, true)
	old := e.online(alice+"/old", 0, false) // no carbons
	b := e.online(bob+"/pc", 0, false)

	// Received: to one full JID, copied to the other carbons-enabled resource.
	e.send(b, `<message to='alice@example.com/phone' type='chat' id='m1'><body>hi</body></message>`)
	if got := messages(phone.Take(t)); len(got) != 1 || got[0].ID != "m1" {
		t.Errorf("phone: %s", routertest.Describe(got))
	}
	got := laptop.Take(t)
	cs := carbons(t, got)
	if len(got) != 1 || len(cs) != 1 {
		t.Fatalf("laptop got %s", routertest.Describe(got))
	}
	if c := cs[0]; c.Kind != "received" || c.From != alice || c.To != alice+"/laptop" || c.Type != "chat" ||
		c.Inner.ID != "m1" || c.Inner.From != bob+"/pc" || c.Inner.To != alice+"/phone" || !c.Inner.HasChild(wire.NSClient, "body") {
		t.Errorf("received carbon %+v", c)
	}
	if got := old.Take(t); len(got) != 0 {
		t.Errorf("a resource without carbons got %s", routertest.Describe(got))
	}

	// Sent: to the sender's other carbons-enabled resources, not to itself.
	e.send(phone, `<message to='bob@example.com' type='chat' id='m2'><body>hello</body></message>`)
	if got := messages(b.Take(t)); len(got) != 1 {
		t.Errorf("bob: %s", routertest.Describe(got))
	}
	cs = carbons(t, laptop.Take(t))
	if len(cs) != 1 || cs[0].Kind != "sent" || cs[0].From != alice || cs[0].To != alice+"/laptop" ||
		cs[0].Inner.From != alice+"/phone" || cs[0].Inner.To != bob || cs[0].Inner.ID != "m2" {
		t.Errorf("sent carbon %+v", cs)
	}
	if got := phone.Take(t); len(got) != 0 {
		t.Errorf("the sender got %s", routertest.Describe(got))
	}
	if got := old.Take(t); len(got) != 0 {
		t.Errorf("a resource without carbons got %s", routertest.Describe(got))
	}
	// Also when the sender has not enabled carbons itself (§7.2).
	e.send(old, `<message to='bob@example.com' type='chat' id='m3'><body>x</body></message>`)
	if len(carbons(t, phone.Take(t))) != 1 || len(carbons(t, laptop.Take(t))) != 1 {
		t.Error("a message from a resource without carbons was not copied")
	}
}

func TestBareJIDNotDoubled(t *testing.T) {
	e := newEnv(t, alice, bob)
	phone := e.online(alice+"/phone", 0, true)
	laptop := e.online(alice+"/laptop", 5, true)
	away := e.online(alice+"/away", -1, true) // negative priority: no original
	bound := e.bind(alice + "/bound")         // no presence yet: no original
	e.enable(bound)
	b := e.online(bob+"/pc", 0, false)

	e.send(b, `<message to='alice@example.com' type='chat' id='m1'><body>hi all</body></message>`)
	for _, s := range []*fakeSession{phone, laptop} {
		got := s.Take(t)
		if len(messages(got)) != 1 || len(carbons(t, got)) != 0 {
			t.Errorf("%s got %s; want the original only", s.JID(), routertest.Describe(got))
		}
	}
	for _, s := range []*fakeSession{away, bound} {
		got := s.Take(t)
		if cs := carbons(t, got); len(got) != 1 || len(cs) != 1 || cs[0].Kind != "received" {
			t.Errorf("%s got %s; want one received carbon", s.JID(), routertest.Describe(got))
		}
	}

	// Nobody available with priority >= 0: the message is for offline
	// storage; the negative-priority session gets a copy, the one that has
	// not sent presence yet gets the original from offline storage later.
	e2 := newEnv(t, alice, bob)
	away2 := e2.online(alice+"/away", -1, true)
	bound2 := e2.bind(alice + "/bound")
	e2.enable(bound2)
	b2 := e2.online(bob+"/pc", 0, false)
	e2.send(b2, `<message to='alice@example.com' type='chat' id='m3'><body>later</body></message>`)
	if got := away2.Take(t); len(carbons(t, got)) != 1 {
		t.Errorf("away (offline case): %s", routertest.Describe(got))
	}
	if got := bound2.Take(t); len(got) != 0 {
		t.Errorf("bound without presence (offline case): %s", routertest.Describe(got))
	}

	// A full JID that is not bound: chat is delivered by the bare rules.
	e.send(b, `<message to='alice@example.com/gone' type='chat' id='m2'><body>hi</body></message>`)
	if got := phone.Take(t); len(messages(got)) != 1 || len(carbons(t, got)) != 0 {
		t.Errorf("phone: %s", routertest.Describe(got))
	}
	if got := away.Take(t); len(carbons(t, got)) != 1 {
		t.Errorf("away: %s", routertest.Describe(got))
	}
}

func TestEligibility(t *testing.T) {
	e := newEnv(t, alice, bob)
	phone := e.online(alice+"/phone", 0, true)
	laptop := e.online(alice+"/laptop", 0, true)
	b := e.online(bob+"/pc", 0, false)
	for _, c := range []struct {
		msg  string
		copy bool
	}{
		{`<message type='chat'><body>x</body></message>`, true},
		{`<message type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`, true},
		{`<message><body>x</body></message>`, true},
		{`<message type='normal'><body>x</body></message>`, true},
		{`<message><received xmlns='urn:xmpp:receipts' id='r'/></message>`, true},
		{`<message><displayed xmlns='urn:xmpp:chat-markers:0' id='r'/></message>`, true},
		{`<message><propose xmlns='urn:xmpp:jingle-message:0' id='call1'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose><store xmlns='urn:xmpp:hints'/></message>`, true},
		{`<message><x xmlns='jabber:x:conference' jid='room@conference.example.com'/><body>join</body></message>`, true},
		{`<message/>`, false},
		{`<message><thread>t</thread></message>`, false},
		{`<message type='headline'><body>news</body></message>`, false},
		{`<message type='groupchat'><body>x</body></message>`, false},
		{`<message type='chat'><body>x</body><private xmlns='urn:xmpp:carbons:2'/></message>`, false},
		{`<message type='chat'><body>x</body><no-copy xmlns='urn:xmpp:hints'/></message>`, false},
		{`<message type='chat'><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' type='chat'><body>forged</body></message></forwarded></received></message>`, false},
	} {
		// Received side: bob to alice/phone; sent side: phone to bob.
		in := strings.Replace(c.msg, "<message", "<message to='alice@example.com/phone'", 1)
		e.send(b, in)
		gotIn := len(carbons(t, laptop.Take(t))) == 1
		out := strings.Replace(c.msg, "<message", "<message to='bob@example.com/pc'", 1)
		e.send(phone, out)
		gotOut := len(carbons(t, laptop.Take(t))) == 1
		if gotIn != c.copy || gotOut != c.copy {
			t.Errorf("%s: copied received %v, sent %v; want %v", c.msg, gotIn, gotOut, c.copy)
		}
		phone.Take(t)
		b.Take(t)
	}

	// The private element stays in the delivered message (§7).
	e.send(b, `<message to='alice@example.com/phone' type='chat'><body>x</body><private xmlns='urn:xmpp:carbons:2'/></message>`)
	if got := messages(phone.Take(t)); len(got) != 1 || !got[0].HasChild(NS, "private") {
		t.Errorf("delivered private message: %s", routertest.Describe(got))
	}

	// An error to a full JID is copied like the message it answers; to a
	// bare JID it is not delivered at all.
	e.send(b, `<message to='alice@example.com/phone' type='error'><body>x</body><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`)
	if cs := carbons(t, laptop.Take(t)); len(cs) != 1 || cs[0].Type != "error" {
		t.Errorf("error to a full JID: %+v", cs)
	}
	e.send(b, `<message to='alice@example.com' type='error'><body>x</body><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`)
	if got := laptop.Take(t); len(got) != 0 {
		t.Errorf("error to the bare JID: %s", routertest.Describe(got))
	}
}

func TestOwnResourcesAndMUC(t *testing.T) {
	e := newEnv(t, alice)
	phone := e.online(alice+"/phone", 0, true)
	laptop := e.online(alice+"/laptop", 0, true)
	tablet := e.online(alice+"/tablet", 0, true)

	// To another resource of her own: the target gets the original, the
	// third a received copy, the sender nothing.
	e.send(phone, `<message to='alice@example.com/laptop' type='chat' id='n1'><body>note</body></message>`)
	if got := laptop.Take(t); len(messages(got)) != 1 || len(carbons(t, got)) != 0 {
		t.Errorf("laptop: %s", routertest.Describe(got))
	}
	if cs := carbons(t, tablet.Take(t)); len(cs) != 1 || cs[0].Kind != "received" {
		t.Errorf("tablet: %+v", cs)
	}
	if got := phone.Take(t); len(got) != 0 {
		t.Errorf("phone: %s", routertest.Describe(got))
	}
	// To her own bare JID: every available resource gets it once.
	e.send(phone, `<message to='alice@example.com' type='chat' id='n2'><body>note to self</body></message>`)
	for _, s := range []*fakeSession{phone, laptop, tablet} {
		if got := s.Take(t); len(messages(got)) != 1 || len(carbons(t, got)) != 0 {
			t.Errorf("%s: %s", s.JID(), routertest.Describe(got))
		}
	}

	// A private message from a MUC occupant is not copied; one sent to an
	// occupant is.
	e.deliver(`<message from='room@conference.example.org/juliet' to='alice@example.com/phone' type='chat'><body>psst</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>`)
	if got := laptop.Take(t); len(got) != 0 {
		t.Errorf("MUC PM received: %s", routertest.Describe(got))
	}
	phone.Take(t)
	e.send(phone, `<message to='room@conference.example.org/juliet' type='chat'><body>psst</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>`)
	if cs := carbons(t, laptop.Take(t)); len(cs) != 1 || cs[0].Kind != "sent" {
		t.Errorf("MUC PM sent: %+v", cs)
	}
}
