//go:build unix

package offline_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/wire"
)

func stored(t *testing.T, e *servertest.Env, owner string) int {
	t.Helper()
	n, err := e.Srv.Store.Offline().Count(context.Background(), owner)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// seqs lists the stored offline messages of owner by their store ids.
func seqs(t *testing.T, e *servertest.Env, owner string) string {
	t.Helper()
	msgs, err := e.Srv.Store.Offline().List(context.Background(), owner)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range msgs {
		ids = append(ids, strconv.FormatInt(m.Seq, 10))
	}
	return strings.Join(ids, ",")
}

func sync(t *testing.T, c *client.Client, id string) {
	t.Helper()
	// A generous bound: behind a multi-megabyte message on a loaded machine.
	if _, err := c.IQ(3*timeout, "<iq type='get' id='"+id+"' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", id); err != nil {
		t.Fatal(err)
	}
}

// TestOfflineKeptUntilWritten: without stream management, offline messages
// are deleted only once written to the client's link. A client that stops
// reading and whose link dies before the write keeps them all stored, and
// gets them at its next login.
func TestOfflineKeptUntilWritten(t *testing.T) {
	e := servertest.Start(t, func(c *conf.Config) { c.Limits.MaxStanzaSize = 8 * conf.MiB })
	e.AddUser("alice", "secret-pw")
	e.AddUser("bob", "secret-pw")
	a := e.Login("alice", "secret-pw", "phone")
	// The first message is more than the kernel buffers of a loopback
	// connection take (a 4 KiB receive buffer plus a send buffer Linux caps
	// at 4 MiB by default), so a write to a client that does not read
	// cannot complete; the others wait behind it.
	const n = 4
	for i := 0; i < n; i++ {
		pad := ""
		if i == 0 {
			pad = strings.Repeat("x", 6<<20)
		}
		_ = a.Send("<message type='chat' to='bob@localhost'><body>m" + strconv.Itoa(i) + " " + pad + "</body></message>")
	}
	sync(t, a, "stored")
	if got := stored(t, e, "bob@localhost"); got != n {
		t.Fatalf("%d stored, want %d", got, n)
	}
	delivered := servertest.Signal(e.Srv.Router.OnAvailable, "bob@localhost/phone") // after offline delivery
	gone := servertest.Signal(e.Srv.Router.OnUnbound, "bob@localhost/phone")
	b, stall := e.LoginSlow("bob", "secret-pw", "phone", 0)
	stall()
	_ = b.Send("<presence/>")
	servertest.Wait(t, delivered, "offline delivery")
	_ = b.Abort()
	servertest.Wait(t, gone, "the session to end")
	if got := stored(t, e, "bob@localhost"); got != n {
		t.Fatalf("%d of %d offline messages left after a link that never got them", got, n)
	}
	// The next login gets them.
	cfg := e.ClientConfig("bob", "secret-pw", "laptop")
	cfg.MaxStanza = 8 << 20
	b2 := e.LoginWith(cfg)
	_ = b2.Send("<presence/>")
	for i := 0; i < n; i++ {
		m, err := b2.Expect(3*timeout, client.Kind(wire.KindMessage))
		if err != nil {
			t.Fatal(err)
		}
		if !client.Contains(m, "<body>m"+strconv.Itoa(i)+" ") {
			t.Fatalf("message %d: %.80s", i, m.Raw)
		}
	}
	// Written now: gone from storage (the ping answer is written after them).
	sync(t, b2, "after")
	if got := stored(t, e, "bob@localhost"); got != 0 {
		t.Fatalf("%d offline messages left after they were written", got)
	}
}

func ackEvery(n int) func(*conf.Config) {
	return func(c *conf.Config) {
		c.Module("stream-management").(interface{ SetAckEvery(int) }).SetAckEvery(n)
	}
}

// TestOfflineKeptUntilAcked: with XEP-0198, offline messages are deleted
// when the client acknowledges them. A client whose link died before it
// acknowledged them (the server asks at once, with <r/>, after the flood;
// this client never reads it) finds them again at the next login; one that
// acknowledges has them removed.
func TestOfflineKeptUntilAcked(t *testing.T) {
	e := servertest.Start(t, ackEvery(1000)) // the server asks for acks only after the flood
	e.AddUser("alice", "secret-pw")
	e.AddUser("bob", "secret-pw")
	a := e.Login("alice", "secret-pw", "phone")
	for i := 0; i < 3; i++ {
		_ = a.Send("<message type='chat' to='bob@localhost'><body>m" + strconv.Itoa(i) + "</body></message>")
	}
	sync(t, a, "stored")

	delivered := servertest.Signal(e.Srv.Router.OnAvailable, "bob@localhost/phone") // after offline delivery
	gone := servertest.Signal(e.Srv.Router.OnUnbound, "bob@localhost/phone")
	b, stall := e.LoginSlow("bob", "secret-pw", "phone", 0)
	if _, err := b.EnableSM(timeout, false); err != nil {
		t.Fatal(err)
	}
	stall()
	// A read already under way when the client stalled returns this
	// answer; the reads after it block.
	sync(t, b, "stalled")
	_ = b.Send("<presence/>")
	servertest.Wait(t, delivered, "offline delivery")
	// Sent, not acknowledged: still stored (the same records).
	before := seqs(t, e, "bob@localhost")
	if strings.Count(before, ",") != 2 {
		t.Fatalf("offline messages stored while unacknowledged: %q, want 3", before)
	}
	_ = b.Abort() // the link dies before an ack
	servertest.Wait(t, gone, "the session to end")
	if after := seqs(t, e, "bob@localhost"); after != before {
		t.Fatalf("offline messages changed when the link died: %q, then %q", before, after)
	}

	b2 := e.Login("bob", "secret-pw", "laptop")
	if _, err := b2.EnableSM(timeout, false); err != nil {
		t.Fatal(err)
	}
	_ = b2.Send("<presence/>")
	for i := 0; i < 3; i++ {
		m, err := b2.Expect(timeout, client.Kind(wire.KindMessage))
		if err != nil {
			t.Fatal(err)
		}
		if !client.Contains(m, "<body>m"+strconv.Itoa(i)+"</body>") || strings.Count(string(m.Raw), "<delay ") != 1 {
			t.Fatalf("message %d: %s", i, m.Raw)
		}
	}
	// Acknowledge everything received (the client counts a stanza just
	// after handing it over: once a later ping's answer arrived, the three
	// messages are counted); the <r/> answer comes after the server
	// processed the <a/>.
	sync(t, b2, "counted")
	_ = b2.Send("<a xmlns='urn:xmpp:sm:3' h='" + strconv.FormatUint(uint64(b2.H()), 10) + "'/><r xmlns='urn:xmpp:sm:3'/>")
	if _, err := b2.Expect(timeout, func(s *wire.Stanza) bool { return s.NS == client.NSSM && s.Name == "a" }); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, e, "bob@localhost"); got != 0 {
		t.Fatalf("%d offline messages left after the client acknowledged them", got)
	}
}
