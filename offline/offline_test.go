package offline_test

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

func TestOfflineDeliveryInOrder(t *testing.T) {
	e := servertest.Start(t, nil)
	e.AddUser("alice", "secret-pw")
	e.AddUser("bob", "secret-pw")
	a := e.Login("alice", "secret-pw", "phone")
	for i, body := range []string{"one", "two", "three"} {
		_ = a.Send("<message type='chat' id='m" + string(rune('0'+i)) + "' to='bob@localhost'><body>" + body + "</body></message>")
	}
	// A chat state alone is not worth storing; neither is a no-store hint.
	_ = a.Send("<message type='chat' to='bob@localhost'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
	_ = a.Send("<message type='chat' to='bob@localhost'><body>ephemeral</body><no-store xmlns='urn:xmpp:hints'/></message>")
	// Make sure the server processed everything before bob logs in.
	if _, err := a.IQ(timeout, "<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", "sync"); err != nil {
		t.Fatal(err)
	}
	b := e.Login("bob", "secret-pw", "laptop")
	if _, err := b.Expect(500*time.Millisecond, client.Kind(wire.KindMessage)); err == nil {
		t.Fatal("offline messages delivered before initial presence")
	}
	_ = b.Send("<presence/>")
	for _, want := range []string{"one", "two", "three"} {
		m, err := b.Expect(timeout, client.Kind(wire.KindMessage))
		if err != nil {
			t.Fatalf("waiting for %q: %v", want, err)
		}
		if !client.Contains(m, "<body>"+want+"</body>") {
			t.Fatalf("want %q next, got %s", want, m.Raw)
		}
		if m.From != "alice@localhost/phone" || !client.Contains(m, "<delay xmlns='urn:xmpp:delay' from='localhost' stamp='") {
			t.Fatalf("bad offline message: %s", m.Raw)
		}
	}
	if m, err := b.Expect(500*time.Millisecond, client.Kind(wire.KindMessage)); err == nil {
		t.Fatalf("unexpected extra message %s", m.Raw)
	}
	// Delivered messages are gone from storage.
	b.Close()
	b2 := e.Login("bob", "secret-pw", "laptop2")
	_ = b2.Send("<presence/>")
	if m, err := b2.Expect(700*time.Millisecond, client.Kind(wire.KindMessage)); err == nil {
		t.Fatalf("offline message delivered twice: %s", m.Raw)
	}
}

func TestOfflineQuota(t *testing.T) {
	e := servertest.Start(t, func(c *conf.Config) {
		c.Module("offline").(interface{ SetMax(int) }).SetMax(2)
	})
	e.AddUser("alice", "secret-pw")
	e.AddUser("bob", "secret-pw")
	a := e.Login("alice", "secret-pw", "phone")
	for i := 0; i < 3; i++ {
		_ = a.Send("<message type='chat' id='q" + string(rune('0'+i)) + "' to='bob@localhost'><body>hello</body></message>")
	}
	st, err := a.Expect(timeout, client.ID("q2"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Type != "error" || !client.Contains(st, "<service-unavailable") || !strings.Contains(string(st.Raw), "full") {
		t.Fatalf("want service-unavailable for the third message, got %s", st.Raw)
	}
	if _, err := a.Expect(300*time.Millisecond, func(s *wire.Stanza) bool { return s.Type == "error" }); err == nil {
		t.Fatal("the first two messages were refused too")
	}
}
