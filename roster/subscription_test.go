package roster

import (
	"testing"

	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

// The nine states of RFC 6121 Appendix A.1, plus pre-approved variants.
var states = map[string]storage.RosterItem{
	"None":                  {Subscription: storage.SubNone},
	"None+PendingOut":       {Subscription: storage.SubNone, Ask: true},
	"None+PendingIn":        {Subscription: storage.SubNone, PendingIn: true},
	"None+PendingOut/In":    {Subscription: storage.SubNone, Ask: true, PendingIn: true},
	"To":                    {Subscription: storage.SubTo},
	"To+PendingIn":          {Subscription: storage.SubTo, PendingIn: true},
	"From":                  {Subscription: storage.SubFrom},
	"From+PendingOut":       {Subscription: storage.SubFrom, Ask: true},
	"Both":                  {Subscription: storage.SubBoth},
	"None+PreApproved":      {Subscription: storage.SubNone, Approved: true},
	"None+PendingOut+PreAp": {Subscription: storage.SubNone, Ask: true, Approved: true},
	"To+PreApproved":        {Subscription: storage.SubTo, Approved: true},
}

// stateName maps an item back to its Appendix A name.
func stateName(it storage.RosterItem) string {
	for name, s := range states {
		sub := it.Subscription
		if sub == "" {
			sub = storage.SubNone
		}
		if s.Subscription == sub && s.Ask == it.Ask && s.PendingIn == it.PendingIn && s.Approved == it.Approved {
			return name
		}
	}
	return "?" + string(it.Subscription)
}

// transitions are the rows of RFC 6121 Appendix A.2 (outbound: route?) and
// A.3 (inbound: deliver?), one per state and stanza type. "same" is no
// state change. Pre-approval (§3.4) rows follow each table.
var transitions = []struct {
	dir, typ, state string
	pass            bool // routed (outbound) or delivered (inbound)
	next            string
	autoReply       bool // inbound subscribe answered by the server
}{
	// A.2.1 outbound subscribe: always routed.
	{"out", "subscribe", "None", true, "None+PendingOut", false},
	{"out", "subscribe", "None+PendingOut", true, "same", false},
	{"out", "subscribe", "None+PendingIn", true, "None+PendingOut/In", false},
	{"out", "subscribe", "None+PendingOut/In", true, "same", false},
	{"out", "subscribe", "To", true, "same", false},
	{"out", "subscribe", "To+PendingIn", true, "same", false},
	{"out", "subscribe", "From", true, "From+PendingOut", false},
	{"out", "subscribe", "From+PendingOut", true, "same", false},
	{"out", "subscribe", "Both", true, "same", false},
	{"out", "subscribe", "None+PreApproved", true, "None+PendingOut+PreAp", false},
	// A.2.2 outbound unsubscribe: always routed.
	{"out", "unsubscribe", "None", true, "same", false},
	{"out", "unsubscribe", "None+PendingOut", true, "None", false},
	{"out", "unsubscribe", "None+PendingIn", true, "same", false},
	{"out", "unsubscribe", "None+PendingOut/In", true, "None+PendingIn", false},
	{"out", "unsubscribe", "To", true, "None", false},
	{"out", "unsubscribe", "To+PendingIn", true, "None+PendingIn", false},
	{"out", "unsubscribe", "From", true, "same", false},
	{"out", "unsubscribe", "From+PendingOut", true, "From", false},
	{"out", "unsubscribe", "Both", true, "From", false},
	// A.2.3 outbound subscribed; pre-approval where no request is pending.
	{"out", "subscribed", "None", false, "None+PreApproved", false},
	{"out", "subscribed", "None+PendingOut", false, "None+PendingOut+PreAp", false},
	{"out", "subscribed", "None+PendingIn", true, "From", false},
	{"out", "subscribed", "None+PendingOut/In", true, "From+PendingOut", false},
	{"out", "subscribed", "To", false, "To+PreApproved", false},
	{"out", "subscribed", "To+PendingIn", true, "Both", false},
	{"out", "subscribed", "From", false, "same", false},
	{"out", "subscribed", "From+PendingOut", false, "same", false},
	{"out", "subscribed", "Both", false, "same", false},
	{"out", "subscribed", "None+PreApproved", false, "same", false},
	// A.2.4 outbound unsubscribed; cancels a pre-approval.
	{"out", "unsubscribed", "None", false, "same", false},
	{"out", "unsubscribed", "None+PendingOut", false, "same", false},
	{"out", "unsubscribed", "None+PendingIn", true, "None", false},
	{"out", "unsubscribed", "None+PendingOut/In", true, "None+PendingOut", false},
	{"out", "unsubscribed", "To", false, "same", false},
	{"out", "unsubscribed", "To+PendingIn", true, "To", false},
	{"out", "unsubscribed", "From", true, "None", false},
	{"out", "unsubscribed", "From+PendingOut", true, "None+PendingOut", false},
	{"out", "unsubscribed", "Both", true, "To", false},
	{"out", "unsubscribed", "None+PreApproved", false, "None", false},
	{"out", "unsubscribed", "None+PendingOut+PreAp", false, "None+PendingOut", false},
	{"out", "unsubscribed", "To+PreApproved", false, "To", false},

	// A.3.1 inbound subscribe; * rows auto-reply subscribed.
	{"in", "subscribe", "None", true, "None+PendingIn", false},
	{"in", "subscribe", "None+PendingOut", true, "None+PendingOut/In", false},
	{"in", "subscribe", "None+PendingIn", false, "same", false},
	{"in", "subscribe", "None+PendingOut/In", false, "same", false},
	{"in", "subscribe", "To", true, "To+PendingIn", false},
	{"in", "subscribe", "To+PendingIn", false, "same", false},
	{"in", "subscribe", "From", false, "same", true},
	{"in", "subscribe", "From+PendingOut", false, "same", true},
	{"in", "subscribe", "Both", false, "same", true},
	// §3.4: a pre-approved request is approved by the server.
	{"in", "subscribe", "None+PreApproved", false, "From", true},
	{"in", "subscribe", "None+PendingOut+PreAp", false, "From+PendingOut", true},
	{"in", "subscribe", "To+PreApproved", false, "Both", true},
	// A.3.2 inbound unsubscribe.
	{"in", "unsubscribe", "None", false, "same", false},
	{"in", "unsubscribe", "None+PendingOut", false, "same", false},
	{"in", "unsubscribe", "None+PendingIn", true, "None", false},
	{"in", "unsubscribe", "None+PendingOut/In", true, "None+PendingOut", false},
	{"in", "unsubscribe", "To", false, "same", false},
	{"in", "unsubscribe", "To+PendingIn", true, "To", false},
	{"in", "unsubscribe", "From", true, "None", false},
	{"in", "unsubscribe", "From+PendingOut", true, "None+PendingOut", false},
	{"in", "unsubscribe", "Both", true, "To", false},
	// A.3.3 inbound subscribed.
	{"in", "subscribed", "None", false, "same", false},
	{"in", "subscribed", "None+PendingOut", true, "To", false},
	{"in", "subscribed", "None+PendingIn", false, "same", false},
	{"in", "subscribed", "None+PendingOut/In", true, "To+PendingIn", false},
	{"in", "subscribed", "To", false, "same", false},
	{"in", "subscribed", "To+PendingIn", false, "same", false},
	{"in", "subscribed", "From", false, "same", false},
	{"in", "subscribed", "From+PendingOut", true, "Both", false},
	{"in", "subscribed", "Both", false, "same", false},
	// A.3.4 inbound unsubscribed.
	{"in", "unsubscribed", "None", false, "same", false},
	{"in", "unsubscribed", "None+PendingOut", true, "None", false},
	{"in", "unsubscribed", "None+PendingIn", false, "same", false},
	{"in", "unsubscribed", "None+PendingOut/In", true, "None+PendingIn", false},
	{"in", "unsubscribed", "To", true, "None", false},
	{"in", "unsubscribed", "To+PendingIn", true, "None+PendingIn", false},
	{"in", "unsubscribed", "From", false, "same", false},
	{"in", "unsubscribed", "From+PendingOut", true, "From", false},
	{"in", "unsubscribed", "Both", true, "From", false},
}

// TestTransitionTables checks the pure state functions against Appendix A.
func TestTransitionTables(t *testing.T) {
	for _, tc := range transitions {
		t.Run(tc.dir+"/"+tc.typ+"/"+tc.state, func(t *testing.T) {
			cur := states[tc.state]
			want := tc.next
			if want == "same" {
				want = tc.state
			}
			var next storage.RosterItem
			var pass, auto bool
			if tc.dir == "out" {
				next, pass = outboundTransition(tc.typ, cur)
			} else {
				next, pass, auto = inboundTransition(tc.typ, cur)
			}
			if got := stateName(next); got != want {
				t.Errorf("new state %s, want %s", got, want)
			}
			if pass != tc.pass {
				t.Errorf("routed/delivered = %v, want %v", pass, tc.pass)
			}
			if auto != tc.autoReply {
				t.Errorf("auto-reply = %v, want %v", auto, tc.autoReply)
			}
		})
	}
}

const (
	romeo  = "romeo@example.com"
	juliet = "juliet@" + spyDomain // a contact whose server is the spy
)

// TestOutboundSubscriptionRows runs every outbound row through the router:
// the stanza a local session sends changes its roster, is pushed when the
// change is visible, and reaches the contact stamped with bare JIDs.
func TestOutboundSubscriptionRows(t *testing.T) {
	for _, tc := range transitions {
		if tc.dir != "out" {
			continue
		}
		t.Run(tc.typ+"/"+tc.state, func(t *testing.T) {
			e := newEnv(t, Options{Versioning: true}, romeo)
			item := states[tc.state]
			item.JID = juliet // put by the user (not Hidden), no name or groups: visible in every state
			e.put(romeo, item)
			s := e.login(romeo + "/orchard")
			s.Take(t)
			e.spied()

			e.send(s, `<presence type='`+tc.typ+`' to='`+juliet+`/balcony' id='x1'><status>hi</status></presence>`)

			want := tc.next
			if want == "same" {
				want = tc.state
			}
			got, ok := e.item(romeo, juliet)
			if !ok {
				t.Fatalf("item gone")
			}
			if stateName(got) != want {
				t.Errorf("state %s, want %s", stateName(got), want)
			}
			routed := filter(e.spied(), wire.KindPresence, tc.typ)
			if tc.pass != (len(routed) == 1) {
				t.Fatalf("routed %d stanzas, want routed=%v", len(routed), tc.pass)
			}
			if tc.pass {
				r := routed[0]
				if r.From != romeo || r.To != juliet {
					t.Errorf("routed from %q to %q, want bare JIDs", r.From, r.To)
				}
				if !r.HasChild(wire.NSClient, "status") {
					t.Errorf("routed stanza lost its children: %s", r.Raw)
				}
			}
			ps := pushes(t, s.Take(t))
			visible := tc.state != want &&
				!(states[tc.state].Subscription == states[want].Subscription && states[tc.state].Ask == states[want].Ask &&
					states[tc.state].Approved == states[want].Approved)
			if visible != (len(ps) == 1) {
				t.Fatalf("pushes %v, want a push: %v", ps, visible)
			}
			if visible && (ps[0].Sub != string(got.Subscription) || ps[0].Ask != got.Ask || ps[0].Ver == "") {
				t.Errorf("push %v does not match item %+v", ps[0], got)
			}
		})
	}
}

// TestInboundSubscriptionRows runs every inbound row: a subscription stanza
// from a contact's server to a local account.
func TestInboundSubscriptionRows(t *testing.T) {
	for _, tc := range transitions {
		if tc.dir != "in" {
			continue
		}
		t.Run(tc.typ+"/"+tc.state, func(t *testing.T) {
			e := newEnv(t, Options{Versioning: true}, romeo)
			item := states[tc.state]
			item.JID = juliet // visible: not Hidden, even with no name or groups
			e.put(romeo, item)
			s := e.login(romeo + "/orchard")
			s.Take(t)
			e.spied()

			e.deliver(`<presence type='` + tc.typ + `' from='` + juliet + `/balcony' to='` + romeo + `'><status>x</status></presence>`)

			want := tc.next
			if want == "same" {
				want = tc.state
			}
			got, _ := e.item(romeo, juliet)
			if stateName(got) != want {
				t.Errorf("state %s, want %s", stateName(got), want)
			}
			recv := s.Take(t)
			delivered := filter(recv, wire.KindPresence, tc.typ)
			if tc.pass != (len(delivered) == 1) {
				t.Fatalf("delivered %d, want delivered=%v", len(delivered), tc.pass)
			}
			if tc.pass && (delivered[0].From != juliet || delivered[0].To != romeo) {
				t.Errorf("delivered from %q to %q, want bare JIDs", delivered[0].From, delivered[0].To)
			}
			spied := e.spied()
			replies := filter(spied, wire.KindPresence, "subscribed")
			if tc.autoReply != (len(replies) == 1) {
				t.Fatalf("auto-replies %d, want %v", len(replies), tc.autoReply)
			}
			if tc.autoReply {
				if replies[0].From != romeo || replies[0].To != juliet {
					t.Errorf("auto-reply from %q to %q", replies[0].From, replies[0].To)
				}
				// The new subscriber learns romeo's presence.
				if len(filter(spied, wire.KindPresence, "")) != 1 {
					t.Errorf("no presence after approval: %d stanzas", len(spied))
				}
			}
			if tc.typ == "unsubscribe" && hasFrom(states[tc.state]) {
				if n := len(filter(spied, wire.KindPresence, "unavailable")); n != 1 {
					t.Errorf("unavailable sent to the former subscriber: %d, want 1", n)
				}
			}
			if tc.typ == "subscribe" && tc.pass {
				if !got.PendingIn || len(got.PendingInXML) == 0 {
					t.Errorf("request not kept pending: %+v", got)
				}
			}
		})
	}
}
