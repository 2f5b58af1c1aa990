package push

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/xmppd/xmppd/dataform"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/sqlite"
)

// The app server's in-process path sends only for a registration that is
// stored, to the device of the stored form: a registration that was
// removed, or one naming another node or a forged form, sends nothing.
func TestDeliverOnlyStoredRegistrations(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Accounts().Create(ctx, storage.Account{JID: "bob@example.org"}); err != nil {
		t.Fatal(err)
	}
	s := newStandIn(t)
	cfg := appServerConfig(t, s)
	log := slog.New(slog.DiscardHandler)
	r := router.New(log, func(d string) bool { return d == "example.org" }, nil)
	a, err := NewAppServer(r, st.PushRegistrations(), log, &cfg, []string{"example.org"})
	if err != nil {
		t.Fatal(err)
	}
	form := func(token string) []byte {
		x, err := dataform.Parse([]byte("<x xmlns='jabber:x:data' type='submit'><field var='type'><value>apns</value></field>" +
			"<field var='token'><value>" + token + "</value></field></x>"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := publishOptions(x)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	reg := storage.PushRegistration{Owner: "bob@example.org", Service: "push.example.org", Node: "n1", Form: form("b0b0")}
	if reg.ID, err = st.PushRegistrations().Put(ctx, reg, 0); err != nil {
		t.Fatal(err)
	}

	forged := reg
	forged.Form = form("dead00") // the stored form names b0b0
	otherNode := reg
	otherNode.Node = "n2"
	otherID := reg
	otherID.ID++
	for name, r := range map[string]storage.PushRegistration{"other node": otherNode, "other id": otherID} {
		var se *stanzaErr
		if err := a.deliver(ctx, r, &notice{reg: r, count: 1}); !errors.As(err, &se) || se.cond != "item-not-found" {
			t.Errorf("%s: deliver = %v, want item-not-found", name, err)
		}
	}
	if err := a.deliver(ctx, forged, &notice{reg: forged, count: 1}); err != nil {
		t.Fatal(err)
	}
	if got := s.APNs(); len(got) != 1 || got[0].Path != "/3/device/b0b0" {
		t.Fatalf("APNs requests %+v, want one to the stored token", got)
	}
	if _, err := st.PushRegistrations().RemoveID(ctx, reg.Owner, reg.ID); err != nil {
		t.Fatal(err)
	}
	var se *stanzaErr
	if err := a.deliver(ctx, reg, &notice{reg: reg, count: 2}); !errors.As(err, &se) || se.cond != "item-not-found" {
		t.Errorf("removed registration: deliver = %v, want item-not-found", err)
	}
	if got := s.APNs(); len(got) != 1 {
		t.Fatalf("%d APNs requests, want 1", len(got))
	}
}
