package c2s_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/server/servertest"
)

// TestAckRequestedByBytes: with XEP-0198 the server asks for an ack not
// only every ack-every stanzas but also once an eighth of session-buffer
// was sent since its last request. Six 50 KiB messages (ack-every is 1000)
// are acknowledged at once by a client that answers <r/>, so the server
// no longer holds them; before, they stayed in the unacknowledged list
// until a thousand stanzas had gone.
func TestAckRequestedByBytes(t *testing.T) {
	const budget = conf.MiB
	e := servertest.Start(t, func(c *conf.Config) {
		c.Limits.SessionBuffer = budget
		c.Limits.MaxStanzaSize = 64 * conf.KiB
		c.Limits.BytesPerSecond = 0
		c.Module("stream-management").(interface{ SetAckEvery(int) }).SetAckEvery(1000)
	})
	e.AddUser("alice", "pw-alice")
	e.AddUser("bob", "pw-bob")
	a := e.Login("alice", "pw-alice", "r")
	b := e.Login("bob", "pw-bob", "r")
	if _, err := b.EnableSM(timeout, false); err != nil {
		t.Fatal(err)
	}
	_ = b.Send("<presence/>")
	if _, err := b.IQ(timeout, "<iq type='get' id='p0' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", "p0"); err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("x", 50<<10)
	for i := range 6 {
		_ = a.Send("<message type='chat' to='bob@localhost/r' id='big" + strconv.Itoa(i) + "'><body>" + body + "</body></message>")
	}
	// A small marker after them: when bob has it, his client has read
	// (and answered) every <r/> sent before it.
	_ = a.Send("<message type='chat' to='bob@localhost/r' id='marker'><body>after</body></message>")
	for i := range 6 {
		if _, err := b.Expect(timeout, client.ID("big"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Expect(timeout, client.ID("marker")); err != nil {
		t.Fatal(err)
	}
	// The answer to this ping comes after the server handled the <a/>s.
	if _, err := b.IQ(timeout, "<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", "p1"); err != nil {
		t.Fatal(err)
	}
	if held := sessionOf(t, e, "bob@localhost", "r").Buffered(); held >= len(body) {
		t.Fatalf("the server still holds %d bytes for bob, who answers every <r/>: the large messages were never acknowledged", held)
	}
}
