//go:build unix

package roster_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/wire"
)

// TestLargePendingRequestsDoNotLockOut: strangers' subscription requests
// are delivered again at every initial presence, all at once. Twenty of
// them with a 60 KiB status (1.2 MB, against a session-buffer of 1 MiB)
// used to end every login of their recipient. The stored copy is bounded:
// she gets all twenty requests (the large ones as plain subscribe
// presences), her session lives on, and a small request keeps its status.
func TestLargePendingRequestsDoNotLockOut(t *testing.T) {
	const timeout = 10 * time.Second
	e := servertest.Start(t, func(c *conf.Config) {
		c.Limits.SessionBuffer = conf.MiB
		c.Limits.MaxStanzaSize = 64 * conf.KiB
		c.Limits.BytesPerSecond = 0
	})
	bob := e.AddUser("bob", "pw-bob-1")
	const n = 20
	status := strings.Repeat("s", 60<<10)
	var wg sync.WaitGroup
	for i := range n {
		u := fmt.Sprintf("stranger%02d", i)
		e.AddUser(u, "pw-stranger-1")
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := client.Dial(context.Background(), e.ClientConfig(u, "pw-stranger-1", "r"))
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			st := status
			if i == 0 {
				st = "It is me"
			}
			_ = c.Send("<presence to='" + bob + "' type='subscribe'><status>" + st + "</status></presence>")
			if _, err := c.IQ(timeout, "<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", "sync"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for round := range 2 {
		// A small receive buffer stands for a link slower than loopback.
		b, _ := e.LoginSlow("bob", "pw-bob-1", fmt.Sprintf("r%d", round), 0)
		_ = b.Send("<presence/>")
		_ = b.Send("<iq type='get' id='alive' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
		got := map[string]bool{}
		for {
			st, err := b.Next(3 * timeout)
			if err != nil {
				t.Fatalf("round %d: session ended after %d requests: %v", round, len(got), err)
			}
			if st.ID == "alive" {
				break
			}
			if st.Kind == wire.KindPresence && st.Type == "subscribe" {
				got[st.From] = true
				if st.From == "stranger00@localhost" && !client.Contains(st, "It is me") {
					t.Errorf("a small request lost its status: %s", st.Raw)
				}
			}
		}
		if len(got) != n {
			t.Fatalf("round %d: %d of %d pending requests delivered", round, len(got), n)
		}
		_ = b.Close()
	}
}
