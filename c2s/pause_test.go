package c2s_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xmppd/xmppd/c2s"
	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/mam"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/sqlite"
	"github.com/xmppd/xmppd/wire"
)

// TestPausedSessionIsNotIdle: a sender whose storage does not keep up
// (the archive queue is full, or limits unacked-writes of its stanzas wait
// for their commits) is slowed: its reading pauses, its acks wait, the
// archive queue stays within its bound. And it is not taken for a dead
// client by the keepalive, however long the pause: its bytes, the answer
// to a ping included, wait unread in the socket by the server's choice,
// and ending the link would lose what it sent meanwhile. Once storage goes
// on, everything it sent is delivered in order, acknowledged, and (real
// archive) archived exactly once on both sides.
func TestPausedSessionIsNotIdle(t *testing.T) {
	for _, by := range []string{"archive-queue", "unacked-writes"} {
		t.Run(by, func(t *testing.T) {
			e := servertest.Start(t, func(c *conf.Config) {
				c.Limits.PingInterval, c.Limits.PingTimeout = time.Second, time.Second
				if by == "unacked-writes" {
					c.Limits.UnackedWrites = 1
				} else {
					c.Module("mam").(*mam.Config).QueueMessages = 2 // one message's two rows
				}
			})
			e.AddUser("alice", "secret-pw")
			e.AddUser("bob", "secret-pw")
			a := e.Login("alice", "secret-pw", "phone")
			if _, err := a.EnableSM(timeout, false); err != nil {
				t.Fatal(err)
			}
			b := e.Login("bob", "secret-pw", "phone")

			var paused <-chan struct{}
			var release func()
			var store storage.Archive
			if by == "unacked-writes" {
				h := newHolder(e)
				ch := make(chan struct{})
				var once atomic.Bool
				c2s.OnHoldPause(t, func(jid string) {
					if jid == "alice@localhost/phone" && once.CompareAndSwap(false, true) {
						close(ch)
					}
				})
				paused, release = ch, func() { h.release(t, "hold:1") }
			} else {
				store = e.Srv.Store.Archive()
				release = sqlite.HoldArchiveCommits(store)
				paused = sqlite.ArchiveQueueFull(store)
			}
			var armed atomic.Bool
			var checks atomic.Int32
			checked := make(chan struct{})
			c2s.OnIdleCheck(t, func(jid string) {
				if jid == "alice@localhost/phone" && armed.Load() && checks.Add(1) == 3 {
					close(checked)
				}
			})
			bodies := []string{"hold:1", "m2", "m3"}
			for _, body := range bodies {
				if _, err := a.SendStanza(msg("bob@localhost/phone", body)); err != nil {
					t.Fatal(err)
				}
			}
			_ = a.Send("<r xmlns='urn:xmpp:sm:3'/>")
			servertest.Wait(t, paused, "alice's reading to pause")
			if store != nil {
				if q, _ := sqlite.ArchiveQueued(store); q > 2 {
					t.Errorf("archive queue holds %d rows, past its bound of 2", q)
				}
			}
			// No <a/> while the writes wait: everything alice got before
			// bob's marker (not archived, so routed at once) is no ack.
			if err := b.Send("<message to='alice@localhost/phone' id='mark'><x xmlns='urn:example:marker'/></message>"); err != nil {
				t.Fatal(err)
			}
			for _, st := range until(t, a, "mark") {
				if isAck(st) {
					t.Fatalf("acknowledged while storage held the writes: %s", st.Raw)
				}
			}
			// Three keepalive checks while paused: enough for a ping and
			// its timeout (ping-interval, then ping-timeout), whichever
			// way they fall.
			armed.Store(true)
			servertest.Wait(t, checked, "three keepalive checks of alice's paused session")
			release()
			for _, want := range bodies {
				st, err := b.Expect(timeout, client.Kind(wire.KindMessage))
				if err != nil || bodyOf(st) != want {
					t.Fatalf("bob got %v, %v; want %s", st, err, want)
				}
			}
			expectAck(t, a, len(bodies))
			if err := a.Err(); err != nil {
				t.Fatalf("alice's stream: %v", err)
			}
			if store == nil {
				return
			}
			for _, c := range []*client.Client{a, b} {
				if got := archivedBodies(t, c); strings.Join(got, ",") != strings.Join(bodies, ",") {
					t.Errorf("%s's archive holds %q, want %q once each", c.JID, got, bodies)
				}
			}
		})
	}
}

// archivedBodies returns the bodies of c's archive (XEP-0313), oldest first.
func archivedBodies(t *testing.T, c *client.Client) []string {
	t.Helper()
	if err := c.Send("<iq type='set' id='mamq'><query xmlns='urn:xmpp:mam:2'/></iq>"); err != nil {
		t.Fatal(err)
	}
	var out []string
	for {
		st, err := c.Expect(timeout, func(st *wire.Stanza) bool {
			return st.ID == "mamq" || (st.Kind == wire.KindMessage && client.Contains(st, "urn:xmpp:mam:2"))
		})
		if err != nil {
			t.Fatalf("archive query: %v", err)
		}
		if st.Kind == wire.KindIQ {
			if st.Type != "result" {
				t.Fatalf("archive query: %s", st.Raw)
			}
			return out
		}
		var r struct {
			Body string `xml:"result>forwarded>message>body"`
		}
		if err := st.Decode(&r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r.Body)
	}
}
