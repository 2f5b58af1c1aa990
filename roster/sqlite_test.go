package roster

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/sqlite"
	"github.com/xmppd/xmppd/wire"
)

// sqliteAccounts adapts storage.Accounts to router.Accounts.
type sqliteAccounts struct{ a storage.Accounts }

func (s sqliteAccounts) Exists(ctx context.Context, bare string) bool {
	_, err := s.a.Get(ctx, bare)
	return err == nil || !errors.Is(err, storage.ErrNotFound)
}

// TestWithSQLite runs a subscription handshake, pending request delivery
// and presence over the real SQLite store.
func TestWithSQLite(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, j := range []string{lromeo, ljuliet} {
		if err := st.Accounts().Create(t.Context(), storage.Account{JID: j}); err != nil {
			t.Fatal(err)
		}
	}
	e := newEnvWith(t, Options{Versioning: true, MaxItems: 10}, st.Roster(), sqliteAccounts{st.Accounts()})

	r := e.login(lromeo + "/orchard")
	e.send(r, `<iq type='set' id='s'><query xmlns='jabber:iq:roster'><item jid='juliet@example.com' name='J'><group>Capulet</group></item></query></iq>`)
	e.send(r, `<presence type='subscribe' to='juliet@example.com'><status>hi</status></presence>`)
	r.Take(t)

	j := e.login(ljuliet + "/balcony")
	got := j.Take(t)
	if reqs := filter(got, wire.KindPresence, "subscribe"); len(reqs) != 1 || !reqs[0].HasChild(wire.NSClient, "status") {
		t.Fatalf("pending request: %s", describe(got))
	}
	e.send(j, `<presence type='subscribed' to='romeo@example.com'/>`)
	e.send(j, `<presence type='subscribe' to='romeo@example.com'/>`)
	e.send(r, `<presence type='subscribed' to='juliet@example.com'/>`)
	if a, b := subOf(e, lromeo, ljuliet), subOf(e, ljuliet, lromeo); a != "Both" || b != "Both" {
		t.Fatalf("states %s / %s", a, b)
	}
	it, _ := e.item(lromeo, ljuliet)
	if it.Name != "J" || len(it.Groups) != 1 {
		t.Errorf("subscription changes lost the name or groups: %+v", it)
	}
	r.Take(t)
	j.Take(t)

	garden := e.login(lromeo + "/garden")
	if got := filter(garden.Take(t), wire.KindPresence, ""); len(got) != 3 { // juliet, orchard, itself
		t.Errorf("garden got %s", describe(got))
	}
	if got := filter(j.Take(t), wire.KindPresence, ""); len(got) != 1 || got[0].From != lromeo+"/garden" {
		t.Errorf("juliet got %s", describe(got))
	}

	e.send(garden, `<iq type='get' id='g'><query xmlns='jabber:iq:roster'/></iq>`)
	res := decodeRoster(t, answer(t, garden.Take(t), "g"))
	if len(res.Query.Items) != 1 || res.Query.Items[0].Subscription != "both" {
		t.Errorf("roster %+v", res.Query.Items)
	}
	e.send(garden, `<iq type='get' id='g2'><query xmlns='jabber:iq:roster' ver='`+*res.Query.Ver+`'/></iq>`)
	if st := answer(t, garden.Take(t), "g2"); decodeRoster(t, st).Query != nil {
		t.Errorf("current version answered with %s", st.Raw)
	}
}

// writerOnlyRoster is the SQLite roster with its point read (Item, a query
// on the read pool) failing: only Update, which reads on the writer, works.
type writerOnlyRoster struct {
	storage.Roster
	u     storage.RosterUpdater
	reads atomic.Int64
}

func (w *writerOnlyRoster) Item(context.Context, string, string) (storage.RosterItem, error) {
	w.reads.Add(1)
	return storage.RosterItem{}, errors.New("read pool not used here")
}

func (w *writerOnlyRoster) Update(ctx context.Context, owner, contact string, fn storage.RosterUpdateFunc) (storage.RosterUpdate, error) {
	return w.u.Update(ctx, owner, contact, fn)
}

// TestSubscriptionsReadInTheWriter: with a store that has
// storage.RosterUpdater, subscription stanzas change the roster without a
// separate point read (before, each change read its item on the read pool,
// whose page cache every commit invalidates, and then queued its write). A
// whole handshake, a refusal and a pre-approval complete, with MaxItems
// counted in the writer's transaction.
func TestSubscriptionsReadInTheWriter(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, j := range []string{lromeo, ljuliet, "tybalt@example.com"} {
		if err := st.Accounts().Create(t.Context(), storage.Account{JID: j}); err != nil {
			t.Fatal(err)
		}
	}
	store := &writerOnlyRoster{Roster: st.Roster(), u: st.Roster().(storage.RosterUpdater)}
	e := newEnvWith(t, Options{Versioning: true, MaxItems: 2}, store, sqliteAccounts{st.Accounts()})
	r := e.login(lromeo + "/orchard")
	j := e.login(ljuliet + "/balcony")
	ty := e.login("tybalt@example.com/street")
	r.Take(t)
	j.Take(t)
	ty.Take(t)

	e.send(r, `<presence type='subscribe' to='juliet@example.com'/>`)
	e.send(j, `<presence type='subscribed' to='romeo@example.com'/>`)
	e.send(j, `<presence type='subscribe' to='romeo@example.com'/>`)
	e.send(r, `<presence type='subscribed' to='juliet@example.com'/>`)
	e.send(ty, `<presence type='subscribe' to='romeo@example.com'/>`)
	e.send(r, `<presence type='unsubscribed' to='tybalt@example.com'/>`)
	e.send(r, `<presence type='subscribed' to='mercutio@example.com'/>`) // pre-approval: romeo's second item
	e.send(r, `<presence type='subscribe' to='benvolio@example.com'/>`)  // a third: the roster is full
	got := r.Take(t)
	if errs := filter(got, wire.KindPresence, "error"); len(errs) != 1 || !strings.Contains(string(errs[0].Raw), "not-allowed") {
		t.Errorf("romeo's third item: want one not-allowed error, got %s", describe(got))
	}
	if n := store.reads.Load(); n != 0 {
		t.Errorf("%d point reads outside the writer", n)
	}
	read := func(owner, contact string) (storage.RosterItem, bool) {
		it, err := st.Roster().Item(t.Context(), owner, contact)
		return it, err == nil
	}
	for _, c := range []struct{ owner, contact, sub string }{{lromeo, ljuliet, "both"}, {ljuliet, lromeo, "both"}, {"tybalt@example.com", lromeo, "none"}} {
		if it, ok := read(c.owner, c.contact); !ok || string(it.Subscription) != c.sub || it.Ask || it.PendingIn {
			t.Errorf("%s's item for %s: %+v (found %v), want %s", c.owner, c.contact, it, ok, c.sub)
		}
	}
	if _, ok := read(lromeo, "tybalt@example.com"); ok {
		t.Error("the refused stranger's hidden item stayed")
	}
	if it, ok := read(lromeo, "mercutio@example.com"); !ok || !it.Approved {
		t.Errorf("pre-approval: %+v (found %v)", it, ok)
	}
	if _, ok := read(lromeo, "benvolio@example.com"); ok {
		t.Error("an item beyond MaxItems was stored")
	}
}
