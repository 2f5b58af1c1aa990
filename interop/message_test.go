package interop

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/xmppd/xmppd/server/servertest"
)

// Bodies that must survive the round trip byte for byte: markup
// characters, quotes, non-ASCII (including a character outside the BMP),
// a newline and a tab.
var trickyBodies = []string{
	"plain ascii",
	`<b>bold</b> & "quoted" 'apostrophes' ]]> &amp;`,
	"grüße, ☃, 日本語, 𝄞 (U+1D11E)",
	"two\nlines\twith a tab",
}

// TestSlixmppMessages exchanges chat messages both ways between two
// slixmpp clients, to the bare and to the full JID: every body arrives
// intact, from the sender's full JID (RFC 6120 §8.1.2.1), with the type and
// id the sender chose.
func TestSlixmppMessages(t *testing.T) {
	t.Parallel()
	e := servertest.Start(t, nil)
	aliceJID := e.AddUser("alice", "alice pw")
	bobJID := e.AddUser("bob", "bob pw")
	a := startSlix(t, e, "alice", "alice pw", "slix-a", scramOnly)
	b := startSlix(t, e, "bob", "bob pw", "slix-b", scramOnly)
	aFull := a.online().str("jid")
	bFull := b.online().str("jid")

	n := 0
	exchange := func(from, to *proc, fromFull, toAddr, body string) {
		t.Helper()
		n++
		id := fmt.Sprintf("m%d", n)
		from.send(map[string]any{"cmd": "message", "to": toAddr, "body": body, "id": id})
		m := to.expect(fmt.Sprintf("message %s %q", id, body), func(e event) bool { return e.is("message") && e.str("id") == id })
		if got := m.str("body"); got != body {
			t.Errorf("%s → %s: body = %q, want %q", fromFull, toAddr, got, body)
		}
		if got := m.str("frm"); got != fromFull {
			t.Errorf("%s → %s: from = %q, want the sender's full JID %q", fromFull, toAddr, got, fromFull)
		}
		if got := m.str("type"); got != "chat" {
			t.Errorf("%s → %s: type = %q, want chat", fromFull, toAddr, got)
		}
		if m["delay"] != nil {
			t.Errorf("%s → %s: live message carries a delay: %v", fromFull, toAddr, m["delay"])
		}
	}
	for _, body := range trickyBodies {
		exchange(a, b, aFull, bobJID, body)
		exchange(b, a, bFull, aliceJID, body)
	}
	exchange(a, b, aFull, bFull, "to your full JID")
	exchange(b, a, bFull, aFull, "and back to yours")
	// Nothing was delivered twice or bounced.
	for _, p := range []*proc{a, b} {
		p.do(map[string]any{"cmd": "ping"})
		p.expectNone(0, "second copy or error", func(e event) bool { return e.is("message") })
	}
}

// TestSlixmppOffline: Alice sends three messages to Bob while he has no
// session; the server stores them (XEP-0160), and when Bob logs in and
// sends initial presence they arrive in order, from Alice's full JID, each
// with an XEP-0203 <delay/> whose stamp is when the server received it.
// The store is empty afterwards.
func TestSlixmppOffline(t *testing.T) {
	t.Parallel()
	e := servertest.Start(t, nil)
	e.AddUser("alice", "alice pw")
	bobJID := e.AddUser("bob", "bob pw")
	ctx := context.Background()

	a := startSlix(t, e, "alice", "alice pw", "slix-a", scramOnly)
	aFull := a.online().str("jid")
	before := time.Now().Add(-time.Second).Truncate(time.Second)
	bodies := []string{"offline one", "offline two", "offline three <&>"}
	for i, body := range bodies {
		a.send(map[string]any{"cmd": "message", "to": bobJID, "body": body, "id": fmt.Sprintf("off%d", i+1)})
	}
	// The server answers this ping after it has handled the messages.
	a.do(map[string]any{"cmd": "ping"})
	a.expectNone(0, "bounce", func(e event) bool { return e.is("message") })
	after := time.Now().Add(time.Second)
	if n, err := e.Srv.Store.Offline().Count(ctx, bobJID); err != nil || n != len(bodies) {
		t.Fatalf("stored offline messages for bob = %d, %v; want %d", n, err, len(bodies))
	}

	b := startSlix(t, e, "bob", "bob pw", "slix-b", scramOnly)
	b.online()
	for i, body := range bodies {
		m := b.expect("offline message "+body, evNamed("message"))
		if got := m.str("body"); got != body {
			t.Fatalf("offline message %d: body = %q, want %q (in order)", i+1, got, body)
		}
		if got, want := m.str("id"), fmt.Sprintf("off%d", i+1); got != want {
			t.Errorf("offline message %d: id = %q, want %q", i+1, got, want)
		}
		if got := m.str("frm"); got != aFull {
			t.Errorf("offline message %d: from = %q, want %q", i+1, got, aFull)
		}
		d := m.obj("delay")
		if d == nil {
			t.Errorf("offline message %d: no urn:xmpp:delay element", i+1)
			continue
		}
		stamp, err := time.Parse(time.RFC3339Nano, d.str("stamp"))
		if err != nil {
			t.Errorf("offline message %d: delay stamp %q is not an XEP-0082 DateTime: %v", i+1, d.str("stamp"), err)
		} else if stamp.Before(before) || stamp.After(after) {
			t.Errorf("offline message %d: delay stamp %v outside [%v, %v]", i+1, stamp, before, after)
		}
		if from := d.str("from"); from != "" && from != e.Domain {
			t.Errorf("offline message %d: delay from = %q, want the server (%s) or none", i+1, from, e.Domain)
		}
	}
	b.do(map[string]any{"cmd": "ping"})
	b.expectNone(0, "extra message", evNamed("message"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := e.Srv.Store.Offline().Count(ctx, bobJID)
		if err == nil && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("offline messages left for bob after delivery: %d, %v", n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
