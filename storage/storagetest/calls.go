package storagetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/xmppd/xmppd/storage"
)

func testCalls(t *testing.T, open opener) {
	ctx := context.Background()
	s := open(t)
	c := s.Calls()
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	a := storage.CallRecord{ID: "c1", Caller: "alice@example.org/phone", Callee: "bob@example.org", Media: []string{"audio"}, Start: t0}
	b := storage.CallRecord{ID: "c2", Caller: "carol@example.org/pc", Callee: "alice@example.org/laptop", Media: []string{"audio", "video"},
		Start: t0.Add(time.Minute), Answer: t0.Add(time.Minute + 5*time.Second), End: t0.Add(2 * time.Minute), EndReason: storage.CallSuccess}
	for _, r := range []storage.CallRecord{a, b} {
		if err := c.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	all, err := c.List(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].ID != "c2" || !reflect.DeepEqual(all[0], b) || !reflect.DeepEqual(all[1], a) {
		t.Fatalf("List all = %+v", all)
	}
	// Replacing a record updates it (the call was answered, then ended).
	a.Callee, a.Answer, a.End, a.EndReason = "bob@example.org/tablet", t0.Add(3*time.Second), t0.Add(30*time.Second), storage.CallConnectivityError
	if err := c.Put(ctx, a); err != nil {
		t.Fatal(err)
	}
	bob, err := c.List(ctx, "bob@example.org", 0)
	if err != nil || len(bob) != 1 || !reflect.DeepEqual(bob[0], a) {
		t.Fatalf("List bob = %+v, %v", bob, err)
	}
	alice, err := c.List(ctx, "alice@example.org", 1)
	if err != nil || len(alice) != 1 || alice[0].ID != "c2" {
		t.Fatalf("List alice limit 1 = %+v, %v", alice, err)
	}
	if none, err := c.List(ctx, "nobody@example.org", 0); err != nil || len(none) != 0 {
		t.Fatalf("List nobody = %+v, %v", none, err)
	}

	// Another caller's call with the same id is another record: it neither
	// replaces a nor is replaced by a's next change.
	m := storage.CallRecord{ID: "c1", Caller: "mallory@example.net/x", Callee: "bob@example.org/tablet", Start: t0.Add(3 * time.Minute),
		End: t0.Add(4 * time.Minute), EndReason: storage.CallSuccess}
	if err := c.Put(ctx, m); err != nil {
		t.Fatal(err)
	}
	a.EndReason = storage.CallSuccess
	if err := c.Put(ctx, a); err != nil {
		t.Fatal(err)
	}
	bob, err = c.List(ctx, "bob@example.org", 0)
	if err != nil || len(bob) != 2 || !reflect.DeepEqual(bob[0], m) || !reflect.DeepEqual(bob[1], a) {
		t.Fatalf("List bob after a second caller used id c1 = %+v, %v", bob, err)
	}
	if mal, err := c.List(ctx, "mallory@example.net", 0); err != nil || len(mal) != 1 || !reflect.DeepEqual(mal[0], m) {
		t.Fatalf("List mallory = %+v, %v", mal, err)
	}
}
