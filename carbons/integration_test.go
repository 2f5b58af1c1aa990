package carbons_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/client"
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

// online logs in with available presence (priority prio) and carbons on
// or off, and waits until the server has processed it all.
func online(t *testing.T, e *servertest.Env, user, res string, prio int, carbons bool) *client.Client {
	t.Helper()
	c := e.Login(user, "pw-"+user+"-1", res)
	if carbons {
		if r := iq(t, c, "<iq type='set' id='cb'><enable xmlns='urn:xmpp:carbons:2'/></iq>", "cb"); r.Type != "result" {
			t.Fatalf("enable: %s", r.Raw)
		}
	}
	_ = c.Send("<presence><priority>" + itoa(prio) + "</priority></presence>")
	iq(t, c, "<iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>", "sync")
	return c
}

func itoa(n int) string {
	if n < 0 {
		return "-" + itoa(-n)
	}
	return string(rune('0' + n))
}

// got returns what c received up to a ping barrier: the messages with
// id (originals and copies alike, by the id of the forwarded message).
func got(t *testing.T, c *client.Client, id string) (originals, sent, received int) {
	t.Helper()
	if err := c.Send("<iq type='get' id='barrier'><ping xmlns='urn:xmpp:ping'/></iq>"); err != nil {
		t.Fatal(err)
	}
	for {
		st, err := c.Expect(timeout, func(s *wire.Stanza) bool {
			return s.Kind == wire.KindMessage || (s.Kind == wire.KindIQ && s.ID == "barrier")
		})
		if err != nil {
			t.Fatalf("no answer to the ping: %v", err)
		}
		switch {
		case st.Kind == wire.KindIQ:
			return
		case st.ID == id:
			originals++
		case client.Contains(st, "<sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'") && client.Contains(st, "id='"+id+"'"):
			sent++
		case client.Contains(st, "<received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'") && client.Contains(st, "id='"+id+"'"):
			received++
		}
	}
}

func TestCarbonsOverTheWire(t *testing.T) {
	e := servertest.Start(t, nil)
	alice, bob := e.AddUser("alice", "pw-alice-1"), e.AddUser("bob", "pw-bob-1")
	phone := online(t, e, "alice", "phone", 0, true)
	laptop := online(t, e, "alice", "laptop", 0, true)
	legacy := online(t, e, "alice", "legacy", 0, false)
	away := online(t, e, "alice", "away", -1, true)
	b := online(t, e, "bob", "pc", 0, false)

	if res := iq(t, phone, "<iq type='get' id='d' to='"+e.Domain+"'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", "d"); !client.Contains(res, "var='urn:xmpp:carbons:2'") {
		t.Errorf("disco lacks urn:xmpp:carbons:2: %s", res.Raw)
	}

	type counts struct{ originals, sent, received int }
	check := func(what, id string, want map[*client.Client]counts) {
		t.Helper()
		// Every client's stanzas are routed in order: once each has its
		// ping answered, what it sent before has been delivered.
		for _, c := range []*client.Client{b, phone, laptop, legacy, away} {
			iq(t, c, "<iq type='get' id='sent-sync'><ping xmlns='urn:xmpp:ping'/></iq>", "sent-sync")
		}
		for c, w := range want {
			o, s, r := got(t, c, id)
			if (counts{o, s, r}) != w {
				t.Errorf("%s: %s got %d originals, %d sent, %d received copies; want %+v", what, c.JID, o, s, r, w)
			}
		}
	}
	all := func(phoneC, laptopC, legacyC, awayC counts) map[*client.Client]counts {
		return map[*client.Client]counts{phone: phoneC, laptop: laptopC, legacy: legacyC, away: awayC}
	}

	// Received, to one full JID: the other carbons-enabled resources get a copy.
	_ = b.Send("<message to='" + alice + "/phone' type='chat' id='m1'><body>hi phone</body></message>")
	check("to a full JID", "m1", all(counts{1, 0, 0}, counts{0, 0, 1}, counts{}, counts{0, 0, 1}))

	// To the bare JID: every available non-negative resource has the
	// original and no copy; only the negative-priority one gets a copy.
	_ = b.Send("<message to='" + alice + "' type='chat' id='m2'><body>hi all</body></message>")
	check("to the bare JID", "m2", all(counts{1, 0, 0}, counts{1, 0, 0}, counts{1, 0, 0}, counts{0, 0, 1}))

	// Sent: the sender's other carbons-enabled resources get a copy.
	_ = laptop.Send("<message to='" + bob + "' type='chat' id='m3'><body>hi bob</body></message>")
	check("sent", "m3", all(counts{0, 1, 0}, counts{}, counts{}, counts{0, 1, 0}))
	if o, _, _ := got(t, b, "m3"); o != 1 {
		t.Errorf("bob got %d of m3", o)
	}
	// From a resource without carbons too.
	_ = legacy.Send("<message to='" + bob + "' type='chat' id='m4'><body>from legacy</body></message>")
	check("sent by legacy", "m4", all(counts{0, 1, 0}, counts{0, 1, 0}, counts{}, counts{0, 1, 0}))

	// Private and no-copy: no copies either way; the private element is
	// delivered as it was.
	_ = phone.Send("<message to='" + bob + "/pc' type='chat' id='m5'><body>secret</body><private xmlns='urn:xmpp:carbons:2'/><no-copy xmlns='urn:xmpp:hints'/></message>")
	check("private sent", "m5", all(counts{}, counts{}, counts{}, counts{}))
	st, err := b.Expect(timeout, client.ID("m5"))
	if err != nil || !client.Contains(st, "<private xmlns='urn:xmpp:carbons:2'/>") {
		t.Errorf("bob's private message: %v", err)
	}
	_ = b.Send("<message to='" + alice + "/phone' type='chat' id='m6'><body>secret</body><private xmlns='urn:xmpp:carbons:2'/></message>")
	check("private received", "m6", all(counts{1, 0, 0}, counts{}, counts{}, counts{}))
	_ = b.Send("<message to='" + alice + "/phone' type='chat' id='m7'><body>x</body><no-copy xmlns='urn:xmpp:hints'/></message>")
	check("no-copy received", "m7", all(counts{1, 0, 0}, counts{}, counts{}, counts{}))

	// Disabled again: no more copies for that session.
	iq(t, laptop, "<iq type='set' id='dis'><disable xmlns='urn:xmpp:carbons:2'/></iq>", "dis")
	_ = b.Send("<message to='" + alice + "/phone' type='chat' id='m8'><body>x</body></message>")
	check("after disable", "m8", all(counts{1, 0, 0}, counts{}, counts{}, counts{0, 0, 1}))

	// A copy is never copied: a forged carbon from bob is delivered, nothing more.
	_ = b.Send("<message to='" + alice + "/phone' type='chat' id='m9'><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' type='chat' id='inner'><body>forged</body></message></forwarded></received></message>")
	check("forged carbon", "m9", all(counts{1, 0, 0}, counts{}, counts{}, counts{}))

	// The copy is from her bare JID, to the resource's full JID, same type.
	_ = b.Send("<message to='" + alice + "/phone' type='chat' id='m10'><body>x</body></message>")
	c, err := away.Expect(timeout, func(s *wire.Stanza) bool { return s.Kind == wire.KindMessage && client.Contains(s, "id='m10'") })
	if err != nil {
		t.Fatal(err)
	}
	if c.From != alice || c.To != alice+"/away" || c.Type != "chat" || !strings.Contains(string(c.Raw), "from='"+bob+"/pc'") {
		t.Errorf("copy envelope: %s", c.Raw)
	}
	// The archive (registered before carbons) stamped the message first:
	// the copy carries the same stanza-id as the original.
	o, err := phone.Expect(timeout, client.ID("m10"))
	if err != nil {
		t.Fatal(err)
	}
	if !client.Contains(o, "<stanza-id xmlns='urn:xmpp:sid:0' by='"+alice+"'") {
		t.Fatalf("original without stanza-id: %s", o.Raw)
	}
	sid := o.Raw[bytes.Index(o.Raw, []byte("<stanza-id")):]
	sid = sid[:bytes.Index(sid, []byte("/>"))+2]
	if !bytes.Contains(c.Raw, sid) {
		t.Errorf("the copy lacks the original's %s: %s", sid, c.Raw)
	}
}

// A <sent/> copy carries the message's id in the sender's own archive
// (XEP-0313 §4.2), the same id a MAM query of that archive returns.
func TestSentCopyCarriesArchiveID(t *testing.T) {
	e := servertest.Start(t, nil)
	alice := e.AddUser("alice", "pw-alice-1")
	e.AddUser("bob", "pw-bob-1")
	phone := online(t, e, "alice", "phone", 0, true)
	laptop := online(t, e, "alice", "laptop", 0, true)
	_ = phone.Send("<message type='chat' id='s1' to='bob@" + e.Domain + "'><body>archived</body></message>")
	cp, err := laptop.Expect(timeout, func(s *wire.Stanza) bool {
		return s.Kind == wire.KindMessage && client.Contains(s, "<sent xmlns='urn:xmpp:carbons:2'")
	})
	if err != nil {
		t.Fatal(err)
	}
	mark := "<stanza-id xmlns='urn:xmpp:sid:0' by='" + alice + "' id='"
	i := bytes.Index(cp.Raw, []byte(mark))
	if i < 0 {
		t.Fatalf("sent copy without the sender's stanza-id: %s", cp.Raw)
	}
	rest := cp.Raw[i+len(mark):]
	id := string(rest[:bytes.IndexByte(rest, '\'')])
	_ = phone.Send("<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2' queryid='q'/></iq>")
	res, err := phone.Expect(timeout, func(s *wire.Stanza) bool { return s.Kind == wire.KindMessage && client.Contains(s, "queryid='q'") })
	if err != nil {
		t.Fatal(err)
	}
	if !client.Contains(res, "id='"+id+"'") || !client.Contains(res, "archived") {
		t.Fatalf("archive result %s does not have id %s", res.Raw, id)
	}
}
