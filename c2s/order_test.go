package c2s_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/wire"
)

// TestBindResultFirst: a stanza routed to a session while it is being bound
// (here from an OnBound callback, the earliest moment the router knows it)
// must reach the client after the bind result, never before.
func TestBindResultFirst(t *testing.T) {
	e := servertest.Start(t, func(c *conf.Config) { c.Auth.RequireTLS = false })
	e.AddUser("bob", "secret-pw")
	firstRead := make(chan struct{})
	e.Srv.Router.OnBound(func(s router.Session) {
		if s.JID().Resourcepart() != "order" {
			return
		}
		s.Send([]byte("<message from='localhost' to='bob@localhost/order' type='headline'><body>early</body></message>"))
		// Hold the binding back until the client has read something, so
		// that whatever the server wrote first is what the client sees.
		select {
		case <-firstRead:
		case <-time.After(timeout):
		}
	})
	c, err := net.Dial("tcp", e.Plain)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * timeout))
	rd := wire.NewReader(c, 1<<16)
	send := func(s string) {
		if _, err := io.WriteString(c, s); err != nil {
			t.Fatal(err)
		}
	}
	next := func() *wire.Stanza {
		st, err := rd.Next()
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	send(header)
	if _, err := rd.Header(); err != nil {
		t.Fatal(err)
	}
	next() // features
	send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGJvYgBzZWNyZXQtcHc=</auth>")
	if st := next(); st.Name != "success" {
		t.Fatalf("auth: %s", st.Raw)
	}
	rd.Reset(c)
	send(header)
	if _, err := rd.Header(); err != nil {
		t.Fatal(err)
	}
	next() // features
	send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>order</resource></bind></iq>")
	first := next()
	close(firstRead)
	if first.Kind != wire.KindIQ || first.ID != "b1" || first.Type != "result" {
		t.Fatalf("the first element after the bind request is not its result: %s", first.Raw)
	}
	if st := next(); st.Kind != wire.KindMessage || !strings.Contains(string(st.Raw), "early") {
		t.Fatalf("want the message next, got %s", st.Raw)
	}
}

// TestSMResumeFailedCarriesH: a resumption of a known session that cannot
// happen answers <failed h='…'/> with the count the server handled
// (XEP-0198 §5), so the client knows which of its stanzas arrived.
func TestSMResumeFailedCarriesH(t *testing.T) {
	e := servertest.Start(t, nil)
	e.AddUser("bob", "secret-pw")
	cfg := e.ClientConfig("bob", "secret-pw", "phone")
	b, id := receiver(t, e, cfg) // enable, then <presence/>: one stanza
	for i := 0; i < 2; i++ {
		sync(t, b) // two more
	}
	_ = b.Abort()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// An h above what the server sent.
	_, _, err := client.Resume(ctx, cfg, id, 1000)
	var re *client.ResumeError
	if !errors.As(err, &re) {
		t.Fatalf("want a failed resumption, got %v", err)
	}
	if !strings.Contains(re.Raw, "h='3'") || !strings.Contains(re.Raw, "handled-count-too-high") {
		t.Fatalf("want <failed h='3'> with handled-count-too-high, got %s", re.Raw)
	}
	// The session is known but over (the failed attempt did not end it;
	// a real client now binds anew). Resume it properly, close it, then
	// try again: item-not-found, still with h.
	b2, _, err := client.Resume(ctx, cfg, id, b.H())
	if err != nil {
		t.Fatal(err)
	}
	gone := servertest.Signal(e.Srv.Router.OnUnbound, "bob@localhost/phone")
	_ = b2.Close()
	servertest.Wait(t, gone, "the session to end")
	_, _, err = client.Resume(ctx, cfg, id, b.H())
	if !errors.As(err, &re) || !strings.Contains(re.Raw, "item-not-found") {
		t.Fatalf("want item-not-found, got %v", err)
	}
}

// TestSMStaleAckIgnored: an <a/> with an h lower than one the client
// already sent is stale, not "handled-count-too-high"; modulo 2^32 too.
func TestSMStaleAckIgnored(t *testing.T) {
	e := servertest.Start(t, nil)
	e.AddUser("alice", "secret-pw")
	c := e.Login("alice", "secret-pw", "r")
	if _, err := c.EnableSM(timeout, false); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		sync(t, c) // four results sent by the server
	}
	_ = c.Send("<a xmlns='urn:xmpp:sm:3' h='4'/>")
	_ = c.Send("<a xmlns='urn:xmpp:sm:3' h='2'/>")          // stale
	_ = c.Send("<a xmlns='urn:xmpp:sm:3' h='4294967295'/>") // -1: stale too
	sync(t, c)                                              // the stream is alive (an error would have closed it)
	// An h above what was sent is still an error.
	_ = c.Send("<a xmlns='urn:xmpp:sm:3' h='6'/>")
	st, err := c.Expect(timeout, func(s *wire.Stanza) bool { return s.Name == "error" })
	if err != nil || !client.Contains(st, "handled-count-too-high") {
		t.Fatalf("want handled-count-too-high, got %v %v", st, err)
	}
}

// TestSMResumeWithStaleH: a resumption quoting an h below the last ack
// resumes and retransmits only what was not acknowledged.
func TestSMResumeWithStaleH(t *testing.T) {
	e := servertest.Start(t, nil)
	e.AddUser("alice", "secret-pw")
	e.AddUser("bob", "secret-pw")
	a := e.Login("alice", "secret-pw", "phone")
	cfg := e.ClientConfig("bob", "secret-pw", "phone")
	b, id := receiver(t, e, cfg)
	var got []string
	for i := 0; i < 3; i++ {
		_ = a.Send(msg("bob@localhost/phone", "m"+strconv.Itoa(i)))
	}
	collect(t, b, &got, 3)
	// The client counts a stanza just after handing it over: once the
	// answer to a later ping arrived, the three messages are counted.
	sync(t, b)
	h := b.H()
	_ = b.Send("<a xmlns='urn:xmpp:sm:3' h='" + strconv.FormatUint(uint64(h), 10) + "'/>")
	sync(t, b) // the ack was processed
	_ = b.Abort()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	b2, _, err := client.Resume(ctx, cfg, id, h-2)
	if err != nil {
		t.Fatalf("resumption with a stale h: %v", err)
	}
	defer b2.Close()
	_ = a.Send(msg("bob@localhost/phone", "after"))
	st, err := b2.Expect(timeout, client.Kind(wire.KindMessage))
	if err != nil {
		t.Fatal(err)
	}
	if bodyOf(st) != "after" {
		t.Fatalf("acknowledged message sent again: %s", st.Raw)
	}
}
