//go:build unix

package offline_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/wire"
)

// largeLimits scales the default limits down by 4 (a session buffer of 16
// maximum stanzas, as 4 MiB is of 256 KiB), so that a test fills it with
// less data; inbound shaping is off so the sender is not paced.
func largeLimits(c *conf.Config) {
	c.Limits.SessionBuffer = conf.MiB
	c.Limits.MaxStanzaSize = 64 * conf.KiB
	c.Limits.BytesPerSecond = 0
	c.Limits.BytesBurst = 2 * conf.MiB
}

// bigBody is the body of message i: about 50 KiB, marked with its number.
func bigBody(i int) string {
	return fmt.Sprintf("m%02d ", i) + strings.Repeat("x", 50*1024)
}

// TestOfflineFloodLargerThanBuffer: offline messages that together exceed
// the session buffer (30 × 50 KiB against 1 MiB) are all delivered, in
// order, without ending the session that fetches them, with and without
// XEP-0198; storage is empty afterwards. A stranger who fills a user's
// offline storage with large messages must not lock the user out.
func TestOfflineFloodLargerThanBuffer(t *testing.T) {
	for _, sm := range []bool{false, true} {
		t.Run(fmt.Sprintf("sm=%v", sm), func(t *testing.T) {
			e := servertest.Start(t, largeLimits)
			e.AddUser("alice", "secret-pw")
			e.AddUser("bob", "secret-pw")
			a := e.Login("alice", "secret-pw", "phone")
			const n = 30
			for i := range n {
				if err := a.Send(fmt.Sprintf("<message type='chat' id='big%02d' to='bob@localhost'><body>%s</body></message>", i, bigBody(i))); err != nil {
					t.Fatal(err)
				}
			}
			sync(t, a, "stored")
			if got := stored(t, e, "bob@localhost"); got != n {
				t.Fatalf("%d stored, want %d", got, n)
			}

			// Twice: a session ended by its own flood would leave the
			// messages stored, and the second login would fail the same way.
			for round := range 2 {
				// A small receive buffer stands for a link slower than
				// loopback: the kernel does not absorb the flood, the
				// server's queue holds what the client has not read yet.
				b, _ := e.LoginSlow("bob", "secret-pw", fmt.Sprintf("laptop%d", round), 0)
				if sm {
					if _, err := b.EnableSM(timeout, false); err != nil {
						t.Fatal(err)
					}
				}
				_ = b.Send("<presence/>")
				want := n
				if round == 1 {
					want = 0
				}
				for i := range want {
					m, err := b.Expect(3*timeout, client.Kind(wire.KindMessage))
					if err != nil {
						t.Fatalf("waiting for offline message %d of %d: %v", i, n, err)
					}
					if m.ID != fmt.Sprintf("big%02d", i) || !client.Contains(m, "<body>"+bigBody(i)+"</body>") {
						t.Fatalf("offline message %d: got id %q (%.60s…)", i, m.ID, m.Raw)
					}
				}
				// The session lives on: it answers a ping, and nothing else
				// came before the answer.
				_ = b.Send("<iq type='get' id='alive' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
				for {
					st, err := b.Next(3 * timeout)
					if err != nil {
						t.Fatalf("round %d: session ended after the flood: %v", round, err)
					}
					if st.ID == "alive" {
						break
					}
					if st.Kind == wire.KindMessage {
						t.Fatalf("round %d: unexpected message %.80s", round, st.Raw)
					}
				}
				if sm {
					// Acknowledge everything; the server's <a/> answers the
					// <r/> after it handled the ack.
					_ = b.Send(fmt.Sprintf("<a xmlns='urn:xmpp:sm:3' h='%d'/><r xmlns='urn:xmpp:sm:3'/>", b.H()))
					if _, err := b.Expect(timeout, func(s *wire.Stanza) bool { return s.NS == client.NSSM && s.Name == "a" }); err != nil {
						t.Fatal(err)
					}
				}
				if got := stored(t, e, "bob@localhost"); got != 0 {
					t.Fatalf("round %d: %d offline messages left after delivery", round, got)
				}
				_ = b.Close()
			}
		})
	}
}

// TestOfflineFloodAcrossResumption: a large offline flood whose link dies
// while the first chunk is being written goes on after an XEP-0198
// resumption: the server sends the unacknowledged chunk again and asks at
// once for an ack, whose arrival starts the next chunk. Every message
// arrives, in order, and storage is empty afterwards.
func TestOfflineFloodAcrossResumption(t *testing.T) {
	e := servertest.Start(t, largeLimits)
	e.AddUser("alice", "secret-pw")
	e.AddUser("bob", "secret-pw")
	a := e.Login("alice", "secret-pw", "phone")
	const n = 30
	for i := range n {
		_ = a.Send(fmt.Sprintf("<message type='chat' id='big%02d' to='bob@localhost'><body>%s</body></message>", i, bigBody(i)))
	}
	sync(t, a, "stored")

	delivered := servertest.Signal(e.Srv.Router.OnAvailable, "bob@localhost/phone") // after the first chunk was queued
	b, stall := e.LoginSlow("bob", "secret-pw", "phone", 0)
	id, err := b.EnableSM(timeout, true)
	if err != nil {
		t.Fatal(err)
	}
	stall()
	sync(t, b, "stalled") // a read under way when stalling returns this answer
	_ = b.Send("<presence/>")
	servertest.Wait(t, delivered, "offline delivery")
	h := b.H()
	_ = b.Abort() // the link dies with the first chunk unacknowledged

	b2, _, err := client.Resume(t.Context(), e.ClientConfig("bob", "secret-pw", "phone"), id, h)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	for i := range n {
		m, err := b2.Expect(3*timeout, client.Kind(wire.KindMessage))
		if err != nil {
			t.Fatalf("waiting for offline message %d of %d after resuming: %v", i, n, err)
		}
		if m.ID != fmt.Sprintf("big%02d", i) {
			t.Fatalf("offline message %d: got id %q", i, m.ID)
		}
	}
	sync(t, b2, "counted")
	_ = b2.Send(fmt.Sprintf("<a xmlns='urn:xmpp:sm:3' h='%d'/><r xmlns='urn:xmpp:sm:3'/>", b2.H()))
	if _, err := b2.Expect(timeout, func(s *wire.Stanza) bool { return s.NS == client.NSSM && s.Name == "a" }); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, e, "bob@localhost"); got != 0 {
		t.Fatalf("%d offline messages left after delivery", got)
	}
}
