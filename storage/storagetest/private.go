package storagetest

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/xmppd/xmppd/storage"
)

func testPrivate(t *testing.T, open opener) {
	const a, b = "alice@example.com", "bob@example.com"
	const nsPrefs, nsBookmarks = "exodus:prefs", "storage:bookmarks"
	prefs := []byte("<exodus xmlns='exodus:prefs'><defaultnick>Hamlet</defaultnick></exodus>")
	bookmarks := []byte("<storage xmlns='storage:bookmarks'><conference jid='council@conference.example.com' autojoin='true'/></storage>")
	get := func(t *testing.T, s storage.Store, owner, ns string, want []byte) {
		t.Helper()
		got, err := s.Private().Get(t.Context(), owner, ns)
		if want == nil {
			isErr(t, "Get("+ns+")", err, storage.ErrNotFound)
			return
		}
		noErr(t, "Get("+ns+")", err)
		if !bytes.Equal(got, want) {
			t.Errorf("Get(%s, %s) = %q, want %q", owner, ns, got, want)
		}
	}

	t.Run("RoundTrip", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, a, b)
		get(t, s, a, nsPrefs, nil)
		noErr(t, "Put", s.Private().Put(ctx, a, []storage.PrivateItem{{NS: nsPrefs, XML: prefs}, {NS: nsBookmarks, XML: bookmarks}}, 0))
		get(t, s, a, nsPrefs, prefs)
		get(t, s, a, nsBookmarks, bookmarks)
		get(t, s, b, nsPrefs, nil) // per owner
		get(t, s, a, "EXODUS:PREFS", nil)

		// Several elements of one namespace, and any bytes, come back as stored.
		two := append(append([]byte{}, prefs...), prefs...)
		odd := append([]byte("<x xmlns='odd'>"), allBytes()...)
		noErr(t, "Put(replace)", s.Private().Put(ctx, a, []storage.PrivateItem{{NS: nsPrefs, XML: two}, {NS: "odd", XML: odd}}, 0))
		get(t, s, a, nsPrefs, two)
		get(t, s, a, "odd", odd)
		get(t, s, a, nsBookmarks, bookmarks)

		// Empty XML removes; the last item of a namespace wins.
		noErr(t, "Put(remove, twice)", s.Private().Put(ctx, a, []storage.PrivateItem{
			{NS: "odd"}, {NS: nsPrefs, XML: []byte("<exodus xmlns='exodus:prefs'/>")}, {NS: nsPrefs, XML: prefs}}, 0))
		get(t, s, a, "odd", nil)
		get(t, s, a, nsPrefs, prefs)

		noErr(t, "Delete", s.Private().Delete(ctx, a, nsPrefs))
		get(t, s, a, nsPrefs, nil)
		isErr(t, "Delete(again)", s.Private().Delete(ctx, a, nsPrefs), storage.ErrNotFound)
		get(t, s, a, nsBookmarks, bookmarks)
	})

	t.Run("UnknownOwner", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		isErr(t, "Put(no account)", s.Private().Put(ctx, a, []storage.PrivateItem{{NS: nsPrefs, XML: prefs}}, 0), storage.ErrNotFound)
		get(t, s, a, nsPrefs, nil)
	})

	t.Run("Limit", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, a, b)
		x := func(ns string, n int) storage.PrivateItem {
			open := "<x xmlns='" + ns + "'>"
			return storage.PrivateItem{NS: ns, XML: []byte(open + strings.Repeat("a", n-len(open)-4) + "</x>")}
		}
		noErr(t, "Put 60", s.Private().Put(ctx, a, []storage.PrivateItem{x("n1", 60)}, 100))
		// 60 + 50 > 100: refused, and nothing of it kept.
		isErr(t, "Put past the limit", s.Private().Put(ctx, a, []storage.PrivateItem{x("n2", 20), x("n3", 30)}, 100), storage.ErrQuotaExceeded)
		get(t, s, a, "n2", nil)
		// Replacing counts the new size, not both.
		noErr(t, "Put(replace 60 by 90)", s.Private().Put(ctx, a, []storage.PrivateItem{x("n1", 90)}, 100))
		noErr(t, "Put(exactly 100)", s.Private().Put(ctx, a, []storage.PrivateItem{x("n1", 40), x("n2", 60)}, 100))
		// Another owner has its own budget; limit 0 is none.
		noErr(t, "Put(b)", s.Private().Put(ctx, b, []storage.PrivateItem{x("n1", 100)}, 100))
		noErr(t, "Put(no limit)", s.Private().Put(ctx, a, []storage.PrivateItem{x("n3", 500)}, 0))
	})

	t.Run("DeleteAccount", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, a, b)
		noErr(t, "Put(a)", s.Private().Put(ctx, a, []storage.PrivateItem{{NS: nsBookmarks, XML: bookmarks}}, 0))
		noErr(t, "Put(b)", s.Private().Put(ctx, b, []storage.PrivateItem{{NS: nsBookmarks, XML: bookmarks}}, 0))
		noErr(t, "Delete account", s.Accounts().Delete(ctx, a))
		noErr(t, "re-Create", s.Accounts().Create(ctx, storage.Account{JID: a}))
		get(t, s, a, nsBookmarks, nil)
		get(t, s, b, nsBookmarks, bookmarks)
	})

	t.Run("ConcurrentLimit", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, a)
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				ns := "ns" + string(rune('a'+w))
				_ = s.Private().Put(ctx, a, []storage.PrivateItem{{NS: ns, XML: bytes.Repeat([]byte("x"), 100)}}, 350)
			})
		}
		wg.Wait()
		n := 0
		for w := range 8 {
			if _, err := s.Private().Get(ctx, a, "ns"+string(rune('a'+w))); err == nil {
				n++
			}
		}
		if n != 3 {
			t.Errorf("%d namespaces stored under a 350-byte limit with 100 bytes each, want 3", n)
		}
	})
}
