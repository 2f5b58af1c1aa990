package roster

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

const (
	lromeo  = "romeo@example.com"
	ljuliet = "juliet@example.com"
)

// describe lists stanzas compactly for failure messages and comparisons.
func describe(sts []*wire.Stanza) string {
	var parts []string
	for _, st := range sts {
		typ := st.Type
		if typ == "" {
			typ = "available"
		}
		parts = append(parts, st.Kind.String()+"/"+typ+" "+st.From+"→"+st.To)
	}
	return strings.Join(parts, "; ")
}

func subOf(e *env, owner, contact string) string {
	it, ok := e.item(owner, contact)
	if !ok {
		return "absent"
	}
	return stateName(it)
}

// TestLocalHandshake: two local accounts subscribe to each other.
func TestLocalHandshake(t *testing.T) {
	e := newEnv(t, Options{Versioning: true}, lromeo, ljuliet)
	r := e.login(lromeo + "/orchard")
	j := e.login(ljuliet + "/balcony")
	r.Take(t)
	j.Take(t)

	e.send(r, `<presence type='subscribe' to='juliet@example.com' id='s1'><status>Let me see you</status></presence>`)
	gotR, gotJ := r.Take(t), j.Take(t)
	if ps := pushes(t, gotR); len(ps) != 1 || ps[0].Sub != "none" || !ps[0].Ask {
		t.Errorf("romeo's push after subscribe: %v", ps)
	}
	reqs := filter(gotJ, wire.KindPresence, "subscribe")
	if len(reqs) != 1 || reqs[0].From != lromeo || reqs[0].To != ljuliet || !reqs[0].HasChild(wire.NSClient, "status") {
		t.Fatalf("juliet got %s", describe(gotJ))
	}
	if len(pushes(t, gotJ)) != 0 {
		t.Errorf("juliet got a push for a pending request")
	}

	e.send(j, `<presence type='subscribed' to='romeo@example.com'/>`)
	gotR, gotJ = r.Take(t), j.Take(t)
	if ps := pushes(t, gotJ); len(ps) != 1 || ps[0].Sub != "from" {
		t.Errorf("juliet's push after approving: %v", ps)
	}
	if ps := pushes(t, gotR); len(ps) != 1 || ps[0].Sub != "to" || ps[0].Ask {
		t.Errorf("romeo's push after approval: %v", ps)
	}
	if got := filter(gotR, wire.KindPresence, "subscribed"); len(got) != 1 || got[0].From != ljuliet {
		t.Errorf("romeo got %s", describe(gotR))
	}
	if got := filter(gotR, wire.KindPresence, ""); len(got) != 1 || got[0].From != ljuliet+"/balcony" || got[0].To != lromeo {
		t.Errorf("romeo did not get juliet's presence: %s", describe(gotR))
	}

	e.send(j, `<presence type='subscribe' to='romeo@example.com'/>`)
	e.send(r, `<presence type='subscribed' to='juliet@example.com'/>`)
	gotR, gotJ = r.Take(t), j.Take(t)
	if got := filter(gotJ, wire.KindPresence, ""); len(got) != 1 || got[0].From != lromeo+"/orchard" {
		t.Errorf("juliet did not get romeo's presence: %s", describe(gotJ))
	}
	if ps := pushes(t, gotR); len(ps) != 1 || ps[0].Sub != "both" {
		t.Errorf("romeo's push after approving: %v", ps)
	}
	if a, b := subOf(e, lromeo, ljuliet), subOf(e, ljuliet, lromeo); a != "Both" || b != "Both" {
		t.Errorf("final states %s / %s, want Both / Both", a, b)
	}

	// Cancelling: juliet unsubscribes from romeo; romeo no longer has
	// "from", and juliet sees romeo go unavailable.
	e.send(j, `<presence type='unsubscribe' to='romeo@example.com'/>`)
	gotR, gotJ = r.Take(t), j.Take(t)
	if a, b := subOf(e, lromeo, ljuliet), subOf(e, ljuliet, lromeo); a != "To" || b != "From" {
		t.Errorf("after unsubscribe %s / %s, want To / From", a, b)
	}
	if got := filter(gotJ, wire.KindPresence, "unavailable"); len(got) != 1 || got[0].From != lromeo+"/orchard" {
		t.Errorf("juliet after unsubscribe: %s", describe(gotJ))
	}
	if got := filter(gotR, wire.KindPresence, "unsubscribe"); len(got) != 1 {
		t.Errorf("romeo after unsubscribe: %s", describe(gotR))
	}

	// Revoking: romeo's subscription to juliet is cancelled by juliet.
	e.send(j, `<presence type='unsubscribed' to='romeo@example.com'/>`)
	gotR, _ = r.Take(t), j.Take(t)
	if a, b := subOf(e, lromeo, ljuliet), subOf(e, ljuliet, lromeo); a != "None" || b != "None" {
		t.Errorf("after unsubscribed %s / %s, want None / None", a, b)
	}
	if got := filter(gotR, wire.KindPresence, "unavailable"); len(got) != 1 || got[0].From != ljuliet+"/balcony" {
		t.Errorf("romeo after unsubscribed: %s", describe(gotR))
	}
}

// both makes romeo and juliet subscribed to each other.
func both(e *env, a, b string) {
	e.put(a, storage.RosterItem{JID: b, Subscription: storage.SubBoth})
	e.put(b, storage.RosterItem{JID: a, Subscription: storage.SubBoth})
}

func TestInitialPresenceAndProbes(t *testing.T) {
	e := newEnv(t, Options{}, lromeo, ljuliet)
	both(e, lromeo, ljuliet)
	j := e.login(ljuliet + "/balcony")
	garden := e.login(lromeo + "/garden")
	j.Take(t)
	garden.Take(t)
	e.mu.Lock()
	e.available = nil
	e.mu.Unlock()

	orchard := e.bind(lromeo + "/orchard")
	e.send(orchard, `<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>`)
	orchard.Take(t)
	e.send(orchard, `<presence id='p1'><show>away</show><priority>7</priority><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/></presence>`)

	if orchard.Priority() != 7 || orchard.Presence() == nil {
		t.Errorf("presence not recorded: priority %d", orchard.Priority())
	}
	gotJ := filter(j.Take(t), wire.KindPresence, "")
	if len(gotJ) != 1 || gotJ[0].From != lromeo+"/orchard" || gotJ[0].To != ljuliet ||
		!gotJ[0].HasChild("http://jabber.org/protocol/caps", "c") || !gotJ[0].HasChild(wire.NSClient, "show") {
		t.Errorf("juliet got %s", describe(gotJ))
	}
	gotG := filter(garden.Take(t), wire.KindPresence, "")
	if len(gotG) != 1 || gotG[0].From != lromeo+"/orchard" || gotG[0].To != lromeo+"/garden" {
		t.Errorf("romeo's other resource got %s", describe(gotG))
	}
	gotO := filter(orchard.Take(t), wire.KindPresence, "")
	var from []string
	for _, st := range gotO {
		if st.To != lromeo+"/orchard" {
			t.Errorf("orchard got presence addressed to %q", st.To)
		}
		from = append(from, st.From)
	}
	slices.Sort(from)
	want := []string{ljuliet + "/balcony", lromeo + "/garden", lromeo + "/orchard"}
	if !slices.Equal(from, want) {
		t.Errorf("orchard got presence from %v, want %v", from, want)
	}
	e.mu.Lock()
	avail := e.available
	e.mu.Unlock()
	if len(avail) != 1 || avail[0] != orchard {
		t.Errorf("SessionAvailable ran %d times", len(avail))
	}

	// Subsequent presence: broadcast again, no probes, no second
	// SessionAvailable.
	e.send(orchard, `<presence><show>dnd</show></presence>`)
	if got := filter(j.Take(t), wire.KindPresence, ""); len(got) != 1 || !got[0].HasChild(wire.NSClient, "show") {
		t.Errorf("juliet got %s", describe(got))
	}
	if got := filter(orchard.Take(t), wire.KindPresence, ""); len(got) != 1 || got[0].From != lromeo+"/orchard" {
		t.Errorf("subsequent presence reached orchard as %s", describe(got))
	}
	e.mu.Lock()
	n := len(e.available)
	e.mu.Unlock()
	if n != 1 {
		t.Errorf("SessionAvailable ran again")
	}

	// Unavailable: broadcast, and the session is no longer available.
	e.send(orchard, `<presence type='unavailable'><status>bye</status></presence>`)
	if got := filter(j.Take(t), wire.KindPresence, "unavailable"); len(got) != 1 || !got[0].HasChild(wire.NSClient, "status") {
		t.Errorf("juliet got %s", describe(got))
	}
	if got := filter(garden.Take(t), wire.KindPresence, "unavailable"); len(got) != 1 {
		t.Errorf("garden got %s", describe(got))
	}
	if orchard.Presence() != nil {
		t.Error("presence kept after unavailable")
	}
	// Nothing more to send when the session then ends.
	e.unbind(orchard)
	if got := j.Take(t); len(got) != 0 {
		t.Errorf("juliet got %s after a clean logout", describe(got))
	}
}

// TestPresenceOnlyToSubscribers: broadcasts follow the subscription state.
func TestPresenceOnlyToSubscribers(t *testing.T) {
	tests := []struct {
		sub          storage.Subscription // romeo's item for juliet
		getsPresence bool                 // juliet sees romeo
		probes       bool                 // romeo probes juliet
	}{
		{storage.SubNone, false, false},
		{storage.SubTo, false, true},
		{storage.SubFrom, true, false},
		{storage.SubBoth, true, true},
	}
	for _, tc := range tests {
		t.Run(string(tc.sub), func(t *testing.T) {
			e := newEnv(t, Options{}, lromeo)
			e.put(lromeo, storage.RosterItem{JID: juliet, Subscription: tc.sub})
			e.login(lromeo + "/orchard")
			got := e.spied()
			if n := len(filter(got, wire.KindPresence, "")); (n == 1) != tc.getsPresence || n > 1 {
				t.Errorf("presence to contact: %s", describe(got))
			}
			probes := filter(got, wire.KindPresence, "probe")
			if (len(probes) == 1) != tc.probes || len(probes) > 1 {
				t.Errorf("probes: %s", describe(got))
			}
			if tc.probes && (probes[0].From != lromeo+"/orchard" || probes[0].To != juliet) {
				t.Errorf("probe from %q to %q", probes[0].From, probes[0].To)
			}
		})
	}
}

func TestProbeAnswers(t *testing.T) {
	const prober = "nurse@" + spyDomain
	tests := []struct {
		name   string
		item   *storage.RosterItem // juliet's item for the prober
		to     string
		online bool
		want   string // describe() of what the prober's server gets
	}{
		{"subscribed", &storage.RosterItem{JID: prober, Subscription: storage.SubFrom}, ljuliet, true,
			"presence/available juliet@example.com/balcony→nurse@spy.example/x; presence/available juliet@example.com/chamber→nurse@spy.example/x"},
		{"subscribed to one resource", &storage.RosterItem{JID: prober, Subscription: storage.SubBoth}, ljuliet + "/chamber", true,
			"presence/available juliet@example.com/chamber→nurse@spy.example/x"},
		{"subscribed, offline", &storage.RosterItem{JID: prober, Subscription: storage.SubBoth}, ljuliet, false, ""},
		{"not subscribed", &storage.RosterItem{JID: prober, Subscription: storage.SubTo}, ljuliet, true,
			"presence/unsubscribed juliet@example.com→nurse@spy.example"},
		{"stranger", nil, ljuliet, true, "presence/unsubscribed juliet@example.com→nurse@spy.example"},
		{"request pending", &storage.RosterItem{JID: prober, Subscription: storage.SubNone, PendingIn: true}, ljuliet, true, ""},
		{"no such account", nil, "ghost@example.com", false, "presence/unsubscribed ghost@example.com→nurse@spy.example"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{}, ljuliet)
			if tc.item != nil {
				e.put(ljuliet, *tc.item)
			}
			if tc.online {
				e.login(ljuliet + "/balcony")
				e.login(ljuliet + "/chamber")
			}
			e.spied()
			e.deliver(`<presence type='probe' from='` + prober + `/x' to='` + tc.to + `'/>`)
			got := e.spied()
			slices.SortFunc(got, func(a, b *wire.Stanza) int { return strings.Compare(a.From, b.From) })
			if d := describe(got); d != tc.want {
				t.Errorf("got %q\nwant %q", d, tc.want)
			}
		})
	}
}

func TestPendingRequestRedelivered(t *testing.T) {
	e := newEnv(t, Options{}, lromeo, ljuliet)
	r := e.login(lromeo + "/orchard")
	e.send(r, `<presence type='subscribe' to='juliet@example.com'><status>please</status></presence>`)

	for i := range 2 { // each initial presence until answered
		j := e.login(ljuliet + fmt.Sprintf("/r%d", i))
		reqs := filter(j.Take(t), wire.KindPresence, "subscribe")
		if len(reqs) != 1 || reqs[0].From != lromeo || !reqs[0].HasChild(wire.NSClient, "status") {
			t.Fatalf("login %d: requests %s", i, describe(reqs))
		}
		e.unbind(j)
	}
	j := e.login(ljuliet + "/r2")
	j.Take(t)
	e.send(j, `<presence type='subscribed' to='romeo@example.com'/>`)
	e.unbind(j)
	j = e.login(ljuliet + "/r3")
	if reqs := filter(j.Take(t), wire.KindPresence, "subscribe"); len(reqs) != 0 {
		t.Errorf("answered request delivered again")
	}
	if a := subOf(e, lromeo, ljuliet); a != "To" {
		t.Errorf("romeo's state %s", a)
	}
}

func TestPreApprovalLocal(t *testing.T) {
	e := newEnv(t, Options{}, lromeo, ljuliet)
	r := e.login(lromeo + "/orchard")
	j := e.login(ljuliet + "/balcony")
	r.Take(t)
	j.Take(t)

	e.send(r, `<presence type='subscribed' to='juliet@example.com'/>`)
	if got := j.Take(t); len(got) != 0 {
		t.Errorf("pre-approval was routed: %s", describe(got))
	}
	if ps := pushes(t, r.Take(t)); len(ps) != 1 || !ps[0].Approved || ps[0].Sub != "none" {
		t.Errorf("pre-approval push %v", ps)
	}

	e.send(j, `<presence type='subscribe' to='romeo@example.com'/>`)
	gotR, gotJ := r.Take(t), j.Take(t)
	if got := filter(gotR, wire.KindPresence, "subscribe"); len(got) != 0 {
		t.Errorf("pre-approved request reached romeo")
	}
	if ps := pushes(t, gotR); len(ps) != 1 || ps[0].Sub != "from" || ps[0].Approved {
		t.Errorf("romeo's push %v", ps)
	}
	if got := filter(gotJ, wire.KindPresence, "subscribed"); len(got) != 1 {
		t.Errorf("juliet got %s", describe(gotJ))
	}
	if got := filter(gotJ, wire.KindPresence, ""); len(got) != 1 || got[0].From != lromeo+"/orchard" {
		t.Errorf("juliet did not get romeo's presence: %s", describe(gotJ))
	}
	if a, b := subOf(e, lromeo, ljuliet), subOf(e, ljuliet, lromeo); a != "From" || b != "To" {
		t.Errorf("states %s / %s", a, b)
	}
}

func TestSubscribeToMissingAccount(t *testing.T) {
	e := newEnv(t, Options{}, lromeo)
	r := e.login(lromeo + "/orchard")
	r.Take(t)
	e.send(r, `<presence type='subscribe' to='ghost@example.com'/>`)
	got := r.Take(t)
	if d := describe(filter(got, wire.KindPresence, "unsubscribed")); d != "presence/unsubscribed ghost@example.com→romeo@example.com" {
		t.Errorf("got %s", describe(got))
	}
	if s := subOf(e, lromeo, "ghost@example.com"); s != "None" {
		t.Errorf("state %s, want None", s)
	}
}

func TestDirectedPresenceAndDisconnect(t *testing.T) {
	e := newEnv(t, Options{}, lromeo, ljuliet, "bob@example.com")
	both(e, lromeo, ljuliet)
	j := e.login(ljuliet + "/balcony")
	bob := e.login("bob@example.com/x")
	garden := e.login(lromeo + "/garden")
	r := e.login(lromeo + "/orchard")
	for _, s := range []*fakeSession{j, bob, garden, r} {
		s.Take(t)
	}
	e.spied()

	e.send(r, `<presence to='bob@example.com/x'><status>psst</status></presence>`)
	e.send(r, `<presence to='room@`+spyDomain+`/romeo'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
	e.send(r, `<presence to='other@`+spyDomain+`'/>`)
	e.send(r, `<presence type='unavailable' to='other@`+spyDomain+`'/>`)
	e.send(r, `<presence to='juliet@example.com'/>`) // a subscriber: covered by the broadcast
	if got := filter(bob.Take(t), wire.KindPresence, ""); len(got) != 1 || got[0].From != lromeo+"/orchard" || !got[0].HasChild(wire.NSClient, "status") {
		t.Errorf("bob got %s", describe(got))
	}
	if got := e.spied(); len(got) != 3 || !got[0].HasChild("http://jabber.org/protocol/muc", "x") {
		t.Errorf("spy got %s", describe(got))
	}
	j.Take(t)

	e.unbind(r) // the connection drops
	if got := describe(bob.Take(t)); got != "presence/unavailable romeo@example.com/orchard→bob@example.com/x" {
		t.Errorf("bob got %s", got)
	}
	if got := describe(e.spied()); got != "presence/unavailable romeo@example.com/orchard→room@spy.example/romeo" {
		t.Errorf("spy got %s", got)
	}
	if got := describe(j.Take(t)); got != "presence/unavailable romeo@example.com/orchard→juliet@example.com" {
		t.Errorf("juliet got %s", got)
	}
	if got := describe(garden.Take(t)); got != "presence/unavailable romeo@example.com/orchard→romeo@example.com/garden" {
		t.Errorf("garden got %s", got)
	}
	e.m.dmu.Lock()
	n := len(e.m.directed)
	e.m.dmu.Unlock()
	if n != 0 {
		t.Errorf("%d directed-presence sets left", n)
	}
}

// TestDirectedWithoutInitial: a session that never sent initial presence
// still takes back its directed presence when it ends, and nothing else.
func TestDirectedWithoutInitial(t *testing.T) {
	e := newEnv(t, Options{}, lromeo, ljuliet)
	both(e, lromeo, ljuliet)
	j := e.login(ljuliet + "/balcony")
	j.Take(t)
	r := e.bind(lromeo + "/orchard")
	e.send(r, `<presence to='room@`+spyDomain+`/romeo'/>`)
	e.spied()
	e.unbind(r)
	if got := describe(e.spied()); got != "presence/unavailable romeo@example.com/orchard→room@spy.example/romeo" {
		t.Errorf("spy got %s", got)
	}
	if got := j.Take(t); len(got) != 0 {
		t.Errorf("juliet got %s", describe(got))
	}
}

// TestReplacedSession: when a new session takes over a full JID and is
// already available, the old one's end does not announce unavailable.
func TestReplacedSession(t *testing.T) {
	e := newEnv(t, Options{}, lromeo, ljuliet)
	both(e, lromeo, ljuliet)
	j := e.login(ljuliet + "/balcony")
	old := e.login(lromeo + "/orchard")
	e.send(old, `<presence to='room@`+spyDomain+`/romeo'/>`)
	e.send(old, `<presence to='hall@`+spyDomain+`/romeo'/>`)
	nu := e.login(lromeo + "/orchard")
	e.send(nu, `<presence to='room@`+spyDomain+`/romeo'/>`)
	j.Take(t)
	e.spied()
	e.unbind(old)
	if got := j.Take(t); len(got) != 0 {
		t.Errorf("juliet got %s", describe(got))
	}
	if got := describe(e.spied()); got != "presence/unavailable romeo@example.com/orchard→hall@spy.example/romeo" {
		t.Errorf("spy got %s", got)
	}
}

func TestPriority(t *testing.T) {
	tests := []struct {
		xml  string
		want int
	}{
		{`<presence/>`, 0},
		{`<presence><priority>5</priority></presence>`, 5},
		{`<presence><priority> -3 </priority></presence>`, -3},
		{`<presence><priority>-129</priority></presence>`, -128},
		{`<presence><priority>300</priority></presence>`, 127},
		{`<presence><priority>high</priority></presence>`, 0},
		{`<presence><status>priority</status></presence>`, 0},
	}
	for _, tc := range tests {
		st, err := wire.ParseElement([]byte(tc.xml), wire.NSClient)
		if err != nil {
			t.Fatal(err)
		}
		if got := priority(st); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.xml, got, tc.want)
		}
	}
}

func TestBadPresenceType(t *testing.T) {
	e := newEnv(t, Options{}, lromeo)
	r := e.bind(lromeo + "/orchard")
	e.send(r, `<presence type='bogus' id='b'/>`)
	got := r.Take(t)
	if len(got) != 1 || errorCond(got[0]) != "bad-request" {
		t.Errorf("got %s", describe(got))
	}
}

// TestConcurrentSubscriptions: every user subscribes to every other at once,
// then approves at once; all end with "both" (run with -race).
func TestConcurrentSubscriptions(t *testing.T) {
	const n = 8
	var users []string
	for i := range n {
		users = append(users, fmt.Sprintf("u%d@example.com", i))
	}
	e := newEnv(t, Options{Versioning: true}, users...)
	sessions := make([]*fakeSession, n)
	for i, u := range users {
		sessions[i] = e.login(u + "/r")
	}
	phase := func(typ string) {
		var wg sync.WaitGroup
		for i := range users {
			wg.Go(func() {
				for k, v := range users {
					if k != i {
						e.send(sessions[i], `<presence type='`+typ+`' to='`+v+`'/>`)
					}
				}
			})
		}
		wg.Wait()
	}
	phase("subscribe")
	phase("subscribed")
	for _, u := range users {
		for _, v := range users {
			if u != v {
				if s := subOf(e, u, v); s != "Both" {
					t.Errorf("%s → %s: %s", u, v, s)
				}
			}
		}
	}
}
