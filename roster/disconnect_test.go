package roster_test

import (
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/wire"
)

// TestHandshakeSurvivesDisconnect: a subscription handshake where one side
// goes away between subscribe and subscribed ends consistent (RFC 6121
// §3.1.3, §3.1.6): the asker's item keeps ask='subscribe', the request
// stays pending and reaches the contact at its next initial presence, and
// the answer completes the pair for both, also when the asker is the one
// offline at that point.
func TestHandshakeSurvivesDisconnect(t *testing.T) {
	const timeout = 10 * time.Second
	e := servertest.Start(t, nil)
	alice := e.AddUser("alice", "pw-alice-1")
	bob := e.AddUser("bob", "pw-bob-1")
	online := func(local, pw string) *client.Client {
		t.Helper()
		c := e.Login(local, pw, "r")
		if _, err := c.IQ(timeout, "<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>", "r"); err != nil {
			t.Fatal(err)
		}
		_ = c.Send("<presence/>")
		return c
	}
	roster := func(c *client.Client) string {
		t.Helper()
		res, err := c.IQ(timeout, "<iq type='get' id='g'><query xmlns='jabber:iq:roster'/></iq>", "g")
		if err != nil {
			t.Fatal(err)
		}
		return string(res.Raw)
	}
	request := func(from string) func(*wire.Stanza) bool {
		return func(s *wire.Stanza) bool {
			return s.Kind == wire.KindPresence && s.Type == "subscribe" && strings.HasPrefix(s.From, from)
		}
	}
	push := func(jid, sub string) func(*wire.Stanza) bool {
		return func(s *wire.Stanza) bool {
			raw := string(s.Raw)
			return s.Kind == wire.KindIQ && s.Type == "set" && strings.Contains(raw, "jid='"+jid+"'") &&
				strings.Contains(raw, "subscription='"+sub+"'") && !strings.Contains(raw, "ask=")
		}
	}

	// 1. Bob gets alice's request and his connection dies before he answers.
	a := online("alice", "pw-alice-1")
	b := online("bob", "pw-bob-1")
	_ = a.Send("<presence to='" + bob + "' type='subscribe'/>")
	if _, err := b.Expect(timeout, request(alice)); err != nil {
		t.Fatal(err)
	}
	_ = b.Abort()
	if r := roster(a); !strings.Contains(r, "jid='"+bob+"'") || !strings.Contains(r, "ask='subscribe'") {
		t.Fatalf("alice's roster after bob went away: %s", r)
	}
	// Alice logs out too and back in: her request is still asking.
	_ = a.Close()
	a = online("alice", "pw-alice-1")
	if r := roster(a); !strings.Contains(r, "ask='subscribe'") {
		t.Fatalf("alice's roster at her next login: %s", r)
	}

	// 2. Bob's next login gets the request again; alice goes away before
	// his answer, which completes her side while she is offline.
	b = online("bob", "pw-bob-1")
	if _, err := b.Expect(timeout, request(alice)); err != nil {
		t.Fatalf("pending request at bob's next initial presence: %v", err)
	}
	_ = a.Abort()
	_ = b.Send("<presence to='" + alice + "' type='subscribed'/><presence to='" + alice + "' type='subscribe'/>")
	if _, err := b.Expect(timeout, func(s *wire.Stanza) bool {
		raw := string(s.Raw)
		return s.Kind == wire.KindIQ && s.Type == "set" && strings.Contains(raw, "jid='"+alice+"'") &&
			strings.Contains(raw, "subscription='from'") && strings.Contains(raw, "ask='subscribe'")
	}); err != nil {
		t.Fatalf("bob's push after answering and asking back: %v", err)
	}

	// 3. Alice's next login: 'to' without ask, and bob's request pending;
	// her answer makes the pair 'both' on both sides.
	a = online("alice", "pw-alice-1")
	if _, err := a.Expect(timeout, request(bob)); err != nil {
		t.Fatalf("bob's request at alice's next initial presence: %v", err)
	}
	if r := roster(a); !strings.Contains(r, "subscription='to'") || strings.Contains(r, "ask=") {
		t.Fatalf("alice's roster after bob approved while she was away: %s", r)
	}
	_ = a.Send("<presence to='" + bob + "' type='subscribed'/>")
	if _, err := a.Expect(timeout, push(bob, "both")); err != nil {
		t.Fatalf("alice: %v", err)
	}
	if _, err := b.Expect(timeout, push(alice, "both")); err != nil {
		t.Fatalf("bob: %v", err)
	}
	for _, c := range []*client.Client{a, b} {
		if r := roster(c); strings.Count(r, "subscription='both'") != 1 || strings.Contains(r, "ask=") {
			t.Errorf("final roster: %s", r)
		}
	}

	// 4. A request whose sender's connection dies right after sending it is
	// handled whole or not at all: if the asker's item has ask='subscribe',
	// the contact got the request and has it pending at his next login;
	// if not, he has nothing from her. Her other resource sees her
	// unavailable presence once the dead session has ended, after the
	// server handled whatever it had read from it.
	carol := e.AddUser("carol", "pw-carol-1")
	w := e.Login("carol", "pw-carol-1", "watch")
	if _, err := w.IQ(timeout, "<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>", "r"); err != nil {
		t.Fatal(err)
	}
	_ = w.Send("<presence/>")
	c := online("carol", "pw-carol-1")
	if _, err := w.Expect(timeout, func(s *wire.Stanza) bool {
		return s.Kind == wire.KindPresence && s.Type == "" && s.From == carol+"/r"
	}); err != nil {
		t.Fatal(err)
	}
	_ = c.Send("<presence to='" + bob + "' type='subscribe'/>")
	_ = c.Abort()
	if _, err := w.Expect(timeout, func(s *wire.Stanza) bool {
		return s.Kind == wire.KindPresence && s.Type == "unavailable" && s.From == carol+"/r"
	}); err != nil {
		t.Fatalf("carol/r's end: %v", err)
	}
	r := roster(w)
	asked := strings.Contains(r, "jid='"+bob+"'")
	if asked && !strings.Contains(r, "ask='subscribe'") {
		t.Fatalf("carol's roster after her request: %s", r)
	}
	// Whatever bob got live came before the answer to this roster get.
	roster(b)
	if _, err := b.Expect(time.Nanosecond, request(carol)); (err == nil) != asked {
		t.Errorf("carol's item for bob: %v; bob got her request live: %v", asked, err == nil)
	}
	_ = b.Close()
	b = online("bob", "pw-bob-1")
	roster(b) // after his initial presence and the pending requests it brings
	if _, err := b.Expect(time.Nanosecond, request(carol)); (err == nil) != asked {
		t.Errorf("carol's item for bob: %v; her request pending at bob's next login: %v", asked, err == nil)
	}
}
