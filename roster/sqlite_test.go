package roster

import (
	"context"
	"errors"
	"path/filepath"
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
