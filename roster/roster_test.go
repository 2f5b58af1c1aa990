package roster

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

// answer returns the iq result or error with id among sts.
func answer(t *testing.T, sts []*wire.Stanza, id string) *wire.Stanza {
	t.Helper()
	for _, st := range sts {
		if st.Kind == wire.KindIQ && st.ID == id && (st.Type == "result" || st.Type == "error") {
			return st
		}
	}
	t.Fatalf("no answer to iq %s among %d stanzas", id, len(sts))
	return nil
}

// errorCond returns the stanza error condition of st ("" if none).
func errorCond(st *wire.Stanza) string {
	if st.Type != "error" {
		return ""
	}
	i := bytes.Index(st.Raw, []byte("<error"))
	if i < 0 {
		return "?"
	}
	rest := st.Raw[i+1:]
	j := bytes.IndexByte(rest, '<')
	if j < 0 {
		return "?"
	}
	name := rest[j+1:]
	k := bytes.IndexAny(name, " />")
	return string(name[:k])
}

type rosterResult struct {
	Query *struct {
		Ver   *string `xml:"ver,attr"`
		Items []struct {
			JID          string   `xml:"jid,attr"`
			Name         string   `xml:"name,attr"`
			Subscription string   `xml:"subscription,attr"`
			Ask          string   `xml:"ask,attr"`
			Approved     string   `xml:"approved,attr"`
			Groups       []string `xml:"group"`
		} `xml:"item"`
	} `xml:"jabber:iq:roster query"`
}

func decodeRoster(t *testing.T, st *wire.Stanza) rosterResult {
	t.Helper()
	var r rosterResult
	if err := st.Decode(&r); err != nil {
		t.Fatalf("bad roster result %s: %v", st.Raw, err)
	}
	return r
}

func TestRosterGetSetPush(t *testing.T) {
	e := newEnv(t, Options{Versioning: true}, romeo)
	a := e.bind(romeo + "/a")
	b := e.bind(romeo + "/b")
	c := e.bind(romeo + "/c") // never asks for the roster: gets no pushes

	e.send(a, `<iq type='get' id='g1'><query xmlns='jabber:iq:roster'/></iq>`)
	res := answer(t, a.Take(t), "g1")
	r := decodeRoster(t, res)
	if r.Query == nil || len(r.Query.Items) != 0 || r.Query.Ver == nil || *r.Query.Ver != "0" {
		t.Fatalf("empty roster result: %s", res.Raw)
	}
	if res.From != romeo || res.To != romeo+"/a" {
		t.Errorf("result from %q to %q", res.From, res.To)
	}
	e.send(b, `<iq type='get' id='g1'><query xmlns='jabber:iq:roster'/></iq>`)
	b.Take(t)

	e.send(a, `<iq type='set' id='s1'><query xmlns='jabber:iq:roster'>
		<item jid='nurse@example.com' name='Nurse' subscription='both' ask='subscribe'><group>Servants</group><group>Capulets</group></item>
	</query></iq>`)
	gotA := a.Take(t)
	if st := answer(t, gotA, "s1"); st.Type != "result" {
		t.Fatalf("set answered %s", st.Raw)
	}
	for name, got := range map[string][]*wire.Stanza{"a": gotA, "b": b.Take(t)} {
		ps := pushes(t, got)
		if len(ps) != 1 {
			t.Fatalf("%s got %d pushes", name, len(ps))
		}
		want := pushed{JID: "nurse@example.com", Name: "Nurse", Sub: "none", Groups: []string{"Capulets", "Servants"}, Ver: "1"}
		if ps[0].String() != want.String() {
			t.Errorf("%s push %v, want %v", name, ps[0], want)
		}
	}
	if n := len(c.Take(t)); n != 0 {
		t.Errorf("uninterested resource got %d stanzas", n)
	}
	it, _ := e.item(romeo, "nurse@example.com")
	if it.Subscription != storage.SubNone || it.Ask {
		t.Errorf("subscription and ask of a roster set must be ignored: %+v", it)
	}

	// Update: the name goes, the groups change, the state stays.
	e.put(romeo, storage.RosterItem{JID: "nurse@example.com", Name: "Nurse", Subscription: storage.SubTo, Groups: []string{"Servants"}})
	e.send(a, `<iq type='set' id='s2'><query xmlns='jabber:iq:roster'><item jid='nurse@example.com'><group>Friends</group></item></query></iq>`)
	ps := pushes(t, a.Take(t))
	if len(ps) != 1 || ps[0].Name != "" || ps[0].Sub != "to" || len(ps[0].Groups) != 1 || ps[0].Groups[0] != "Friends" {
		t.Errorf("update push %v", ps)
	}

	e.send(a, `<iq type='get' id='g2'><query xmlns='jabber:iq:roster'/></iq>`)
	r = decodeRoster(t, answer(t, a.Take(t), "g2"))
	if len(r.Query.Items) != 1 || r.Query.Items[0].Subscription != "to" || *r.Query.Ver != "3" {
		t.Errorf("roster after update: %+v ver %v", r.Query.Items, *r.Query.Ver)
	}
}

func TestRosterSetErrors(t *testing.T) {
	long := strings.Repeat("x", MaxNameBytes+1)
	tests := []struct {
		name, query, cond string
	}{
		{"two items", `<item jid='a@example.com'/><item jid='b@example.com'/>`, "bad-request"},
		{"no item", ``, "bad-request"},
		{"no jid", `<item name='x'/>`, "bad-request"},
		{"duplicate groups", `<item jid='a@example.com'><group>G</group><group>G</group></item>`, "bad-request"},
		{"empty group", `<item jid='a@example.com'><group></group></item>`, "not-acceptable"},
		{"long name", `<item jid='a@example.com' name='` + long + `'/>`, "not-acceptable"},
		{"long group", `<item jid='a@example.com'><group>` + long + `</group></item>`, "not-acceptable"},
		{"own jid", `<item jid='romeo@example.com'/>`, "not-allowed"},
		{"malformed jid", `<item jid='a@b@c@'/>`, "jid-malformed"},
		{"full jid", `<item jid='a@example.com/res'/>`, "jid-malformed"},
		{"remove absent", `<item jid='a@example.com' subscription='remove'/>`, "item-not-found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{}, romeo)
			s := e.bind(romeo + "/a")
			e.send(s, `<iq type='set' id='e1'><query xmlns='jabber:iq:roster'>`+tc.query+`</query></iq>`)
			got := s.Take(t)
			if c := errorCond(answer(t, got, "e1")); c != tc.cond {
				t.Errorf("condition %q, want %q", c, tc.cond)
			}
			if items, _, _ := e.store.Items(t.Context(), romeo); len(items) != 0 {
				t.Errorf("roster changed: %+v", items)
			}
		})
	}
}

func TestRosterMaxItems(t *testing.T) {
	e := newEnv(t, Options{MaxItems: 2}, romeo)
	s := e.bind(romeo + "/a")
	for i := range 2 {
		id := "s" + strconv.Itoa(i)
		e.send(s, `<iq type='set' id='`+id+`'><query xmlns='jabber:iq:roster'><item jid='c`+strconv.Itoa(i)+`@example.com'/></query></iq>`)
		if st := answer(t, s.Take(t), id); st.Type != "result" {
			t.Fatalf("set %d: %s", i, st.Raw)
		}
	}
	e.send(s, `<iq type='set' id='s3'><query xmlns='jabber:iq:roster'><item jid='c3@example.com'/></query></iq>`)
	st := answer(t, s.Take(t), "s3")
	if errorCond(st) != "not-allowed" || !bytes.Contains(st.Raw, []byte("full")) {
		t.Errorf("over the limit: %s", st.Raw)
	}
	// Updating an existing item is fine at the limit.
	e.send(s, `<iq type='set' id='s4'><query xmlns='jabber:iq:roster'><item jid='c1@example.com' name='x'/></query></iq>`)
	if st := answer(t, s.Take(t), "s4"); st.Type != "result" {
		t.Errorf("update at the limit: %s", st.Raw)
	}
	// So is an outbound subscription to a contact already there, but not to a new one.
	e.send(s, `<presence type='subscribe' to='c3@example.com'/>`)
	if got := filter(s.Take(t), wire.KindPresence, "error"); len(got) != 1 || errorCond(got[0]) != "not-allowed" {
		t.Errorf("subscription beyond the limit: %v", got)
	}
}

func TestRosterForbidden(t *testing.T) {
	e := newEnv(t, Options{}, romeo, "tybalt@example.com")
	s := e.bind("tybalt@example.com/x")
	for _, typ := range []string{"get", "set"} {
		e.send(s, `<iq type='`+typ+`' id='f1' to='romeo@example.com'><query xmlns='jabber:iq:roster'><item jid='a@example.com'/></query></iq>`)
		if c := errorCond(answer(t, s.Take(t), "f1")); c != "forbidden" {
			t.Errorf("%s of another's roster: %q, want forbidden", typ, c)
		}
	}
}

func TestRosterVersioning(t *testing.T) {
	e := newEnv(t, Options{Versioning: true}, romeo)
	e.put(romeo, storage.RosterItem{JID: "a@example.com", Subscription: storage.SubBoth})
	e.put(romeo, storage.RosterItem{JID: "b@example.com", Subscription: storage.SubTo})
	s := e.bind(romeo + "/a")

	tests := []struct {
		ver       string // "-" for no ver attribute
		wantItems int
		wantEmpty bool
	}{
		{"-", 2, false},
		{"", 2, false},  // versioning asked, nothing cached
		{"1", 2, false}, // stale
		{"2", 0, true},  // current: empty result
		{"99", 2, false},
	}
	for _, tc := range tests {
		q := `<query xmlns='jabber:iq:roster'/>`
		if tc.ver != "-" {
			q = `<query xmlns='jabber:iq:roster' ver='` + tc.ver + `'/>`
		}
		e.send(s, `<iq type='get' id='v'>`+q+`</iq>`)
		st := answer(t, s.Take(t), "v")
		r := decodeRoster(t, st)
		if tc.wantEmpty {
			if r.Query != nil {
				t.Errorf("ver %q: want an empty result, got %s", tc.ver, st.Raw)
			}
			continue
		}
		if r.Query == nil || len(r.Query.Items) != tc.wantItems || r.Query.Ver == nil || *r.Query.Ver != "2" {
			t.Errorf("ver %q: %s", tc.ver, st.Raw)
		}
	}

	// Without versioning no ver attribute appears anywhere.
	e2 := newEnv(t, Options{}, romeo)
	s2 := e2.bind(romeo + "/a")
	e2.send(s2, `<iq type='get' id='v'><query xmlns='jabber:iq:roster' ver='0'/></iq>`)
	st := answer(t, s2.Take(t), "v")
	if r := decodeRoster(t, st); r.Query == nil || r.Query.Ver != nil {
		t.Errorf("versioning off: %s", st.Raw)
	}
	e2.send(s2, `<iq type='set' id='s'><query xmlns='jabber:iq:roster'><item jid='x@example.com'/></query></iq>`)
	if ps := pushes(t, s2.Take(t)); len(ps) != 1 || ps[0].Ver != "" {
		t.Errorf("push with versioning off: %v", ps)
	}
}

func TestRosterRemove(t *testing.T) {
	tests := []struct {
		state     string
		wantTypes []string // presence types routed to the contact, in order
	}{
		{"None", nil},
		{"None+PendingOut", []string{"unsubscribe"}},
		{"None+PendingIn", []string{"unsubscribed"}},
		{"To", []string{"unsubscribe"}},
		{"From", []string{"unsubscribed", "unavailable"}},
		{"Both", []string{"unsubscribe", "unsubscribed", "unavailable"}},
	}
	for _, tc := range tests {
		t.Run(tc.state, func(t *testing.T) {
			e := newEnv(t, Options{Versioning: true}, romeo)
			it := states[tc.state]
			it.JID = juliet // added by the user with no name or groups: visible, so the removal is pushed
			e.put(romeo, it)
			s := e.login(romeo + "/a")
			s.Take(t)
			e.spied()

			e.send(s, `<iq type='set' id='rm'><query xmlns='jabber:iq:roster'><item jid='`+juliet+`' subscription='remove'/></query></iq>`)
			got := s.Take(t)
			if st := answer(t, got, "rm"); st.Type != "result" {
				t.Fatalf("remove: %s", st.Raw)
			}
			ps := pushes(t, got)
			if len(ps) != 1 || ps[0].Sub != "remove" || ps[0].JID != juliet || ps[0].Ver == "" {
				t.Errorf("pushes %v", ps)
			}
			if _, ok := e.item(romeo, juliet); ok {
				t.Error("item still stored")
			}
			var types []string
			for _, st := range e.spied() {
				types = append(types, st.Type)
				if st.Type != "unavailable" && (st.From != romeo || st.To != juliet) {
					t.Errorf("%s from %q to %q", st.Type, st.From, st.To)
				}
			}
			if strings.Join(types, ",") != strings.Join(tc.wantTypes, ",") {
				t.Errorf("routed %v, want %v", types, tc.wantTypes)
			}
		})
	}
}

// TestHiddenPendingItems: a stranger's unanswered request is kept but not
// shown; answering it makes the item visible, refusing it drops it.
func TestHiddenPendingItems(t *testing.T) {
	e := newEnv(t, Options{Versioning: true}, romeo)
	s := e.login(romeo + "/a")
	s.Take(t)

	e.deliver(`<presence type='subscribe' from='` + juliet + `' to='` + romeo + `'/>`)
	got := s.Take(t)
	if len(filter(got, wire.KindPresence, "subscribe")) != 1 || len(pushes(t, got)) != 0 {
		t.Fatalf("request: %d stanzas, pushes %v", len(got), pushes(t, got))
	}
	e.send(s, `<iq type='get' id='g'><query xmlns='jabber:iq:roster'/></iq>`)
	if r := decodeRoster(t, answer(t, s.Take(t), "g")); len(r.Query.Items) != 0 {
		t.Errorf("pending-only item shown: %+v", r.Query.Items)
	}
	if it, ok := e.item(romeo, juliet); !ok || !it.Hidden || !it.PendingIn {
		t.Errorf("stranger's request stored as %+v (found %v), want hidden and pending", it, ok)
	}

	e.send(s, `<presence type='subscribed' to='`+juliet+`'/>`)
	ps := pushes(t, s.Take(t))
	if len(ps) != 1 || ps[0].Sub != "from" {
		t.Errorf("approval pushes %v", ps)
	}
	if it, _ := e.item(romeo, juliet); it.Hidden {
		t.Errorf("approved item still hidden: %+v", it)
	}

	e.deliver(`<presence type='subscribe' from='nurse@` + spyDomain + `' to='` + romeo + `'/>`)
	s.Take(t)
	e.send(s, `<presence type='unsubscribed' to='nurse@`+spyDomain+`'/>`)
	if ps := pushes(t, s.Take(t)); len(ps) != 0 {
		t.Errorf("refusal pushed %v", ps)
	}
	if _, ok := e.item(romeo, "nurse@"+spyDomain); ok {
		t.Error("refused stranger still stored")
	}
}

func TestStreamFeatures(t *testing.T) {
	e := newEnv(t, Options{Versioning: true})
	if got := string(e.m.StreamFeatures()); got != "<ver xmlns='urn:xmpp:features:rosterver'/><sub xmlns='urn:xmpp:features:pre-approval'/>" {
		t.Errorf("features %s", got)
	}
	e = newEnv(t, Options{})
	if got := string(e.m.StreamFeatures()); got != "<sub xmlns='urn:xmpp:features:pre-approval'/>" {
		t.Errorf("features %s", got)
	}
}
