package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/storage"
)

func testPushRegistrations(t *testing.T, open opener) {
	const a, b = "alice@example.com", "bob@example.com"
	form := []byte("<x xmlns='jabber:x:data' type='submit'><field var='token'><value>\x00\xff☃ &amp; <![CDATA[x]]></value></field></x>")
	reg := func(owner, service, node string) storage.PushRegistration {
		return storage.PushRegistration{Owner: owner, Service: service, Node: node, Form: form, Resource: "phone", Enabled: aTime(0)}
	}
	keys := func(t *testing.T, s storage.Store, owner string) []string {
		t.Helper()
		regs, err := s.PushRegistrations().List(t.Context(), owner)
		noErr(t, "List", err)
		var out []string
		for _, r := range regs {
			if r.Owner != owner {
				t.Errorf("List(%s) returned a registration of %q", owner, r.Owner)
			}
			out = append(out, r.Service+" "+r.Node)
		}
		return out
	}
	same := func(t *testing.T, what string, got, want []string) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %q, want %q", what, got, want)
		}
	}

	t.Run("Empty", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		same(t, "List(no account)", keys(t, s, a), nil)
		_, err := s.PushRegistrations().Put(ctx, reg(a, "push.example.com", "n1"), 0)
		isErr(t, "Put(no account)", err, storage.ErrNotFound)
		create(t, s, a)
		same(t, "List(empty)", keys(t, s, a), nil)
		n, err := s.PushRegistrations().Remove(ctx, a, "push.example.com", "")
		if err != nil || n != 0 {
			t.Errorf("Remove(nothing) = %d, %v", n, err)
		}
		ok, err := s.PushRegistrations().RemoveID(ctx, a, 1)
		if err != nil || ok {
			t.Errorf("RemoveID(nothing) = %v, %v", ok, err)
		}
	})

	t.Run("PutList", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, a)
		want := reg(a, "push.example.com", "node-☃")
		id, err := s.PushRegistrations().Put(ctx, want, 0)
		noErr(t, "Put", err)
		if id <= 0 {
			t.Errorf("Put returned ID %d, want > 0", id)
		}
		regs, err := s.PushRegistrations().List(ctx, a)
		noErr(t, "List", err)
		if len(regs) != 1 {
			t.Fatalf("List = %+v, want one registration", regs)
		}
		got := regs[0]
		if got.ID != id || got.Owner != a || got.Service != want.Service || got.Node != want.Node || got.Resource != "phone" {
			t.Errorf("List = %+v, want %+v with ID %d", got, want, id)
		}
		if !bytes.Equal(got.Form, form) {
			t.Errorf("Form = %q, want %q (byte for byte)", got.Form, form)
		}
		sameTime(t, "Enabled", got.Enabled, want.Enabled)

		// No form, no resource, no time: nil, "", now.
		before := time.Now()
		_, err = s.PushRegistrations().Put(ctx, storage.PushRegistration{Owner: a, Service: "apps.example.net", Node: "n"}, 0)
		noErr(t, "Put(minimal)", err)
		regs, _ = s.PushRegistrations().List(ctx, a)
		if len(regs) != 2 || regs[0].Service != "apps.example.net" {
			t.Fatalf("List = %+v", regs)
		}
		if regs[0].Form != nil || regs[0].Resource != "" {
			t.Errorf("minimal registration came back with form %q, resource %q", regs[0].Form, regs[0].Resource)
		}
		if e := regs[0].Enabled; e.Before(before.Add(-time.Millisecond)) || e.After(time.Now().Add(time.Millisecond)) || e.Location() != time.UTC {
			t.Errorf("zero Enabled stored as %v, want now in UTC", e)
		}
		// An empty form is "none".
		_, err = s.PushRegistrations().Put(ctx, storage.PushRegistration{Owner: a, Service: "apps.example.net", Node: "n", Form: []byte{}}, 0)
		noErr(t, "Put(empty form)", err)
		if regs, _ = s.PushRegistrations().List(ctx, a); regs[0].Form != nil {
			t.Errorf("empty form came back as %q, want nil", regs[0].Form)
		}
	})

	t.Run("SortedExact", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, a, b)
		for _, k := range [][2]string{{"push.example.com", "b"}, {"Push.example.com", "a"}, {"push.example.com", "B"}, {"apps.example.net", "z"}, {"push.example.com", "a"}} {
			_, err := s.PushRegistrations().Put(ctx, reg(a, k[0], k[1]), 0)
			noErr(t, "Put", err)
		}
		_, err := s.PushRegistrations().Put(ctx, reg(b, "push.example.com", "a"), 0)
		noErr(t, "Put(b)", err)
		same(t, "List(a)", keys(t, s, a), []string{"Push.example.com a", "apps.example.net z", "push.example.com B", "push.example.com a", "push.example.com b"})
		same(t, "List(b)", keys(t, s, b), []string{"push.example.com a"})
	})

	t.Run("Replace", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, a)
		id1, err := s.PushRegistrations().Put(ctx, reg(a, "push.example.com", "n"), 0)
		noErr(t, "Put", err)
		r2 := reg(a, "push.example.com", "n")
		r2.Form, r2.Resource, r2.ID = []byte("<x xmlns='jabber:x:data'/>"), "tablet", id1 // ID is ignored
		id2, err := s.PushRegistrations().Put(ctx, r2, 0)
		noErr(t, "Put(replace)", err)
		if id2 <= id1 {
			t.Errorf("replacing gave ID %d after %d, want a larger one", id2, id1)
		}
		regs, _ := s.PushRegistrations().List(ctx, a)
		if len(regs) != 1 || regs[0].ID != id2 || regs[0].Resource != "tablet" || string(regs[0].Form) != "<x xmlns='jabber:x:data'/>" {
			t.Fatalf("after replacing: %+v", regs)
		}
		// The stale ID removes nothing; the current one does.
		ok, err := s.PushRegistrations().RemoveID(ctx, a, id1)
		if err != nil || ok {
			t.Errorf("RemoveID(replaced) = %v, %v; want false", ok, err)
		}
		same(t, "List after stale RemoveID", keys(t, s, a), []string{"push.example.com n"})
		ok, err = s.PushRegistrations().RemoveID(ctx, a, id2)
		if err != nil || !ok {
			t.Errorf("RemoveID(current) = %v, %v; want true", ok, err)
		}
		same(t, "List after RemoveID", keys(t, s, a), nil)
		// IDs are never reused, even after the newest row went.
		id3, err := s.PushRegistrations().Put(ctx, reg(a, "push.example.com", "n"), 0)
		noErr(t, "Put again", err)
		if id3 <= id2 {
			t.Errorf("ID %d reused after %d was removed", id3, id2)
		}
	})

	t.Run("RemoveIDOtherOwner", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, a, b)
		id, err := s.PushRegistrations().Put(ctx, reg(a, "push.example.com", "n"), 0)
		noErr(t, "Put", err)
		ok, err := s.PushRegistrations().RemoveID(ctx, b, id)
		if err != nil || ok {
			t.Errorf("RemoveID(other owner) = %v, %v; want false", ok, err)
		}
		same(t, "List(a)", keys(t, s, a), []string{"push.example.com n"})
	})

	t.Run("Remove", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, a, b)
		for _, k := range [][3]string{{a, "push.example.com", "n1"}, {a, "push.example.com", "n2"}, {a, "apps.example.net", "n1"}, {b, "push.example.com", "n1"}} {
			_, err := s.PushRegistrations().Put(ctx, reg(k[0], k[1], k[2]), 0)
			noErr(t, "Put", err)
		}
		n, err := s.PushRegistrations().Remove(ctx, a, "push.example.com", "n2")
		if err != nil || n != 1 {
			t.Errorf("Remove(node) = %d, %v; want 1", n, err)
		}
		n, err = s.PushRegistrations().Remove(ctx, a, "push.example.com", "n2")
		if err != nil || n != 0 {
			t.Errorf("Remove(again) = %d, %v; want 0", n, err)
		}
		_, err = s.PushRegistrations().Put(ctx, reg(a, "push.example.com", "n3"), 0)
		noErr(t, "Put", err)
		n, err = s.PushRegistrations().Remove(ctx, a, "push.example.com", "")
		if err != nil || n != 2 {
			t.Errorf("Remove(every node) = %d, %v; want 2", n, err)
		}
		same(t, "List(a)", keys(t, s, a), []string{"apps.example.net n1"})
		same(t, "List(b)", keys(t, s, b), []string{"push.example.com n1"})
	})

	t.Run("Limit", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, a, b)
		for _, n := range []string{"n1", "n2"} {
			_, err := s.PushRegistrations().Put(ctx, reg(a, "push.example.com", n), 2)
			noErr(t, "Put", err)
		}
		_, err := s.PushRegistrations().Put(ctx, reg(a, "push.example.com", "n3"), 2)
		isErr(t, "Put(over the limit)", err, storage.ErrQuotaExceeded)
		same(t, "List after refused Put", keys(t, s, a), []string{"push.example.com n1", "push.example.com n2"})
		// Replacing at the limit is fine; other owners have their own count.
		_, err = s.PushRegistrations().Put(ctx, reg(a, "push.example.com", "n2"), 2)
		noErr(t, "Put(replace at the limit)", err)
		_, err = s.PushRegistrations().Put(ctx, reg(b, "push.example.com", "n1"), 1)
		noErr(t, "Put(b)", err)
		// No limit.
		_, err = s.PushRegistrations().Put(ctx, reg(a, "push.example.com", "n3"), 0)
		noErr(t, "Put(no limit)", err)
	})

	t.Run("DeleteAccount", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, a, b)
		_, err := s.PushRegistrations().Put(ctx, reg(a, "push.example.com", "n"), 0)
		noErr(t, "Put(a)", err)
		_, err = s.PushRegistrations().Put(ctx, reg(b, "push.example.com", "n"), 0)
		noErr(t, "Put(b)", err)
		noErr(t, "Delete", s.Accounts().Delete(ctx, a))
		same(t, "List(deleted)", keys(t, s, a), nil)
		same(t, "List(b)", keys(t, s, b), []string{"push.example.com n"})
		noErr(t, "re-Create", s.Accounts().Create(ctx, storage.Account{JID: a}))
		same(t, "List(re-created)", keys(t, s, a), nil)
	})

	t.Run("Concurrent", func(t *testing.T) {
		// Writers racing with a limit: the owner never holds more, and every
		// Put that succeeded is listed under the ID it returned.
		s, ctx := open(t), t.Context()
		create(t, s, a)
		const writers, each, limit = 8, 6, 20
		var wg sync.WaitGroup
		var mu sync.Mutex
		ids := map[int64]string{}
		var other []error
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					node := fmt.Sprintf("w%d-%d", w, i)
					id, err := s.PushRegistrations().Put(ctx, reg(a, "push.example.com", node), limit)
					mu.Lock()
					if err == nil {
						ids[id] = node
					} else if !errors.Is(err, storage.ErrQuotaExceeded) {
						other = append(other, err)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		for _, err := range other {
			t.Errorf("concurrent Put: %v", err)
		}
		regs, err := s.PushRegistrations().List(ctx, a)
		noErr(t, "List", err)
		if len(regs) != limit || len(ids) != limit {
			t.Errorf("%d listed, %d Puts succeeded; want %d each", len(regs), len(ids), limit)
		}
		for _, r := range regs {
			if ids[r.ID] != r.Node {
				t.Errorf("listed %s with ID %d, which Put returned for %q", r.Node, r.ID, ids[r.ID])
			}
		}
	})
}
