package c2s_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/xmppd/xmppd/c2s"
	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/mam"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/storage/sqlite"
	"github.com/xmppd/xmppd/wire"
)

// TestPausedSessionIsNotIdle: a session whose reading the server paused
// because storage does not keep up (the archive queue is full, or
// limits unacked-writes of its stanzas wait for their commits) is not
// taken for a dead client by the keepalive, however long the pause: its
// bytes, the answer to a ping included, wait unread in the socket by the
// server's choice. Ending the link would lose what the client sent while
// paused. Once storage goes on, everything the client sent is delivered
// in order and acknowledged.
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
				store := e.Srv.Store.Archive()
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
		})
	}
}
