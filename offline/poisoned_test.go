package offline_test

import (
	"testing"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

// TestPoisonedOfflineCopyDropped: a stored offline message that is not
// namespace-well-formed standing alone (stored by a version whose reader
// checked prefixes only near the top) is dropped instead of delivered, so
// it cannot end the recipient's stream at every login; the messages
// around it are delivered and nothing stays stored.
func TestPoisonedOfflineCopyDropped(t *testing.T) {
	e := servertest.Start(t, nil)
	e.AddUser("bob", "secret-pw")
	off := e.Srv.Store.Offline()
	for _, m := range []struct{ body, inner string }{{"before", ""}, {"poison", "<y xmlns='urn:a'><evil:z/></y>"}, {"after", ""}} {
		raw := "<message from='alice@localhost/phone' to='bob@localhost' type='chat'><body>" + m.body + "</body>" + m.inner + "</message>"
		if err := off.Store(t.Context(), "bob@localhost", storage.OfflineMessage{From: "alice@localhost/phone", Stanza: []byte(raw)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	b := e.Login("bob", "secret-pw", "laptop")
	_ = b.Send("<presence/>")
	// The answer to a ping sent after the presence comes after the flood.
	_ = b.Send("<iq type='get' id='after-flood' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	var got []string
	for {
		st, err := b.Expect(timeout, func(st *wire.Stanza) bool { return st.Kind == wire.KindMessage || st.ID == "after-flood" })
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		if st.ID == "after-flood" {
			break
		}
		for _, w := range []string{"before", "poison", "after"} {
			if client.Contains(st, "<body>"+w+"</body>") {
				got = append(got, w)
			}
		}
	}
	if len(got) != 2 || got[0] != "before" || got[1] != "after" {
		t.Fatalf("delivered %q, want [before after]", got)
	}
	if _, err := b.IQ(timeout, "<iq type='get' id='alive' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", "alive"); err != nil {
		t.Fatalf("the stream did not survive: %v", err)
	}
	_ = b.Close()
	if n, err := off.Count(t.Context(), "bob@localhost"); err != nil || n != 0 {
		t.Fatalf("%d messages still stored (%v)", n, err)
	}
}
