package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/wire"
)

const timeout = 10 * time.Second

func presenceFrom(from, typ string) func(*wire.Stanza) bool {
	return func(s *wire.Stanza) bool {
		return s.Kind == wire.KindPresence && s.From == from && s.Type == typ
	}
}

func rosterPush(contact, sub string) func(*wire.Stanza) bool {
	return func(s *wire.Stanza) bool {
		return s.Kind == wire.KindIQ && s.Type == "set" && s.PayloadNS == "jabber:iq:roster" &&
			client.Contains(s, "jid='"+contact+"'") && client.Contains(s, "subscription='"+sub+"'")
	}
}

// subscribeBoth makes alice and bob mutual contacts over the wire.
func subscribeBoth(t *testing.T, a, b *client.Client) {
	t.Helper()
	for _, c := range []*client.Client{a, b} {
		if _, err := c.IQ(timeout, "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>", "r1"); err != nil {
			t.Fatal(err)
		}
		_ = c.Send("<presence/>")
	}
	_ = a.Send("<presence to='bob@localhost' type='subscribe'/>")
	if _, err := b.Expect(timeout, presenceFrom("alice@localhost", "subscribe")); err != nil {
		t.Fatalf("bob did not get the request: %v", err)
	}
	_ = b.Send("<presence to='alice@localhost' type='subscribed'/>")
	_ = b.Send("<presence to='alice@localhost' type='subscribe'/>")
	if _, err := a.Expect(timeout, presenceFrom("bob@localhost", "subscribe")); err != nil {
		t.Fatalf("alice did not get bob's request: %v", err)
	}
	_ = a.Send("<presence to='bob@localhost' type='subscribed'/>")
	if _, err := a.Expect(timeout, rosterPush("bob@localhost", "both")); err != nil {
		t.Fatalf("alice: no push with subscription both: %v", err)
	}
	if _, err := b.Expect(timeout, rosterPush("alice@localhost", "both")); err != nil {
		t.Fatalf("bob: no push with subscription both: %v", err)
	}
}

func TestSubscriptionAndPresence(t *testing.T) {
	e := servertest.Start(t, nil)
	e.AddUser("alice", "secret-pw")
	e.AddUser("bob", "secret-pw")
	a := e.Login("alice", "secret-pw", "phone")
	b := e.Login("bob", "secret-pw", "laptop")
	subscribeBoth(t, a, b)

	// Each sees the other's presence.
	_ = a.Send("<presence><status>at work</status></presence>")
	p, err := b.Expect(timeout, func(s *wire.Stanza) bool {
		return presenceFrom("alice@localhost/phone", "")(s) && strings.Contains(string(s.Raw), "<status>")
	})
	if err != nil {
		t.Fatalf("bob did not see alice's new status: %v", err)
	}
	if !strings.Contains(string(p.Raw), "<status>at work</status>") {
		t.Fatalf("presence lost its status: %s", p.Raw)
	}
	// A second resource of bob gets alice's presence by probe.
	b2 := e.Login("bob", "secret-pw", "tablet")
	_ = b2.Send("<presence/>")
	if _, err := b2.Expect(timeout, presenceFrom("alice@localhost/phone", "")); err != nil {
		t.Fatalf("the probe did not bring alice's presence: %v", err)
	}
	// Roster versioning: a current version gets an empty result.
	r, err := a.IQ(timeout, "<iq type='get' id='r2'><query xmlns='jabber:iq:roster' ver=''/></iq>", "r2")
	if err != nil || !client.Contains(r, "jid='bob@localhost'") {
		t.Fatalf("roster get: %v %s", err, r.Raw)
	}
	// Losing the connection without a close sends unavailable to contacts.
	_ = a.Abort()
	if _, err := b.Expect(timeout, presenceFrom("alice@localhost/phone", "unavailable")); err != nil {
		t.Fatalf("bob not told alice left: %v", err)
	}
}

func TestSilentClientGoesUnavailable(t *testing.T) {
	e := servertest.Start(t, func(c *conf.Config) {
		c.Limits.PingInterval = time.Second
		c.Limits.PingTimeout = time.Second
	})
	e.AddUser("alice", "secret-pw")
	e.AddUser("bob", "secret-pw")
	acfg := e.ClientConfig("alice", "secret-pw", "phone")
	acfg.Silent = true
	a := e.LoginWith(acfg)
	b := e.Login("bob", "secret-pw", "laptop")
	// bob sends whitespace keepalives; alice stays silent.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				_ = b.Send(" ")
			}
		}
	}()
	subscribeBoth(t, a, b)
	// The keepalive gives up on alice: she is pinged, never answers, and
	// her stream ends with connection-timeout; bob hears she is gone.
	st, err := a.Expect(timeout, func(s *wire.Stanza) bool { return s.PayloadNS == "urn:xmpp:ping" })
	if err != nil || st.Type != "get" {
		t.Fatalf("silent alice was not pinged: %v %v", st, err)
	}
	st, err = a.Expect(timeout, func(s *wire.Stanza) bool { return s.Name == "error" })
	if err != nil || !client.Contains(st, "<connection-timeout") {
		t.Fatalf("silent alice was not dropped by the keepalive: %v %v", st, err)
	}
	if _, err := b.Expect(timeout, presenceFrom("alice@localhost/phone", "unavailable")); err != nil {
		t.Fatalf("bob not told that silent alice is gone: %v", err)
	}
	// Bob, whose client sends keepalives and answers pings, is still
	// online.
	if _, err := b.IQ(timeout, "<iq type='get' id='still-here'><ping xmlns='urn:xmpp:ping'/></iq>", "still-here"); err != nil {
		t.Fatalf("bob, who sent keepalives, was dropped too: %v", err)
	}
}

// TestStorageFailureIsNotNoSuchUser: when the database fails, a message to
// an existing account is answered internal-server-error of type wait
// (RFC 6120 §8.3.3.5), never service-unavailable ("no such user").
func TestStorageFailureIsNotNoSuchUser(t *testing.T) {
	e := servertest.Start(t, nil)
	e.AddUser("alice", "secret-pw")
	e.AddUser("bob", "secret-pw")
	a := e.Login("alice", "secret-pw", "phone")
	if err := e.Srv.Store.Close(); err != nil { // the database is gone
		t.Fatal(err)
	}
	for _, to := range []string{"bob@localhost", "bob@localhost/laptop"} {
		_ = a.Send("<message type='chat' id='m1' to='" + to + "'><body>hi</body></message>")
		st, err := a.Expect(timeout, client.ID("m1"))
		if err != nil {
			t.Fatal(err)
		}
		if st.Type != "error" || !client.Contains(st, "type='wait'") || !client.Contains(st, "<internal-server-error") ||
			client.Contains(st, "service-unavailable") {
			t.Fatalf("to %s: want a wait internal-server-error, got %s", to, st.Raw)
		}
	}
}
