package blocking

import (
	"github.com/xmppd/xmppd/router/routertest"
	"slices"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/wire"
)

const (
	alice = "alice@example.com"
	bob   = "bob@example.com"
	carol = "carol@example.net"
)

func TestMatching(t *testing.T) {
	l := newList([]string{"romeo@montague.net/orchard", "iago@shakespeare.lit", "capulet.com/balcony", "evil.example"})
	for _, c := range []struct {
		j    string
		want bool
	}{
		{"romeo@montague.net/orchard", true},  // that full JID
		{"romeo@montague.net/garden", false},  // another resource
		{"romeo@montague.net", false},         // the bare JID of a blocked full JID
		{"iago@shakespeare.lit", true},        // bare JID
		{"iago@shakespeare.lit/any", true},    // any resource of it
		{"othello@shakespeare.lit", false},    // same domain, other user
		{"capulet.com/balcony", true},         // domain/resource
		{"capulet.com", false},                // its domain
		{"juliet@capulet.com/balcony", false}, // a user's resource of that name
		{"evil.example", true},                // a domain
		{"x@evil.example/r", true},            // everything at it
		{"evil.example/r", true},
		{"sub.evil.example", false}, // subdomains are other domains (XEP-0191 1.3)
		{"notevil.example", false},
	} {
		if got := l.blocks(jid.MustParse(c.j)); got != c.want {
			t.Errorf("blocks(%s) = %v, want %v", c.j, got, c.want)
		}
	}
	if (*list)(nil).blocks(jid.MustParse("a@b")) || newList(nil).blocks(jid.MustParse("a@b")) {
		t.Error("an empty list blocks")
	}
}

func items(t *testing.T, st *wire.Stanza) []string {
	t.Helper()
	type item struct {
		JID string `xml:"jid,attr"`
	}
	var v struct {
		List    []item `xml:"urn:xmpp:blocking blocklist>item"`
		Block   []item `xml:"urn:xmpp:blocking block>item"`
		Unblock []item `xml:"urn:xmpp:blocking unblock>item"`
	}
	if err := st.Decode(&v); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, it := range append(append(v.List, v.Block...), v.Unblock...) {
		out = append(out, it.JID)
	}
	return out
}

func TestCommandsAndPushes(t *testing.T) {
	e := newEnv(t, Options{MaxItems: 4}, alice, bob)
	phone := e.bind(alice + "/phone")
	laptop := e.bind(alice + "/laptop")
	quiet := e.bind(alice + "/quiet") // never asks for the list: no pushes

	res := e.iq(phone, `<iq type='get' id='g1'><blocklist xmlns='urn:xmpp:blocking'/></iq>`, "g1")
	if res.Type != "result" || !strings.Contains(string(res.Raw), "<blocklist xmlns='urn:xmpp:blocking'/>") {
		t.Fatalf("empty blocklist: %s", res.Raw)
	}
	e.iq(laptop, `<iq type='get' id='g2'><blocklist xmlns='urn:xmpp:blocking'/></iq>`, "g2")

	res = e.iq(phone, `<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='Romeo@Montague.net'/><item jid='iago@shakespeare.lit'/><item jid='romeo@montague.net'/></block></iq>`, "b1")
	if res.Type != "result" {
		t.Fatalf("block: %s", res.Raw)
	}
	wantPush := []string{"romeo@montague.net", "iago@shakespeare.lit"} // prepared, once each, as requested
	for _, s := range []*fakeSession{phone, laptop} {
		got := routertest.OfKind(s.Take(t), wire.KindIQ, "set")
		if len(got) != 1 || got[0].PayloadName != "block" || !slices.Equal(items(t, got[0]), wantPush) || got[0].To != s.JID().String() {
			t.Errorf("%s: block push %s", s.JID(), routertest.Describe(got))
		}
	}
	if got := quiet.Take(t); len(got) != 0 {
		t.Errorf("a resource that never asked got %s", routertest.Describe(got))
	}

	res = e.iq(laptop, `<iq type='get' id='g3'><blocklist xmlns='urn:xmpp:blocking'/></iq>`, "g3")
	if got := items(t, res); !slices.Equal(got, []string{"iago@shakespeare.lit", "romeo@montague.net"}) {
		t.Errorf("blocklist = %q", got)
	}

	// Errors.
	for _, c := range []struct{ raw, cond string }{
		{`<iq type='set' id='x'><block xmlns='urn:xmpp:blocking'/></iq>`, "bad-request"},
		{`<iq type='set' id='x'><block xmlns='urn:xmpp:blocking'><item/></block></iq>`, "bad-request"},
		{`<iq type='set' id='x'><block xmlns='urn:xmpp:blocking'><item jid='a@b@c'/></block></iq>`, "jid-malformed"},
		{`<iq type='set' id='x'><blocklist xmlns='urn:xmpp:blocking'/></iq>`, "bad-request"},
		{`<iq type='get' id='x'><block xmlns='urn:xmpp:blocking'/></iq>`, "bad-request"},
		{`<iq type='get' id='x' to='bob@example.com'><blocklist xmlns='urn:xmpp:blocking'/></iq>`, "forbidden"},
		{`<iq type='set' id='x' to='bob@example.com'><block xmlns='urn:xmpp:blocking'><item jid='a@b'/></block></iq>`, "forbidden"},
		// 2 listed + 3 new > 4
		{`<iq type='set' id='x'><block xmlns='urn:xmpp:blocking'><item jid='a@b'/><item jid='c@d'/><item jid='e@f'/></block></iq>`, "not-allowed"},
	} {
		res := e.iq(phone, c.raw, "x")
		if res.Type != "error" || routertest.Condition(res) != c.cond {
			t.Errorf("%s: got %s, want %s", c.raw, res.Raw, c.cond)
		}
	}
	phone.Take(t)
	laptop.Take(t)

	// Already listed entries do not count against the limit.
	if res := e.iq(phone, `<iq type='set' id='b2'><block xmlns='urn:xmpp:blocking'><item jid='romeo@montague.net'/><item jid='a@b'/><item jid='c@d'/></block></iq>`, "b2"); res.Type != "result" {
		t.Fatalf("block up to the limit: %s", res.Raw)
	}
	laptop.Take(t)

	res = e.iq(phone, `<iq type='set' id='u1'><unblock xmlns='urn:xmpp:blocking'><item jid='iago@shakespeare.lit'/><item jid='never@listed'/></unblock></iq>`, "u1")
	if res.Type != "result" {
		t.Fatalf("unblock: %s", res.Raw)
	}
	if got := routertest.OfKind(laptop.Take(t), wire.KindIQ, "set"); len(got) != 1 || got[0].PayloadName != "unblock" ||
		!slices.Equal(items(t, got[0]), []string{"iago@shakespeare.lit", "never@listed"}) {
		t.Errorf("unblock push %s", routertest.Describe(got))
	}
	res = e.iq(phone, `<iq type='set' id='u2'><unblock xmlns='urn:xmpp:blocking'/></iq>`, "u2")
	if res.Type != "result" {
		t.Fatalf("unblock all: %s", res.Raw)
	}
	if got := routertest.OfKind(laptop.Take(t), wire.KindIQ, "set"); len(got) != 1 || !strings.Contains(string(got[0].Raw), "<unblock xmlns='urn:xmpp:blocking'/>") {
		t.Errorf("unblock-all push %s", routertest.Describe(got))
	}
	if got, _ := e.store.Blocklist().List(t.Context(), alice); len(got) != 0 {
		t.Errorf("stored list after unblock-all: %q", got)
	}
}

func block(t *testing.T, e *env, s *fakeSession, jids ...string) {
	t.Helper()
	raw := "<iq type='set' id='blk'><block xmlns='urn:xmpp:blocking'>"
	for _, j := range jids {
		raw += "<item jid='" + j + "'/>"
	}
	if res := e.iq(s, raw+"</block></iq>", "blk"); res.Type != "result" {
		t.Fatalf("block %v: %s", jids, res.Raw)
	}
}

func TestInbound(t *testing.T) {
	e := newEnv(t, Options{}, alice, bob, carol)
	a := e.login(alice + "/phone")
	b := e.login(bob + "/laptop")
	block(t, e, a, bob)
	a.Take(t)
	b.Take(t)

	e.send(b, `<message to='alice@example.com' type='chat' id='m1'><body>hi</body></message>`)
	e.send(b, `<message to='alice@example.com/phone' id='m2'><body>hi</body></message>`)
	e.send(b, `<message to='alice@example.com' type='error' id='m3'/>`)
	e.send(b, `<presence to='alice@example.com'/>`)
	e.send(b, `<presence to='alice@example.com' type='subscribe'/>`)
	e.send(b, `<presence to='alice@example.com' type='probe'/>`)
	e.send(b, `<iq to='alice@example.com' type='get' id='q1'><query xmlns='jabber:iq:version'/></iq>`)
	e.send(b, `<iq to='alice@example.com/phone' type='set' id='q2'><query xmlns='x'/></iq>`)
	e.send(b, `<iq to='alice@example.com/phone' type='result' id='q3'/>`)
	if got := a.Take(t); len(got) != 0 {
		t.Errorf("alice received from a blocked JID: %s", routertest.Describe(got))
	}
	got := b.Take(t)
	var answered []string
	for _, st := range got {
		if st.Type != "error" || routertest.Condition(st) != "service-unavailable" || st.From == "" {
			t.Errorf("bob got %s", st.Raw)
		}
		answered = append(answered, st.ID)
	}
	if !slices.Equal(answered, []string{"m1", "m2", "q1", "q2"}) {
		t.Errorf("answered %q, want m1 m2 q1 q2 (presence, errors and results silently dropped):\n%s", answered, routertest.Describe(got))
	}
	if len(got) > 0 && !strings.Contains(string(got[0].Raw), "<body>hi</body>") {
		t.Errorf("message error lost the original content: %s", got[0].Raw)
	}
	// Messages are not kept for later either.
	if n, _ := e.store.Offline().Count(t.Context(), alice); n != 0 {
		t.Errorf("%d offline messages for alice", n)
	}

	// Others still get through.
	c := e.login(carol + "/pc")
	e.send(c, `<message to='alice@example.com' type='chat' id='m4'><body>hi</body></message>`)
	if got := routertest.OfKind(a.Take(t), wire.KindMessage, "chat"); len(got) != 1 {
		t.Errorf("carol's message: %s", routertest.Describe(got))
	}
}

func TestOutbound(t *testing.T) {
	e := newEnv(t, Options{}, alice, bob)
	a := e.login(alice + "/phone")
	b := e.login(bob + "/laptop")
	block(t, e, a, bob)
	a.Take(t)
	b.Take(t)

	e.send(a, `<message to='bob@example.com' type='chat' id='m1'><body>Can you hear me now?</body></message>`)
	e.send(a, `<presence to='bob@example.com/laptop'/>`)
	e.send(a, `<presence to='bob@example.com' type='subscribe'/>`)
	e.send(a, `<iq to='bob@example.com/laptop' type='get' id='q1'><ping xmlns='urn:xmpp:ping'/></iq>`)
	e.send(a, `<iq to='bob@example.com/laptop' type='result' id='q2'/>`)
	e.send(a, `<message to='bob@example.com' type='error' id='m2'/>`)
	if got := b.Take(t); len(got) != 0 {
		t.Errorf("bob received from alice: %s", routertest.Describe(got))
	}
	got := a.Take(t)
	if len(got) != 4 {
		t.Fatalf("alice got %d answers, want 4:\n%s", len(got), routertest.Describe(got))
	}
	for _, st := range got {
		if st.Type != "error" || routertest.Condition(st) != "not-acceptable+blocked" ||
			!strings.Contains(string(st.Raw), "<error type='cancel'>") || !strings.HasPrefix(st.From, bob) || st.To != alice+"/phone" {
			t.Errorf("answer %s", st.Raw)
		}
	}
	if !strings.Contains(string(got[0].Raw), "<body>Can you hear me now?</body>") {
		t.Errorf("message error lost its body: %s", got[0].Raw)
	}

	// Her own resources and her server stay reachable.
	a2 := e.login(alice + "/laptop")
	a.Take(t)
	e.send(a, `<message to='alice@example.com/laptop' type='chat'><body>note</body></message>`)
	if got := routertest.OfKind(a2.Take(t), wire.KindMessage, "chat"); len(got) != 1 {
		t.Errorf("message to her own resource: %s", routertest.Describe(got))
	}
	block(t, e, a, "example.com")
	e.send(a, `<iq to='example.com' type='get' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
	if got := a.Take(t); len(got) != 1 || routertest.Condition(got[0]) == "not-acceptable+blocked" {
		t.Errorf("iq to her server: %s", routertest.Describe(got))
	}
}

func TestMatchingRulesEnforced(t *testing.T) {
	e := newEnv(t, Options{}, alice, bob, carol)
	a := e.login(alice + "/phone")
	block(t, e, a, "bob@example.com/laptop", "example.net")
	b1 := e.login(bob + "/laptop")
	b2 := e.login(bob + "/tablet")
	c := e.login(carol + "/pc")
	a.Take(t)
	for _, s := range []*fakeSession{b1, b2, c} {
		e.send(s, `<message to='alice@example.com' type='chat'><body>x</body></message>`)
	}
	got := routertest.OfKind(a.Take(t), wire.KindMessage, "chat")
	if len(got) != 1 || got[0].From != bob+"/tablet" {
		t.Errorf("alice got %s; want only bob/tablet's", routertest.Describe(got))
	}
	if errs := routertest.OfKind(b1.Take(t), wire.KindMessage, "error"); len(errs) != 1 {
		t.Errorf("bob/laptop: %s", routertest.Describe(errs))
	}
	if errs := routertest.OfKind(c.Take(t), wire.KindMessage, "error"); len(errs) != 1 {
		t.Errorf("carol (blocked domain): %s", routertest.Describe(errs))
	}
}

func TestPresenceOnBlockAndUnblock(t *testing.T) {
	e := newEnv(t, Options{}, alice, bob)
	e.mutual(alice, bob)
	a := e.login(alice + "/phone")
	b := e.login(bob + "/laptop")
	a.Take(t)
	b.Take(t)

	block(t, e, a, bob)
	if got := routertest.OfKind(b.Take(t), wire.KindPresence, "unavailable"); len(got) != 1 || got[0].From != alice+"/phone" {
		t.Errorf("bob was not told alice left: %s", routertest.Describe(got))
	}
	if got := routertest.OfKind(a.Take(t), wire.KindPresence, "unavailable"); len(got) != 1 || got[0].From != bob+"/laptop" {
		t.Errorf("alice was not shown bob as gone: %s", routertest.Describe(got))
	}

	// Broadcasts no longer cross, either way; a new resource's probes too.
	e.send(a, `<presence><status>away</status></presence>`)
	e.send(b, `<presence><status>here</status></presence>`)
	a2 := e.login(alice + "/laptop")
	for _, st := range b.Take(t) {
		if strings.HasPrefix(st.From, alice) {
			t.Errorf("bob got %s", st.Raw)
		}
	}
	for _, st := range append(a.Take(t), a2.Take(t)...) {
		if strings.HasPrefix(st.From, bob) {
			t.Errorf("alice got %s", st.Raw)
		}
	}
	e.r.Unbind(a2)
	e.r.SessionUnbound(a2)
	if got := b.Take(t); len(got) != 0 {
		t.Errorf("bob got alice/laptop's logout: %s", routertest.Describe(got))
	}
	a.Take(t)

	e.send(a, `<iq type='set' id='u'><unblock xmlns='urn:xmpp:blocking'><item jid='bob@example.com'/></unblock></iq>`)
	if got := routertest.OfKind(b.Take(t), wire.KindPresence, ""); len(got) != 1 || got[0].From != alice+"/phone" || !strings.Contains(string(got[0].Raw), "away") {
		t.Errorf("bob did not get alice's current presence: %s", routertest.Describe(got))
	}
	if got := routertest.OfKind(a.Take(t), wire.KindPresence, ""); len(got) != 1 || got[0].From != bob+"/laptop" || !strings.Contains(string(got[0].Raw), "here") {
		t.Errorf("alice did not get bob's presence back: %s", routertest.Describe(got))
	}
	e.send(b, `<message to='alice@example.com' type='chat'><body>back</body></message>`)
	if got := routertest.OfKind(a.Take(t), wire.KindMessage, "chat"); len(got) != 1 {
		t.Errorf("after unblocking: %s", routertest.Describe(got))
	}
}

func TestRemoteSender(t *testing.T) {
	e := newEnv(t, Options{}, alice)
	a := e.login(alice + "/phone")
	block(t, e, a, "evil.example")
	a.Take(t)
	e.deliver(`<message from='spam@evil.example/x' to='alice@example.com' type='chat'><body>buy</body></message>`)
	e.deliver(`<presence from='spam@evil.example/x' to='alice@example.com' type='subscribe'/>`)
	e.deliver(`<message from='friend@good.example/x' to='alice@example.com' type='chat'><body>hi</body></message>`)
	got := a.Take(t)
	if len(got) != 1 || got[0].From != "friend@good.example/x" {
		t.Errorf("alice got %s", routertest.Describe(got))
	}
	if n, _ := e.store.Offline().Count(t.Context(), alice); n != 0 {
		t.Errorf("%d offline messages", n)
	}
}
