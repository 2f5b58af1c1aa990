package c2s_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/wire"
)

func smTimeout(d time.Duration) func(*conf.Config) {
	return func(c *conf.Config) {
		m := c.Module("stream-management")
		if set, ok := m.(interface{ SetResumeTimeout(time.Duration) }); ok {
			set.SetResumeTimeout(d)
		}
	}
}

func bodyOf(st *wire.Stanza) string {
	var m struct {
		Body string `xml:"body"`
	}
	_ = st.Decode(&m)
	return m.Body
}

func msg(to, body string) string {
	return "<message type='chat' to='" + to + "'><body>" + body + "</body></message>"
}

// sync makes sure the server has routed everything c sent before.
func sync(t *testing.T, c *client.Client) {
	t.Helper()
	id := "sync" + strconv.Itoa(rand.IntN(1<<30))
	if _, err := c.IQ(timeout, "<iq type='get' id='"+id+"' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", id); err != nil {
		t.Fatal(err)
	}
}

func TestSMAcks(t *testing.T) {
	e := servertest.Start(t, nil)
	e.AddUser("alice", "secret-pw")
	c := e.Login("alice", "secret-pw", "r")
	if !strings.Contains(string(c.Features), "urn:xmpp:sm:3") {
		t.Fatalf("no <sm/> feature: %s", c.Features)
	}
	if _, err := c.EnableSM(timeout, true); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 7; i++ {
		sync(t, c)
	}
	_ = c.Send("<r xmlns='urn:xmpp:sm:3'/>")
	a, err := c.Expect(timeout, func(s *wire.Stanza) bool { return s.NS == client.NSSM && s.Name == "a" })
	if err != nil {
		t.Fatal(err)
	}
	if !client.Contains(a, "h='7'") {
		t.Fatalf("want h='7' after 7 stanzas, got %s", a.Raw)
	}
	// An ack for more than was sent is a stream error.
	_ = c.Send("<a xmlns='urn:xmpp:sm:3' h='1000'/>")
	st, err := c.Expect(timeout, func(s *wire.Stanza) bool { return s.Name == "error" })
	if err != nil {
		t.Fatal(err)
	}
	if !client.Contains(st, "handled-count-too-high") || !client.Contains(st, "<undefined-condition") {
		t.Fatalf("got %s", st.Raw)
	}
}

func TestSMEnableBeforeBindFails(t *testing.T) {
	e := servertest.Start(t, nil)
	e.AddUser("alice", "secret-pw")
	cfg := e.ClientConfig("alice", "secret-pw", "r")
	cfg.NoBind = true
	c := e.LoginWith(cfg)
	_ = c.Send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	st, err := c.Next(timeout)
	if err != nil || st.Name != "failed" || !client.Contains(st, "unexpected-request") {
		t.Fatalf("got %v %v", st, err)
	}
}

// receiver logs bob in with resumable stream management.
func receiver(t *testing.T, e *servertest.Env, cfg client.Config) (*client.Client, string) {
	t.Helper()
	c := e.LoginWith(cfg)
	id, err := c.EnableSM(timeout, true)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Send("<presence/>")
	return c, id
}

func collect(t *testing.T, c *client.Client, got *[]string, n int) {
	t.Helper()
	for len(*got) < n {
		st, err := c.Expect(timeout, client.Kind(wire.KindMessage))
		if err != nil {
			t.Fatalf("after %d messages: %v", len(*got), err)
		}
		*got = append(*got, bodyOf(st))
	}
}

func TestSMResumeAfterCut(t *testing.T) {
	e := servertest.Start(t, nil)
	e.AddUser("alice", "secret-pw")
	e.AddUser("bob", "secret-pw")
	a := e.Login("alice", "secret-pw", "phone")
	cfg := e.ClientConfig("bob", "secret-pw", "phone")
	b, id := receiver(t, e, cfg)
	var got []string
	for i := 0; i < 5; i++ {
		_ = a.Send(msg("bob@localhost/phone", "m"+strconv.Itoa(i)))
	}
	collect(t, b, &got, 5)
	_ = b.Abort() // the network goes away: no </stream:stream>
	for i := 5; i < 10; i++ {
		_ = a.Send(msg("bob@localhost/phone", "m"+strconv.Itoa(i)))
	}
	sync(t, a)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	b2, _, err := client.Resume(ctx, cfg, id, b.H())
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	collect(t, b2, &got, 10)
	for i, body := range got {
		if body != "m"+strconv.Itoa(i) {
			t.Fatalf("message %d is %q: %q", i, body, got)
		}
	}
	// The resumed session is the same one: still reachable by full JID. And
	// nothing was sent twice: what the resumption retransmits was queued
	// before "after" was sent, so a duplicate would arrive first.
	_ = a.Send(msg("bob@localhost/phone", "after"))
	collect(t, b2, &got, 11)
	if got[10] != "after" {
		t.Fatalf("duplicate after resumption: %q", got[10:])
	}
}

func TestSMResumeOntoWebSocket(t *testing.T) {
	e := servertest.Start(t, trustLoopback) // as behind a TLS-terminating proxy
	e.AddUser("alice", "secret-pw")
	e.AddUser("bob", "secret-pw")
	a := e.Login("alice", "secret-pw", "phone")
	cfg := e.ClientConfig("bob", "secret-pw", "phone")
	b, id := receiver(t, e, cfg)
	_ = b.Abort()
	_ = a.Send(msg("bob@localhost/phone", "while away"))
	sync(t, a)
	ws := cfg
	ws.Mode, ws.Addr = client.WebSocket, e.WS
	ws.Header = forwarded("", "https")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	b2, _, err := client.Resume(ctx, ws, id, b.H())
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	var got []string
	collect(t, b2, &got, 1)
	if got[0] != "while away" {
		t.Fatalf("got %q", got)
	}
}

func TestSMResumeOtherAccountRefused(t *testing.T) {
	e := servertest.Start(t, nil)
	e.AddUser("bob", "secret-pw")
	e.AddUser("mallory", "secret-pw")
	b, id := receiver(t, e, e.ClientConfig("bob", "secret-pw", "phone"))
	_ = b.Abort()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, _, err := client.Resume(ctx, e.ClientConfig("mallory", "secret-pw", "phone"), id, 0)
	var re *client.ResumeError
	if !errors.As(err, &re) || !strings.Contains(re.Raw, "item-not-found") {
		t.Fatalf("want item-not-found, got %v", err)
	}
}

func TestSMTimeoutRequeues(t *testing.T) {
	e := servertest.Start(t, smTimeout(time.Second))
	e.AddUser("alice", "secret-pw")
	e.AddUser("bob", "secret-pw")
	a := e.Login("alice", "secret-pw", "phone")
	b, id := receiver(t, e, e.ClientConfig("bob", "secret-pw", "phone"))
	_ = b.Abort()
	for i := 0; i < 3; i++ {
		_ = a.Send(msg("bob@localhost/phone", "late"+strconv.Itoa(i)))
	}
	_ = a.Send("<iq type='get' id='q1' to='bob@localhost/phone'><query xmlns='jabber:iq:version'/></iq>")
	// The unanswered iq gets an error once the session expires.
	st, err := a.Expect(5*time.Second, client.ID("q1"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Type != "error" || !client.Contains(st, "service-unavailable") {
		t.Fatalf("got %s", st.Raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, _, err := client.Resume(ctx, e.ClientConfig("bob", "secret-pw", "phone"), id, b.H()); err == nil {
		t.Fatal("resumed an expired session")
	}
	// The messages went to offline storage.
	b2 := e.Login("bob", "secret-pw", "laptop")
	_ = b2.Send("<presence/>")
	var got []string
	collect(t, b2, &got, 3)
	if fmt.Sprint(got) != "[late0 late1 late2]" {
		t.Fatalf("got %q", got)
	}
}

// TestSMNothingLost is the mobile test: a sender sends 1,000 messages to a
// receiver whose TCP connection is cut without a close at random moments;
// the receiver resumes each time and must get all of them, in order, once.
func TestSMNothingLost(t *testing.T) {
	e := servertest.Start(t, nil)
	e.AddUser("alice", "secret-pw")
	e.AddUser("bob", "secret-pw")
	a := e.Login("alice", "secret-pw", "phone")
	cfg := e.ClientConfig("bob", "secret-pw", "phone")
	b, id := receiver(t, e, cfg)
	const total = 1000
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := 0; i < total; i++ {
			_ = a.Send(msg("bob@localhost/phone", strconv.Itoa(i)))
			if i%50 == 0 {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}()
	var got []string
	cuts := 0
	for len(got) < total {
		// Read a random number of messages, then cut.
		n := min(total, len(got)+1+rand.IntN(150))
		collect(t, b, &got, n)
		if len(got) == total {
			break
		}
		_ = b.Abort()
		// Drain what the old connection had already handed over (counted in h).
		for st := range b.Incoming() {
			if st.Kind == wire.KindMessage {
				got = append(got, bodyOf(st))
			}
		}
		cuts++
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		nb, _, err := client.Resume(ctx, cfg, id, b.H())
		cancel()
		if err != nil {
			t.Fatalf("resume %d: %v", cuts, err)
		}
		b = nb
	}
	defer b.Close()
	for i, body := range got {
		if body != strconv.Itoa(i) {
			t.Fatalf("after %d cuts: message %d is %q", cuts, i, body)
		}
	}
	// Nothing extra: a message sent after all the others is the next one.
	<-sent
	_ = a.Send(msg("bob@localhost/phone", "end"))
	var end []string
	collect(t, b, &end, 1)
	if end[0] != "end" {
		t.Fatalf("extra message %q", end[0])
	}
	t.Logf("%d messages, %d cuts", total, cuts)
}
