package mam_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/mam"
	"github.com/xmppd/xmppd/storage/sqlite"
	"github.com/xmppd/xmppd/wire"
)

// waitClosed waits for ch, failing the test after timeout instead of
// hanging.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(timeout):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// marker is a message that is not archived (no content), used to prove
// that nothing else arrived before it.
func marker(to, id string) string {
	return "<message to='" + to + "' id='" + id + "'><x xmlns='urn:example:marker'/></message>"
}

// TestBackpressureHeldArchive: while the archive cannot commit, a sender
// gets exactly as many messages archived and delivered as the queue bound
// allows and is then not read any more (its later messages and a ping wait,
// other users are served); the queue holds no more than the bound. Once
// the archive commits again every message is delivered once, in order, and
// archived on both sides under the stanza-id it was delivered with.
func TestBackpressureHeldArchive(t *testing.T) {
	const bound = 6 // archive rows: a message between local users is 2
	e := start(t, func(c *conf.Config) { c.Module("mam").(*mam.Config).QueueMessages = bound })
	alice := online(t, e, "alice", "phone")
	bob := online(t, e, "bob", "laptop")
	carol := online(t, e, "carol", "desk")
	store := e.Srv.Store.Archive()

	release := sqlite.HoldArchiveCommits(store)
	defer func() {
		if release != nil {
			release()
		}
	}()
	full := sqlite.ArchiveQueueFull(store)
	const n = 20
	for i := range n {
		if err := alice.Send(chat("bob@localhost", "m"+strconv.Itoa(i), strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := alice.Send("<iq type='get' id='after'><ping xmlns='urn:xmpp:ping'/></iq>"); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, full, "alice's session to block on the archive queue")
	if q, _ := sqlite.ArchiveQueued(store); q != bound {
		t.Errorf("archive queue holds %d rows at the bound, want %d", q, bound)
	}

	// Bob got exactly bound/2 messages: carol's marker, sent now, comes
	// right after them.
	if err := carol.Send(marker("bob@localhost/laptop", "mark-b")); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for {
		st := expectMsg(t, bob, func(*wire.Stanza) bool { return true })
		if st.ID == "mark-b" {
			break
		}
		if want := "m" + strconv.Itoa(len(ids)); st.ID != want {
			t.Fatalf("bob got %s, want %s", st.Raw, want)
		}
		id, _ := stanzaID(t, st, "bob@localhost")
		ids = append(ids, id)
	}
	if len(ids) != bound/2 {
		t.Errorf("bob got %d messages while the archive was held, want %d", len(ids), bound/2)
	}
	// Alice's ping waits behind her blocked messages; carol's marker to
	// alice does not.
	if err := carol.Send(marker("alice@localhost/phone", "mark-a")); err != nil {
		t.Fatal(err)
	}
	st, err := alice.Expect(timeout, func(st *wire.Stanza) bool { return st.ID == "after" || st.ID == "mark-a" })
	if err != nil || st.ID != "mark-a" {
		t.Fatalf("alice: want carol's marker before her ping's answer, got %v %v", st, err)
	}
	if q, _ := sqlite.ArchiveQueued(store); q != bound {
		t.Errorf("archive queue holds %d rows, want still %d", q, bound)
	}

	release()
	release = nil
	for i := len(ids); i < n; i++ {
		st := expectMsg(t, bob, client.Kind(wire.KindMessage))
		if want := "m" + strconv.Itoa(i); st.ID != want {
			t.Fatalf("bob got %s, want %s", st.Raw, want)
		}
		id, _ := stanzaID(t, st, "bob@localhost")
		ids = append(ids, id)
	}
	if _, err := alice.Expect(timeout, client.ID("after")); err != nil {
		t.Fatalf("alice's ping: %v", err)
	}
	for _, c := range []*client.Client{alice, bob} {
		rs, f, e := query(t, c, "", nil, "<max>100</max>", "")
		if e != nil {
			t.Fatalf("%s query: %s", c.JID, e.Raw)
		}
		if len(rs) != n || f.Complete != "true" {
			t.Fatalf("%s archive holds %d messages (complete %s), want %d", c.JID, len(rs), f.Complete, n)
		}
		for i, r := range rs {
			if r.Msg.ID != "m"+strconv.Itoa(i) {
				t.Errorf("%s archive message %d is %s", c.JID, i, r.Msg.ID)
			}
			if c == bob && r.ID != ids[i] {
				t.Errorf("bob's archive id %s for m%d, delivered with stanza-id %s", r.ID, i, ids[i])
			}
		}
	}
}

// TestQueryBeforeCommit: the recipient holds a message's stanza-id before
// the archive has committed it; a query naming that id (after-id, ids)
// waits for the commit and answers, never item-not-found.
func TestQueryBeforeCommit(t *testing.T) {
	e := start(t, nil)
	alice := online(t, e, "alice", "phone")
	bob := online(t, e, "bob", "laptop")
	store := e.Srv.Store.Archive()

	if err := alice.Send(chat("bob@localhost", "first", "first")); err != nil {
		t.Fatal(err)
	}
	first, _ := stanzaID(t, expectMsg(t, bob, withID("first")), "bob@localhost")

	release := sqlite.HoldArchiveCommits(store)
	if err := alice.Send(chat("bob@localhost", "held", "held")); err != nil {
		t.Fatal(err)
	}
	held, _ := stanzaID(t, expectMsg(t, bob, withID("held")), "bob@localhost")
	if held == "" {
		t.Fatal("no stanza-id on the message delivered while the archive was held")
	}
	if q, _ := sqlite.ArchiveQueued(store); q < 2 {
		t.Fatalf("archive queue holds %d rows, want at least the held message's 2 (delivered before its commit)", q)
	}
	type answer struct {
		rs []result
		f  *fin
		e  *wire.Stanza
	}
	got := make(chan answer, 1)
	waits := sqlite.ArchiveReadWaits(store)
	go func() {
		// Both the after-id of the first message and ids of the held one.
		rs, f, e := query(t, bob, "", [][2]string{{"after-id", first}}, "", "")
		if e == nil {
			var rs2 []result
			rs2, f, e = query(t, bob, "", [][2]string{{"ids", held}}, "", "")
			rs = append(rs, rs2...)
		}
		got <- answer{rs, f, e}
	}()
	waitClosed(t, waits, "bob's query to wait for the archive's commit")
	release()
	a := <-got
	if a.e != nil {
		t.Fatalf("query naming a delivered, not yet committed message: %s", a.e.Raw)
	}
	if len(a.rs) != 2 || a.rs[0].ID != held || a.rs[1].ID != held || a.rs[0].Msg.ID != "held" {
		t.Fatalf("results %+v, want the held message twice (after-id, ids)", a.rs)
	}
}
