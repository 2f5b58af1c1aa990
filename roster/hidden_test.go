package roster

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/sqlite"
	"github.com/xmppd/xmppd/wire"
)

// envMaker builds the test world over one kind of roster store.
type envMaker func(t *testing.T, opts Options, accounts ...string) *env

var stores = map[string]envMaker{
	"mem":    newEnv,
	"sqlite": newSQLiteEnv,
}

// newSQLiteEnv is newEnv over a new SQLite file.
func newSQLiteEnv(t *testing.T, opts Options, accounts ...string) *env {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, j := range accounts {
		if err := st.Accounts().Create(t.Context(), storage.Account{JID: j}); err != nil {
			t.Fatal(err)
		}
	}
	return newEnvWith(t, opts, st.Roster(), sqliteAccounts{st.Accounts()})
}

// rosterOf returns the roster result s gets, as "jid sub ask approved name
// groups" lines.
func rosterOf(t *testing.T, e *env, s *fakeSession) []string {
	t.Helper()
	e.send(s, `<iq type='get' id='get'><query xmlns='jabber:iq:roster'/></iq>`)
	r := decodeRoster(t, answer(t, s.Take(t), "get"))
	if r.Query == nil {
		t.Fatal("empty roster result")
	}
	var out []string
	for _, it := range r.Query.Items {
		out = append(out, strings.Join([]string{it.JID, "sub=" + it.Subscription, "ask=" + it.Ask,
			"approved=" + it.Approved, "name=" + it.Name, "groups=" + strings.Join(it.Groups, ",")}, " "))
	}
	return out
}

func pushList(t *testing.T, sts []*wire.Stanza) string {
	t.Helper()
	var parts []string
	for _, p := range pushes(t, sts) {
		p.Ver = ""
		parts = append(parts, p.String())
	}
	return strings.Join(parts, "; ")
}

// TestAddedItemVisibleWhilePending is the regression test for the hidden
// flag: an item the user added herself with neither name nor groups used to
// vanish from her roster while a subscription request from that contact was
// pending (the module guessed "never added by the user" from the item's
// contents), and was deleted if she refused the request or the contact
// withdrew it. Now it stays in roster results with the subscription and ask
// of RFC 6121 (pending-in has no attribute; ask is only the user's own
// request), and each answer pushes only what the user can see change.
func TestAddedItemVisibleWhilePending(t *testing.T) {
	const none = ljuliet + " sub=none ask= approved= name= groups="
	// start: romeo adds juliet with no name and no groups, juliet asks to
	// subscribe to romeo.
	start := func(t *testing.T, mk envMaker) (*env, *fakeSession, *fakeSession) {
		t.Helper()
		e := mk(t, Options{Versioning: true, MaxItems: 10}, lromeo, ljuliet)
		r := e.login(lromeo + "/orchard")
		r.Take(t)
		e.send(r, `<iq type='set' id='add'><query xmlns='jabber:iq:roster'><item jid='`+ljuliet+`'/></query></iq>`)
		got := r.Take(t)
		if st := answer(t, got, "add"); st.Type != "result" {
			t.Fatalf("roster set: %s", st.Raw)
		}
		if p := pushList(t, got); p != ljuliet+" sub=none ask=false approved=false groups=[] ver=\"\"" {
			t.Fatalf("roster set pushed %s", p)
		}

		j := e.login(ljuliet + "/balcony")
		j.Take(t)
		e.send(j, `<presence type='subscribe' to='`+lromeo+`'/>`)
		got = r.Take(t)
		if reqs := filter(got, wire.KindPresence, "subscribe"); len(reqs) != 1 || reqs[0].From != ljuliet || reqs[0].To != lromeo {
			t.Fatalf("romeo got %s, want juliet's request", describe(got))
		}
		if p := pushList(t, got); p != "" {
			t.Errorf("the request pushed %s; nothing romeo can see changed", p)
		}
		if it, ok := e.item(lromeo, ljuliet); !ok || it.Hidden || !it.PendingIn || stateName(it) != "None+PendingIn" {
			t.Fatalf("stored %+v, want visible None+PendingIn", it)
		}
		if got := rosterOf(t, e, r); len(got) != 1 || got[0] != none {
			t.Fatalf("roster while the request is pending: %q, want [%q]", got, none)
		}
		j.Take(t)
		return e, r, j
	}

	for name, mk := range stores {
		t.Run(name, func(t *testing.T) {
			t.Run("Pending", func(t *testing.T) {
				e, r, _ := start(t, mk)
				// A second resource logging in sees both the item and the request.
				g := e.login(lromeo + "/garden")
				if reqs := filter(g.Take(t), wire.KindPresence, "subscribe"); len(reqs) != 1 {
					t.Errorf("new resource got %d requests", len(reqs))
				}
				if got := rosterOf(t, e, g); len(got) != 1 || got[0] != none {
					t.Errorf("roster of a new resource: %q", got)
				}
				// A name and group set while pending keep the request.
				e.send(r, `<iq type='set' id='n'><query xmlns='jabber:iq:roster'><item jid='`+ljuliet+`' name='J'/></query></iq>`)
				if p := pushList(t, r.Take(t)); p != ljuliet+" sub=none ask=false approved=false groups=[] ver=\"\"" {
					t.Errorf("rename pushed %s", p)
				}
				if it, _ := e.item(lromeo, ljuliet); !it.PendingIn || it.Hidden {
					t.Errorf("after rename: %+v", it)
				}
			})
			t.Run("Approve", func(t *testing.T) {
				e, r, j := start(t, mk)
				e.send(r, `<presence type='subscribed' to='`+ljuliet+`'/>`)
				if p := pushList(t, r.Take(t)); p != ljuliet+" sub=from ask=false approved=false groups=[] ver=\"\"" {
					t.Errorf("approval pushed %s", p)
				}
				if got := rosterOf(t, e, r); len(got) != 1 || got[0] != ljuliet+" sub=from ask= approved= name= groups=" {
					t.Errorf("roster after approval: %q", got)
				}
				if p := pushList(t, j.Take(t)); !strings.HasPrefix(p, lromeo+" sub=to ask=false") {
					t.Errorf("juliet's push %s", p)
				}
			})
			t.Run("Refuse", func(t *testing.T) {
				e, r, j := start(t, mk)
				e.send(r, `<presence type='unsubscribed' to='`+ljuliet+`'/>`)
				if p := pushList(t, r.Take(t)); p != "" {
					t.Errorf("refusal pushed %s", p)
				}
				it, ok := e.item(lromeo, ljuliet)
				if !ok || it.PendingIn || it.Hidden {
					t.Fatalf("after refusal: %+v (found %v), want romeo's item kept, request gone", it, ok)
				}
				if got := rosterOf(t, e, r); len(got) != 1 || got[0] != none {
					t.Errorf("roster after refusal: %q", got)
				}
				if got := filter(j.Take(t), wire.KindPresence, "unsubscribed"); len(got) != 1 {
					t.Errorf("juliet got %d unsubscribed", len(got))
				}
			})
			t.Run("Withdrawn", func(t *testing.T) {
				e, r, j := start(t, mk)
				e.send(j, `<presence type='unsubscribe' to='`+lromeo+`'/>`)
				got := r.Take(t)
				if len(filter(got, wire.KindPresence, "unsubscribe")) != 1 || pushList(t, got) != "" {
					t.Errorf("withdrawal: romeo got %s, pushes %s", describe(got), pushList(t, got))
				}
				if it, ok := e.item(lromeo, ljuliet); !ok || it.PendingIn {
					t.Fatalf("after withdrawal: %+v (found %v)", it, ok)
				}
				if got := rosterOf(t, e, r); len(got) != 1 || got[0] != none {
					t.Errorf("roster after withdrawal: %q", got)
				}
			})
			t.Run("SubscribeBack", func(t *testing.T) {
				e, r, _ := start(t, mk)
				e.send(r, `<presence type='subscribe' to='`+ljuliet+`'/>`)
				if p := pushList(t, r.Take(t)); p != ljuliet+" sub=none ask=true approved=false groups=[] ver=\"\"" {
					t.Errorf("subscribe pushed %s", p)
				}
				if got := rosterOf(t, e, r); len(got) != 1 || got[0] != ljuliet+" sub=none ask=subscribe approved= name= groups=" {
					t.Errorf("roster: %q", got)
				}
			})
			t.Run("Remove", func(t *testing.T) {
				e, r, j := start(t, mk)
				e.send(r, `<iq type='set' id='rm'><query xmlns='jabber:iq:roster'><item jid='`+ljuliet+`' subscription='remove'/></query></iq>`)
				got := r.Take(t)
				if st := answer(t, got, "rm"); st.Type != "result" {
					t.Fatalf("remove: %s", st.Raw)
				}
				if ps := pushes(t, got); len(ps) != 1 || ps[0].Sub != "remove" {
					t.Errorf("remove pushed %v", ps)
				}
				if got := filter(j.Take(t), wire.KindPresence, "unsubscribed"); len(got) != 1 {
					t.Errorf("juliet got %d unsubscribed", len(got))
				}
			})
		})
	}
}

// TestAddedItemCountsWhilePending: with the old guess, an item the user
// added with no name or groups stopped counting towards MaxItems while a
// request from that contact was pending. A hidden item does not count.
func TestAddedItemCountsWhilePending(t *testing.T) {
	e := newEnv(t, Options{MaxItems: 1}, romeo)
	s := e.login(romeo + "/a")
	s.Take(t)
	e.deliver(`<presence type='subscribe' from='nurse@` + spyDomain + `' to='` + romeo + `'/>`) // hidden
	e.send(s, `<iq type='set' id='s1'><query xmlns='jabber:iq:roster'><item jid='`+juliet+`'/></query></iq>`)
	if st := answer(t, s.Take(t), "s1"); st.Type != "result" {
		t.Fatalf("first item with a hidden one stored: %s", st.Raw)
	}
	e.deliver(`<presence type='subscribe' from='` + juliet + `' to='` + romeo + `'/>`)
	s.Take(t)
	e.send(s, `<iq type='set' id='s2'><query xmlns='jabber:iq:roster'><item jid='tybalt@example.com'/></query></iq>`)
	if st := answer(t, s.Take(t), "s2"); errorCond(st) != "not-allowed" {
		t.Errorf("second item beyond MaxItems 1: %s", st.Raw)
	}
	// Approving the stranger would make a second visible item.
	e.send(s, `<presence type='subscribed' to='nurse@`+spyDomain+`'/>`)
	if got := filter(s.Take(t), wire.KindPresence, "error"); len(got) != 1 || errorCond(got[0]) != "not-allowed" {
		t.Errorf("approving beyond MaxItems: %s", describe(got))
	}
}

// TestHiddenItemTransitions: what makes a stranger's hidden request item
// visible (the user's roster set, her own subscribe, approval) and what
// removes it (refusal, withdrawal, the user's remove), with the pushes each
// gives.
func TestHiddenItemTransitions(t *testing.T) {
	tests := []struct {
		name       string
		user       string // stanza the user sends ("" for none)
		contact    string // presence type the contact sends next ("" for none)
		wantPush   string // pushes the user gets, without versions
		wantStored string // stored state, "absent", with "/hidden" when hidden
	}{
		{"nothing", "", "", "", "None+PendingIn/hidden"},
		{"repeated request", "", "subscribe", "", "None+PendingIn/hidden"},
		{"roster set, no name", `<iq type='set' id='x'><query xmlns='jabber:iq:roster'><item jid='` + juliet + `'/></query></iq>`, "",
			juliet + ` sub=none ask=false approved=false groups=[] ver=""`, "None+PendingIn"},
		{"roster set, then refused", `<iq type='set' id='x'><query xmlns='jabber:iq:roster'><item jid='` + juliet + `'><group>G</group></item></query></iq>`, "",
			juliet + ` sub=none ask=false approved=false groups=[G] ver=""`, "None+PendingIn"},
		{"subscribe", `<presence type='subscribe' to='` + juliet + `'/>`, "",
			juliet + ` sub=none ask=true approved=false groups=[] ver=""`, "None+PendingOut/In"},
		{"approve", `<presence type='subscribed' to='` + juliet + `'/>`, "",
			juliet + ` sub=from ask=false approved=false groups=[] ver=""`, "From"},
		{"refuse", `<presence type='unsubscribed' to='` + juliet + `'/>`, "", "", "absent"},
		{"withdrawn", "", "unsubscribe", "", "absent"},
		{"unsubscribe (no change)", `<presence type='unsubscribe' to='` + juliet + `'/>`, "", "", "None+PendingIn/hidden"},
		{"remove", `<iq type='set' id='x'><query xmlns='jabber:iq:roster'><item jid='` + juliet + `' subscription='remove'/></query></iq>`, "", "", "absent"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{}, romeo)
			s := e.login(romeo + "/a")
			s.Take(t)
			e.deliver(`<presence type='subscribe' from='` + juliet + `' to='` + romeo + `'/>`)
			if p := pushList(t, s.Take(t)); p != "" {
				t.Errorf("stranger's request pushed %s", p)
			}
			if it, _ := e.item(romeo, juliet); !it.Hidden {
				t.Fatalf("stranger's request stored visible: %+v", it)
			}
			if tc.user != "" {
				e.send(s, tc.user)
			}
			if tc.contact != "" {
				e.deliver(`<presence type='` + tc.contact + `' from='` + juliet + `' to='` + romeo + `'/>`)
			}
			if p := pushList(t, s.Take(t)); p != tc.wantPush {
				t.Errorf("pushes %q, want %q", p, tc.wantPush)
			}
			stored := "absent"
			if it, ok := e.item(romeo, juliet); ok {
				stored = stateName(it)
				if it.Hidden {
					stored += "/hidden"
				}
			}
			if stored != tc.wantStored {
				t.Errorf("stored %s, want %s", stored, tc.wantStored)
			}
			listed := len(rosterOf(t, e, s)) == 1
			if want := !strings.HasSuffix(tc.wantStored, "/hidden") && tc.wantStored != "absent"; listed != want {
				t.Errorf("listed in the roster: %v, want %v", listed, want)
			}
			if strings.HasPrefix(tc.name, "roster set, then refused") {
				e.send(s, `<presence type='unsubscribed' to='`+juliet+`'/>`)
				if it, ok := e.item(romeo, juliet); !ok || it.Hidden || it.PendingIn {
					t.Errorf("after refusing an item the user set: %+v (found %v)", it, ok)
				}
			}
		})
	}
}
