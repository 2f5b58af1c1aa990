//go:build unix

package c2s_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/storage/sqlite"
	"github.com/xmppd/xmppd/wire"
)

// bigBody is larger than the kernel buffers of a loopback connection can
// take when the client does not read: its 4 KiB receive buffer plus the
// server's send buffer, which Linux grows to at most 4 MiB by default
// (net.ipv4.tcp_wmem; about 1.6 MB measured here). A write of it blocks,
// and whatever is queued behind it waits.
const bigBody = 6 << 20

func bigStanzas(c *conf.Config) { c.Limits.MaxStanzaSize = 8 * conf.MiB }

// TestUnwrittenQueueGoesOffline: a receiver without stream management stops
// reading; messages pile up behind a blocked write; its connection is cut.
// Every accepted message must then be in offline storage, in order.
func TestUnwrittenQueueGoesOffline(t *testing.T) {
	e := servertest.Start(t, bigStanzas)
	e.AddUser("alice", "secret-pw")
	e.AddUser("bob", "secret-pw")
	a := e.Login("alice", "secret-pw", "phone")
	b, stall := e.LoginSlow("bob", "secret-pw", "phone", 0)
	gone := servertest.Signal(e.Srv.Router.OnUnbound, "bob@localhost/phone")
	stall()
	const n = 10
	for i := 0; i < n; i++ {
		pad := ""
		if i == 0 {
			pad = strings.Repeat("x", bigBody)
		}
		if err := a.Send(msg("bob@localhost/phone", "m"+strconv.Itoa(i)+" "+pad)); err != nil {
			t.Fatal(err)
		}
	}
	// All ten were routed to bob's queue: accepted. (A generous bound:
	// behind a multi-megabyte message on a loaded machine.)
	if _, err := a.IQ(3*timeout, "<iq type='get' id='routed' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", "routed"); err != nil {
		t.Fatal(err)
	}
	if err := a.Err(); err != nil {
		t.Fatal(err)
	}
	_ = b.Abort()
	servertest.Wait(t, gone, "bob's session to end")
	msgs, err := e.Srv.Store.Offline().List(context.Background(), "bob@localhost")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != n {
		t.Fatalf("%d of %d accepted messages in offline storage", len(msgs), n)
	}
	for i, m := range msgs {
		st, err := wire.ParseElement(m.Stanza, wire.NSClient)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Fields(bodyOf(st))[0]; got != "m"+strconv.Itoa(i) {
			t.Fatalf("offline message %d is %q", i, got)
		}
	}
}

// TestShutdownHandsQueueOn: a shutdown whose timeout passes while a
// receiver does not read still stores that receiver's queue before storage
// closes.
func TestShutdownHandsQueueOn(t *testing.T) {
	e := servertest.Start(t, bigStanzas)
	e.AddUser("alice", "secret-pw")
	e.AddUser("bob", "secret-pw")
	a := e.Login("alice", "secret-pw", "phone")
	_, stall := e.LoginSlow("bob", "secret-pw", "phone", 0)
	stall()
	for i := 0; i < 3; i++ {
		pad := ""
		if i == 0 {
			pad = strings.Repeat("x", bigBody)
		}
		_ = a.Send(msg("bob@localhost/phone", "m"+strconv.Itoa(i)+" "+pad))
	}
	if _, err := a.IQ(3*timeout, "<iq type='get' id='routed' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", "routed"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no time to drain: links are closed at once
	_ = e.Srv.Shutdown(ctx)
	st, err := sqlite.Open(string(e.Config.Storage.Path))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n, err := st.Offline().Count(context.Background(), "bob@localhost")
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("%d of 3 queued messages stored at shutdown", n)
	}
}
