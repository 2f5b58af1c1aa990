package c2s_test

import (
	"fmt"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/c2s"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/wire"
)

// TestBOSHOfflineFloodLargerThanBuffer: a BOSH client that is slower than
// the server gets an offline flood larger than session-buffer (30 × 50 KiB
// against 1 MiB) as it fetches it. What waits for its requests pushes back
// on the writer as a TCP socket's buffer does, so the flood, which goes on
// only once what it sent was written, waits for the client instead of
// filling the BOSH buffer until the session ends.
func TestBOSHOfflineFloodLargerThanBuffer(t *testing.T) {
	e := servertest.Start(t, func(c *conf.Config) {
		c.Limits.SessionBuffer = conf.MiB
		c.Limits.MaxStanzaSize = 64 * conf.KiB
		c.Limits.BytesPerSecond = 0
		c.Limits.BytesBurst = 2 * conf.MiB
		trustLoopback(c)
	})
	e.AddUser("alice", "pw-alice-1")
	e.AddUser("bob", "pw-bob-1")
	a := e.Login("alice", "pw-alice-1", "r")
	const n = 30
	body := func(i int) string { return fmt.Sprintf("m%02d ", i) + strings.Repeat("x", 50<<10) }
	for i := range n {
		_ = a.Send(fmt.Sprintf("<message type='chat' id='big%02d' to='bob@localhost'><body>%s</body></message>", i, body(i)))
	}
	if _, err := a.IQ(timeout, "<iq type='get' id='stored' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", "stored"); err != nil {
		t.Fatal(err)
	}

	b := &boshClient{t: t, url: e.BOSH, rid: 100, header: forwarded("", "https")}
	b.login("bob", "pw-bob-1", "web")
	// The bind result can come before the session is registered; the
	// answer to a request after it cannot.
	if _, els := b.post("", "<iq type='get' id='p' to='localhost' xmlns='jabber:client'><ping xmlns='urn:xmpp:ping'/></iq>"); len(els) != 1 || els[0].ID != "p" {
		t.Fatalf("ping: %v", els)
	}
	s := sessionOf(t, e, "bob@localhost", "web")
	full := make(chan struct{})
	var once gosync.Once
	c2s.OnBOSHFull(t, func(sid string) {
		if sid == b.sid {
			once.Do(func() { close(full) })
		}
	})
	got := 0
	take := func(els []*wire.Stanza) {
		for _, st := range els {
			if st.Kind != wire.KindMessage {
				continue
			}
			if st.ID != fmt.Sprintf("big%02d", got) || !strings.Contains(string(st.Raw), body(got)) {
				t.Fatalf("offline message %d: id %q", got, st.ID)
			}
			got++
		}
	}
	_, els := b.post("", "<presence xmlns='jabber:client'/>")
	take(els)
	// The client is slow: it asks again only once the server waits for it.
	select {
	case <-full:
	case <-s.Done():
		t.Fatalf("the session ended under its own offline flood after %d messages", got)
	case <-time.After(3 * timeout):
		t.Fatal("the server neither waited for the client nor ended the session")
	}
	for got < n {
		head, els := b.post("", "")
		if attr(head, "type") == "terminate" {
			t.Fatalf("the session ended after %d of %d offline messages: %s", got, n, head)
		}
		take(els)
	}
	_, els = b.post("", "<iq type='get' id='alive' to='localhost' xmlns='jabber:client'><ping xmlns='urn:xmpp:ping'/></iq>")
	for len(els) == 0 || els[len(els)-1].ID != "alive" {
		var head string
		head, els = b.post("", "")
		if attr(head, "type") == "terminate" {
			t.Fatalf("the session ended after the flood: %s", head)
		}
	}
	if c, _ := e.Srv.Store.Offline().Count(t.Context(), "bob@localhost"); c != 0 {
		t.Fatalf("%d offline messages left", c)
	}
}
