package c2s_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xmppd/xmppd/c2s"
	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/wire"
)

// holder is a router hook standing in for a durable write that finishes
// later (an archive commit): a message whose body starts with "hold:" is
// delivered at once, and its routing holds a channel the test closes.
type holder struct {
	mu     gosync.Mutex
	gates  map[string]chan error
	routed chan string // bodies of messages as they are routed, in order
	// released is set when a gate is closed, before it is closed.
	released atomic.Int32
}

func newHolder(e *servertest.Env) *holder {
	h := &holder{gates: map[string]chan error{}, routed: make(chan string, 1000)}
	e.Srv.Router.OnInbound(wire.KindMessage, func(c *router.Context) bool {
		body := bodyOf(c.Stanza)
		if strings.HasPrefix(body, "hold:") {
			ch := make(chan error, 1)
			h.mu.Lock()
			h.gates[body] = ch
			h.mu.Unlock()
			c.Hold(ch)
		}
		h.routed <- body
		return false // delivery goes on
	})
	return h
}

// holdPair starts a server (configured by cfg, may be nil) with a holder,
// alice/phone logged in with XEP-0198 enabled and bob/phone logged in.
func holdPair(t *testing.T, cfg func(*conf.Config)) (*servertest.Env, *holder, *client.Client, *client.Client) {
	t.Helper()
	e := servertest.Start(t, cfg)
	e.AddUser("alice", "secret-pw")
	e.AddUser("bob", "secret-pw")
	h := newHolder(e)
	a := e.Login("alice", "secret-pw", "phone")
	if _, err := a.EnableSM(timeout, false); err != nil {
		t.Fatal(err)
	}
	return e, h, a, e.Login("bob", "secret-pw", "phone")
}

// release completes the write held for body (it must have been routed).
func (h *holder) release(t *testing.T, body string) {
	t.Helper()
	h.mu.Lock()
	ch := h.gates[body]
	delete(h.gates, body)
	h.mu.Unlock()
	if ch == nil {
		t.Fatalf("nothing holds %q", body)
	}
	h.released.Add(1)
	ch <- nil // a write yields its result; closing does as well
}

// waitRouted waits until the hook saw body.
func (h *holder) waitRouted(t *testing.T, body string) {
	t.Helper()
	for {
		select {
		case got := <-h.routed:
			if got == body {
				return
			}
		case <-time.After(timeout):
			t.Fatalf("%q was never routed", body)
		}
	}
}

// until reads c's elements up to the one with id and returns those before it.
func until(t *testing.T, c *client.Client, id string) []*wire.Stanza {
	t.Helper()
	var before []*wire.Stanza
	for {
		st, err := c.Next(timeout)
		if err != nil {
			t.Fatalf("waiting for %q: %v", id, err)
		}
		if st.ID == id {
			return before
		}
		before = append(before, st)
	}
}

func isAck(st *wire.Stanza) bool { return st.NS == client.NSSM && st.Name == "a" }

// noAck checks, with a ping the server answers after everything sent
// before it, that no <a/> came back so far.
func noAck(t *testing.T, c *client.Client, id string) {
	t.Helper()
	_ = c.Send("<iq type='get' id='" + id + "' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	for _, st := range until(t, c, id) {
		if isAck(st) {
			t.Fatalf("acknowledged before the held write was done: %s", st.Raw)
		}
	}
}

func expectAck(t *testing.T, c *client.Client, h int) {
	t.Helper()
	expectAckIn(t, c, h, h)
}

// expectAckIn expects an <a/> with lo <= h <= hi. A range where the last
// stanza is a ping whose answer the client already has: the session counts
// a stanza once Route has returned, which may be just after the answer went
// out.
func expectAckIn(t *testing.T, c *client.Client, lo, hi int) {
	t.Helper()
	st, err := c.Expect(timeout, isAck)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		H string `xml:"h,attr"`
	}
	_ = st.Decode(&v)
	h, err := strconv.Atoi(v.H)
	if err != nil || h < lo || h > hi {
		t.Fatalf("want <a h/> with h in [%d, %d], got %s", lo, hi, st.Raw)
	}
}

// TestAckWaitsForHeldWrite: a message whose routing holds a write is
// delivered at once, but <a/> covers it only once the write is done. Over
// TCP and WebSocket (BOSH runs the same stanza loop).
func TestAckWaitsForHeldWrite(t *testing.T) {
	for _, transport := range []string{"tcp", "websocket"} {
		t.Run(transport, func(t *testing.T) {
			e := servertest.Start(t, trustLoopback)
			e.AddUser("alice", "secret-pw")
			e.AddUser("bob", "secret-pw")
			h := newHolder(e)
			cfg := e.ClientConfig("alice", "secret-pw", "phone")
			if transport == "websocket" {
				cfg.Mode, cfg.Addr = client.WebSocket, e.WS
				cfg.Header = forwarded("", "https")
			}
			a := e.LoginWith(cfg)
			if _, err := a.EnableSM(timeout, false); err != nil {
				t.Fatal(err)
			}
			b := e.Login("bob", "secret-pw", "phone")
			_ = a.Send(msg("bob@localhost/phone", "hold:1"))
			_ = a.Send("<r xmlns='urn:xmpp:sm:3'/>")
			// Delivery does not wait for the write.
			if st, err := b.Expect(timeout, client.Kind(wire.KindMessage)); err != nil || bodyOf(st) != "hold:1" {
				t.Fatalf("bob got %v, %v", st, err)
			}
			noAck(t, a, "marker")
			h.release(t, "hold:1")
			expectAckIn(t, a, 1, 2) // the message (and the marker ping)
		})
	}
}

// TestAckCountsInOrder: h never passes a stanza whose write is pending,
// even when later stanzas (held or not) are done.
func TestAckCountsInOrder(t *testing.T) {
	_, h, a, _ := holdPair(t, nil)
	_ = a.Send(msg("bob@localhost/phone", "hold:a")) // 1
	_ = a.Send(msg("bob@localhost/phone", "u1"))     // 2
	_ = a.Send("<r xmlns='urn:xmpp:sm:3'/>")
	_ = a.Send(msg("bob@localhost/phone", "hold:b")) // 3
	_ = a.Send(msg("bob@localhost/phone", "u2"))     // 4
	_ = a.Send("<r xmlns='urn:xmpp:sm:3'/>")
	h.waitRouted(t, "u2")
	h.release(t, "hold:b") // the later write first: h must not move
	noAck(t, a, "m1")      // 5
	h.release(t, "hold:a")
	// The first <r/> is answered now: it covers at least the two stanzas
	// sent before it (the server's archive also holds u2 until its commit,
	// so the answer may stop at 3); the second covers at least u2.
	expectAckIn(t, a, 2, 5)
	expectAckIn(t, a, 4, 5)
	// Unheld stanzas with nothing pending are answered at once.
	_ = a.Send(msg("bob@localhost/phone", "u3")) // 6
	_ = a.Send("<r xmlns='urn:xmpp:sm:3'/>")
	expectAck(t, a, 6)
}

// TestAckPartial: an <r/> is answered once the stanzas before it are
// handled, with the count of what is handled then, while a later write is
// still pending.
func TestAckPartial(t *testing.T) {
	_, h, a, _ := holdPair(t, nil)
	_ = a.Send(msg("bob@localhost/phone", "hold:a")) // 1
	_ = a.Send(msg("bob@localhost/phone", "u1"))     // 2
	_ = a.Send("<r xmlns='urn:xmpp:sm:3'/>")
	_ = a.Send(msg("bob@localhost/phone", "hold:b")) // 3
	_ = a.Send(msg("bob@localhost/phone", "u2"))     // 4
	_ = a.Send("<r xmlns='urn:xmpp:sm:3'/>")
	h.waitRouted(t, "u2")
	noAck(t, a, "m1") // 5
	h.release(t, "hold:a")
	expectAck(t, a, 2) // hold:b is pending: h stops before it
	noAck(t, a, "m2")  // 6
	h.release(t, "hold:b")
	expectAckIn(t, a, 5, 6)
}

// TestResumeReportsDurableCount: a link lost while a write is pending;
// <resumed h/> counts only what is durable, and the held stanza is counted
// once its write is done.
func TestResumeReportsDurableCount(t *testing.T) {
	e := servertest.Start(t, nil)
	e.AddUser("alice", "secret-pw")
	e.AddUser("bob", "secret-pw")
	h := newHolder(e)
	cfg := e.ClientConfig("alice", "secret-pw", "phone")
	a := e.LoginWith(cfg)
	id, err := a.EnableSM(timeout, true)
	if err != nil {
		t.Fatal(err)
	}
	_ = e.Login("bob", "secret-pw", "phone")
	_ = a.Send(msg("bob@localhost/phone", "u1"))     // 1
	_ = a.Send(msg("bob@localhost/phone", "hold:a")) // 2
	_ = a.Send(msg("bob@localhost/phone", "u2"))     // 3
	sync(t, a)                                       // 4
	_ = a.Abort()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	a2, serverH, err := client.Resume(ctx, cfg, id, a.H())
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	if serverH != 1 {
		t.Fatalf("<resumed h='%d'/>, want 1: only u1 is durable", serverH)
	}
	h.release(t, "hold:a")
	_ = a2.Send("<r xmlns='urn:xmpp:sm:3'/>")
	expectAckIn(t, a2, 3, 4)
}

// TestUnackedWritesPushBack: past limits unacked-writes stanzas with
// pending writes, the session is not read: a stanza sent after the bound is
// routed only once a write is done.
func TestUnackedWritesPushBack(t *testing.T) {
	e, h, a, b := holdPair(t, func(c *conf.Config) { c.Limits.UnackedWrites = 2 })
	paused := make(chan struct{}, 1)
	c2s.OnHoldPause(t, func(jid string) {
		if jid == "alice@localhost/phone" {
			select {
			case paused <- struct{}{}:
			default:
			}
		}
	})
	var afterRelease atomic.Bool
	routedAfter := make(chan struct{})
	e.Srv.Router.OnInbound(wire.KindMessage, func(c *router.Context) bool {
		if bodyOf(c.Stanza) == "marker" {
			afterRelease.Store(h.released.Load() > 0)
			close(routedAfter)
		}
		return false
	})
	_ = a.Send(msg("bob@localhost/phone", "hold:1"))
	_ = a.Send(msg("bob@localhost/phone", "hold:2")) // the bound: reading stops
	_ = a.Send(msg("bob@localhost/phone", "marker"))
	for _, want := range []string{"hold:1", "hold:2"} {
		st, err := b.Expect(timeout, client.Kind(wire.KindMessage))
		if err != nil || bodyOf(st) != want {
			t.Fatalf("bob got %v, %v; want %s", st, err, want)
		}
	}
	// The reader pauses right after routing hold:2, before it reads the
	// marker: from then on the marker must stay unrouted.
	servertest.Wait(t, paused, "alice's reading to pause")
	select {
	case <-routedAfter:
		t.Fatal("the marker was routed while two writes were pending")
	default:
	}
	s, ok := e.Srv.Router.Resource("alice@localhost", "phone").(*c2s.Session)
	if !ok || s.HoldPauses() == 0 {
		t.Fatal("reading did not pause")
	}
	h.release(t, "hold:1")
	servertest.Wait(t, routedAfter, "the marker to be routed")
	if !afterRelease.Load() {
		t.Fatal("the marker was routed before a write was done")
	}
	if st, err := b.Expect(timeout, client.Kind(wire.KindMessage)); err != nil || bodyOf(st) != "marker" {
		t.Fatalf("bob got %v, %v; want the marker", st, err)
	}
	h.release(t, "hold:2")
	_ = a.Send("<r xmlns='urn:xmpp:sm:3'/>")
	expectAck(t, a, 3)
}

// TestAckBeforeStreamClose: a client that closes its stream while an <r/>
// waits for a held write gets its <a/> once the write is done, then the
// server's stream close.
func TestAckBeforeStreamClose(t *testing.T) {
	_, h, a, _ := holdPair(t, nil)
	_ = a.Send(msg("bob@localhost/phone", "hold:1")) // 1
	_ = a.Send("<r xmlns='urn:xmpp:sm:3'/>")
	noAck(t, a, "m1") // 2
	_ = a.Send("</stream:stream>")
	h.release(t, "hold:1")
	expectAckIn(t, a, 1, 2)
	for {
		if _, err := a.Next(timeout); err != nil {
			if !errors.Is(err, wire.ErrStreamEnd) {
				t.Fatalf("stream ended with %v, want a close", err)
			}
			break
		}
	}
}
