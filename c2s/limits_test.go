package c2s_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/c2s"
	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/server/servertest"
)

// TestPreAuthStanzaSize: before authentication an element above
// pre-auth-stanza-size (10 KiB by default) ends the stream with
// policy-violation, while a long-username SCRAM-SHA-512-PLUS login still
// fits and, after it, stanzas up to max-stanza-size pass.
func TestPreAuthStanzaSize(t *testing.T) {
	e := servertest.Start(t, nil)
	register := func(pad int) string {
		return "<iq type='get' id='r1'><query xmlns='jabber:iq:register'/><x xmlns='urn:pad'>" + strings.Repeat("a", pad) + "</x></iq>"
	}
	// Below the pre-auth limit: the registration request is read (and
	// refused, as registration is off).
	wantStreamError(t, rawSession(t, e.Plain, header, register(9000)), "not-authorized")
	// Above it: policy-violation before the element is even complete.
	wantStreamError(t, rawSession(t, e.Plain, header, register(11000)), "policy-violation")

	// The longest username (1023 bytes) with channel binding fits.
	long := strings.Repeat("u", 1023)
	e.AddUser(long, "pw-long-user")
	cfg := e.ClientConfig(long, "pw-long-user", "r")
	cfg.Mechanism = "SCRAM-SHA-512-PLUS"
	c := e.LoginWith(cfg)
	// After authentication the full limit applies: a 200 KiB message goes
	// through.
	e.AddUser("bob", "pw-bob-1")
	bob := e.Login("bob", "pw-bob-1", "r")
	body := strings.Repeat("b", 200<<10)
	if err := c.Send("<message to='bob@localhost/r' id='big'><body>" + body + "</body></message>"); err != nil {
		t.Fatal(err)
	}
	st, err := bob.Expect(timeout, client.ID("big"))
	if err != nil {
		t.Fatal(err)
	}
	if !client.Contains(st, body) {
		t.Fatal("the large message arrived cut")
	}
}

// sessionOf returns the c2s session bound to full JID bare/res.
func sessionOf(t *testing.T, e *servertest.Env, bare, res string) *c2s.Session {
	t.Helper()
	s, ok := e.Srv.Router.Resource(bare, res).(*c2s.Session)
	if !ok {
		t.Fatalf("no c2s session for %s/%s", bare, res)
	}
	return s
}

// TestDefaultInboundRateLimit: on the default configuration a session is
// shaped to bytes-per-second (32 KiB/s) after a burst of bytes-burst
// (1 MiB). A sender of 1 MiB + 160 KiB is read more slowly: its last
// message cannot be routed before the 160 KiB over the burst have been
// earned at the rate (5 s; a loaded machine only makes it later), and its
// session counts the pauses. A client with ordinary traffic, a 100 KiB
// avatar included, is never paused.
func TestDefaultInboundRateLimit(t *testing.T) {
	e := servertest.Start(t, nil)
	rate, burst := int(e.Config.Limits.BytesPerSecond), int(e.Config.Limits.BytesBurst)
	if rate == 0 {
		t.Fatal("no inbound rate limit by default")
	}
	e.AddUser("alice", "pw-alice-1")
	e.AddUser("bob", "pw-bob-1")
	e.AddUser("carol", "pw-carol-1")
	bob := e.Login("bob", "pw-bob-1", "r")

	// An ordinary client: roster, presence, a vCard with an avatar, a
	// conversation.
	carol := e.Login("carol", "pw-carol-1", "r")
	if _, err := carol.IQ(timeout, "<iq type='get' id='ro'><query xmlns='jabber:iq:roster'/></iq>", "ro"); err != nil {
		t.Fatal(err)
	}
	avatar := strings.Repeat("QUJD", 25<<10) // 100 KiB of base64
	if _, err := carol.IQ(timeout, "<iq type='set' id='vc'><vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>"+avatar+"</BINVAL></PHOTO></vCard></iq>", "vc"); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := carol.Send("<message to='bob@localhost/r' type='chat' id='c" + strconv.Itoa(i) + "'><body>hello there, how are you today?</body></message>"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := bob.Expect(timeout, client.ID("c49")); err != nil {
		t.Fatal(err)
	}
	if n := sessionOf(t, e, "carol@localhost", "r").Throttled(); n != 0 {
		t.Fatalf("an ordinary client was paused %d times", n)
	}

	// A flood: 1 MiB + 160 KiB in 100 KiB messages.
	alice := e.Login("alice", "pw-alice-1", "r")
	chunk := strings.Repeat("x", 100<<10)
	const n = 12 // 1200 KiB
	start := time.Now()
	go func() {
		for i := range n {
			if alice.Send("<message to='bob@localhost/r' type='chat' id='f"+strconv.Itoa(i)+"'><body>"+chunk+"</body></message>") != nil {
				return
			}
		}
	}()
	if _, err := bob.Expect(time.Minute, client.ID("f"+strconv.Itoa(n-1))); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	over := n*len(chunk) - burst
	if least := time.Duration(float64(over) / float64(rate) * float64(time.Second)); elapsed < least {
		t.Fatalf("%d bytes over the burst were read in %v; at %d bytes/s that takes at least %v", over, elapsed, rate, least)
	}
	if sessionOf(t, e, "alice@localhost", "r").Throttled() == 0 {
		t.Fatal("the flooding session was never paused")
	}
	// The sender's stream stays usable: a ping is answered.
	if _, err := alice.IQ(time.Minute, "<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", "p1"); err != nil {
		t.Fatal(err)
	}
}
