package pep_test

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/wire"
)

const (
	timeout  = 10 * time.Second
	password = "secret-pw"
	nsPubSub = "http://jabber.org/protocol/pubsub"
	nsOwner  = nsPubSub + "#owner"
	nsEvent  = nsPubSub + "#event"
	nsErrors = nsPubSub + "#errors"
	capsNode = "https://test.example/client"
)

var ids atomic.Uint64

func nextID() string { return fmt.Sprint("t", ids.Add(1)) }

// iq sends an iq (its id attribute is added) and returns the answer,
// failing the test unless its type is want.
func iq(t *testing.T, c *client.Client, want, raw string) *wire.Stanza {
	t.Helper()
	id := nextID()
	raw = strings.Replace(raw, "<iq ", "<iq id='"+id+"' ", 1)
	st, err := c.IQ(timeout, raw, id)
	if err != nil {
		t.Fatalf("iq %s: %v", raw, err)
	}
	if st.Type != want {
		t.Fatalf("iq %s\n answered %s, want type %s", raw, st.Raw, want)
	}
	return st
}

// has fails unless the element contains every string.
func has(t *testing.T, st *wire.Stanza, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !client.Contains(st, s) {
			t.Fatalf("%s\n does not contain %q", st.Raw, s)
		}
	}
}

func hasNot(t *testing.T, st *wire.Stanza, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if client.Contains(st, s) {
			t.Fatalf("%s\n contains %q", st.Raw, s)
		}
	}
}

// publishOptions is a publish-options form with the given fields.
func publishOptions(fields ...string) string {
	var b strings.Builder
	b.WriteString("<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>" + nsPubSub + "#publish-options</value></field>")
	for i := 0; i+1 < len(fields); i += 2 {
		b.WriteString("<field var='" + fields[i] + "'><value>" + fields[i+1] + "</value></field>")
	}
	b.WriteString("</x></publish-options>")
	return b.String()
}

// publish publishes payload as item id (generated when "") and returns the
// result.
func publish(t *testing.T, c *client.Client, node, id, payload string, opts ...string) *wire.Stanza {
	t.Helper()
	return iq(t, c, "result", publishRaw(node, id, payload, opts...))
}

func publishRaw(node, id, payload string, opts ...string) string {
	item := "<item>"
	if id != "" {
		item = "<item id='" + id + "'>"
	}
	po := ""
	if len(opts) > 0 {
		po = publishOptions(opts...)
	}
	return "<iq type='set'><pubsub xmlns='" + nsPubSub + "'><publish node='" + node + "'>" + item + payload + "</item></publish>" + po + "</pubsub></iq>"
}

// items retrieves a node's items from owner.
func items(t *testing.T, c *client.Client, owner, node, extra string) *wire.Stanza {
	t.Helper()
	return iq(t, c, "result", itemsRaw(owner, node, extra))
}

func itemsRaw(owner, node, extra string) string {
	to := ""
	if owner != "" {
		to = " to='" + owner + "'"
	}
	return "<iq type='get'" + to + "><pubsub xmlns='" + nsPubSub + "'><items node='" + node + "'" + extra + "</pubsub></iq>"
}

// itemIDs lists the item ids of an items result or event, in order.
func itemIDs(st *wire.Stanza) []string {
	var out []string
	s := string(st.Raw)
	for {
		i := strings.Index(s, "<item id='")
		if i < 0 {
			return out
		}
		s = s[i+len("<item id='"):]
		j := strings.IndexByte(s, '\'')
		out = append(out, s[:j])
		s = s[j:]
	}
}

// isError fails unless st is an error with the condition and, if app is
// set, the pubsub#errors condition.
func isError(t *testing.T, st *wire.Stanza, errType, cond, app string) {
	t.Helper()
	has(t, st, "type='error'", "type='"+errType+"'", "<"+cond+" xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>")
	if app != "" {
		has(t, st, "<"+app+" xmlns='"+nsErrors+"'")
	}
}

// event matches a pubsub event message for node.
func event(node string) func(*wire.Stanza) bool {
	return func(st *wire.Stanza) bool {
		return st.Kind == wire.KindMessage && st.Type == "headline" && client.Contains(st, nsEvent) &&
			client.Contains(st, "node='"+node+"'")
	}
}

// eventWith matches an event for node that contains s.
func eventWith(node, s string) func(*wire.Stanza) bool {
	return func(st *wire.Stanza) bool { return event(node)(st) && client.Contains(st, s) }
}

// expect waits for a matching stanza.
func expect(t *testing.T, c *client.Client, what string, match func(*wire.Stanza) bool) *wire.Stanza {
	t.Helper()
	st, err := c.Expect(timeout, match)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return st
}

// never checks that nothing matching arrived: the answer to a ping comes
// after whatever the server queued for c before it, so it must be the
// first element that is either the answer or a match. Elements neither
// are kept for later expectations.
func never(t *testing.T, c *client.Client, what string, match func(*wire.Stanza) bool) {
	t.Helper()
	id := nextID()
	if err := c.Send("<iq type='get' id='" + id + "' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"); err != nil {
		t.Fatal(err)
	}
	st, err := c.Expect(timeout, func(s *wire.Stanza) bool { return (s.Kind == wire.KindIQ && s.ID == id) || match(s) })
	if err != nil {
		t.Fatalf("%s: no answer to the ping: %v", what, err)
	}
	if st.Kind != wire.KindIQ || st.ID != id {
		t.Fatalf("%s: got %s", what, st.Raw)
	}
	if st.Type != "result" {
		t.Fatalf("%s: ping answered %s", what, st.Raw)
	}
}

// capsVer is the XEP-0115 sha-1 verification string of a client with one
// identity client/pc/name and features.
func capsVer(name string, features []string) string {
	fs := append([]string(nil), features...)
	sort.Strings(fs)
	s := "client/pc//" + name + "<"
	for _, f := range fs {
		s += f + "<"
	}
	sum := sha1.Sum([]byte(s))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// caps is what a test client advertises.
type caps struct {
	name     string
	features []string
}

// syncNode is a node every test client wants (notify): its last item
// arriving tells the test that the server knows the client's caps.
const syncNode = "urn:example:sync"

func notify(name string, nodes ...string) caps {
	fs := []string{"http://jabber.org/protocol/caps", "http://jabber.org/protocol/disco#info", syncNode + "+notify"}
	for _, n := range nodes {
		fs = append(fs, n, n+"+notify")
	}
	return caps{name, fs}
}

func (c caps) ver() string { return capsVer(c.name, c.features) }

func (c caps) element() string {
	return "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='" + capsNode + "' ver='" + c.ver() + "'/>"
}

// discoQuery matches the server's disco#info query for node#ver.
func discoQuery(ver string) func(*wire.Stanza) bool {
	return func(st *wire.Stanza) bool {
		return st.Kind == wire.KindIQ && st.Type == "get" && st.PayloadNS == "http://jabber.org/protocol/disco#info" &&
			client.Contains(st, "node='"+capsNode+"#"+ver+"'")
	}
}

// answerDisco answers a disco#info query with the identity and features of
// answer (which may differ from what was advertised).
func answerDisco(t *testing.T, c *client.Client, q *wire.Stanza, answer caps) {
	t.Helper()
	var b strings.Builder
	b.WriteString("<iq type='result' to='" + q.From + "' id='" + q.ID + "'><query xmlns='http://jabber.org/protocol/disco#info' node='" + capsNode + "#" + answer.ver() + "'>")
	b.WriteString("<identity category='client' type='pc' name='" + answer.name + "'/>")
	for _, f := range answer.features {
		b.WriteString("<feature var='" + f + "'/>")
	}
	b.WriteString("</query></iq>")
	if err := c.Send(b.String()); err != nil {
		t.Fatal(err)
	}
}

// online sends initial presence with caps and, when the server asks,
// answers its disco#info query truthfully. It returns once the server knows
// the caps: the last item of the account's own sync node has arrived.
func online(t *testing.T, c *client.Client, cp caps, expectQuery bool) {
	t.Helper()
	publish(t, c, syncNode, "", "<sync xmlns='"+syncNode+"'/>")
	if err := c.Send("<presence>" + cp.element() + "</presence>"); err != nil {
		t.Fatal(err)
	}
	if expectQuery {
		q := expect(t, c, "the caps query", discoQuery(cp.ver()))
		answerDisco(t, c, q, cp)
	}
	expect(t, c, "the sync node's last item", event(syncNode))
}

// env is a server with users.
type env struct {
	*servertest.Env
	t *testing.T
}

func start(t *testing.T, users ...string) *env {
	e := &env{servertest.Start(t, nil), t}
	for _, u := range users {
		e.AddUser(u, password)
	}
	return e
}

func (e *env) login(user, resource string) *client.Client {
	e.t.Helper()
	return e.Login(user, password, resource)
}

// befriend makes a and b mutual contacts (subscription both) with
// sessions of their own that end afterwards.
func (e *env) befriend(a, b string) {
	t := e.t
	t.Helper()
	ca, cb := e.login(a, "setup"), e.login(b, "setup")
	defer ca.Close()
	defer cb.Close()
	aj, bj := a+"@localhost", b+"@localhost"
	for _, c := range []*client.Client{ca, cb} {
		iq(t, c, "result", "<iq type='get'><query xmlns='jabber:iq:roster'/></iq>")
		_ = c.Send("<presence/>")
	}
	subscribed := func(c *client.Client, contact string) {
		t.Helper()
		expect(t, c, "roster push", func(s *wire.Stanza) bool {
			return s.Kind == wire.KindIQ && s.Type == "set" && client.Contains(s, "jid='"+contact+"'") && client.Contains(s, "subscription='both'")
		})
	}
	_ = ca.Send("<presence to='" + bj + "' type='subscribe'/>")
	expect(t, cb, "subscribe", func(s *wire.Stanza) bool { return s.Kind == wire.KindPresence && s.Type == "subscribe" })
	_ = cb.Send("<presence to='" + aj + "' type='subscribed'/>")
	_ = cb.Send("<presence to='" + aj + "' type='subscribe'/>")
	expect(t, ca, "subscribe", func(s *wire.Stanza) bool { return s.Kind == wire.KindPresence && s.Type == "subscribe" })
	_ = ca.Send("<presence to='" + bj + "' type='subscribed'/>")
	subscribed(ca, bj)
	subscribed(cb, aj)
}
