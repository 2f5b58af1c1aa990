package private_test

import (
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/private"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/wire"
)

const timeout = 10 * time.Second

func iq(t *testing.T, c *client.Client, raw, id string) *wire.Stanza {
	t.Helper()
	st, err := c.IQ(timeout, raw, id)
	if err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return st
}

func TestPrivateOverTheWire(t *testing.T) {
	e := servertest.Start(t, func(c *conf.Config) {
		c.Module("private").(*private.Config).MaxSize = 2 * conf.KiB
	})
	alice := e.AddUser("alice", "pw-alice-1")
	e.AddUser("bob", "pw-bob-1")
	a := e.Login("alice", "pw-alice-1", "phone")
	b := e.Login("bob", "pw-bob-1", "pc")

	bookmarks := "<storage xmlns='storage:bookmarks'><conference name='Council' autojoin='true' jid='council@conference.example.org'><nick>alice</nick></conference></storage>"
	if res := iq(t, a, "<iq type='set' id='s1'><query xmlns='jabber:iq:private'>"+bookmarks+"<prefs xmlns='urn:example:prefs' theme='dark'/></query></iq>", "s1"); res.Type != "result" {
		t.Fatalf("set: %s", res.Raw)
	}
	// Another session (a new login) reads it back.
	a2 := e.Login("alice", "pw-alice-1", "laptop")
	if res := iq(t, a2, "<iq type='get' id='g1'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>", "g1"); res.Type != "result" ||
		!client.Contains(res, "<query xmlns='jabber:iq:private'>"+bookmarks+"</query>") {
		t.Errorf("get bookmarks: %s", res.Raw)
	}
	if res := iq(t, a2, "<iq type='get' id='g2'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query></iq>", "g2"); !client.Contains(res, "<prefs xmlns='urn:example:prefs' theme='dark'/>") {
		t.Errorf("get prefs: %s", res.Raw)
	}
	if res := iq(t, a2, "<iq type='get' id='g3'><query xmlns='jabber:iq:private'><none xmlns='urn:example:none'/></query></iq>", "g3"); !client.Contains(res, "<query xmlns='jabber:iq:private'><none xmlns='urn:example:none'/></query>") {
		t.Errorf("get nothing stored: %s", res.Raw)
	}

	for _, c := range []struct {
		who       *client.Client
		raw, cond string
	}{
		{b, "<iq type='get' id='x' to='" + alice + "'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>", "forbidden"},
		{b, "<iq type='set' id='x' to='" + alice + "'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>", "forbidden"},
		{a, "<iq type='set' id='x'><query xmlns='jabber:iq:private'/></iq>", "not-acceptable"},
		{a, "<iq type='set' id='x'><query xmlns='jabber:iq:private'><message xmlns='jabber:client'/></query></iq>", "not-acceptable"},
		{a, "<iq type='get' id='x'><query xmlns='jabber:iq:private'><iq xmlns='jabber:server'/></query></iq>", "not-acceptable"},
		{a, "<iq type='set' id='x'><query xmlns='jabber:iq:private'><q xmlns='jabber:iq:private'/></query></iq>", "not-acceptable"},
		{a, "<iq type='set' id='x'><query xmlns='jabber:iq:private'><big xmlns='urn:big'>" + strings.Repeat("x", 2100) + "</big></query></iq>", "not-acceptable"},
	} {
		res := iq(t, c.who, c.raw, "x")
		if res.Type != "error" || !client.Contains(res, "<"+c.cond+" xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>") {
			t.Errorf("%.100s: %s, want %s", c.raw, res.Raw, c.cond)
		}
	}
	// Bob's own storage is his.
	if res := iq(t, b, "<iq type='get' id='g4'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>", "g4"); client.Contains(res, "Council") {
		t.Errorf("bob sees alice's bookmarks: %s", res.Raw)
	}
}
