package storagetest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/xmppd/xmppd/storage"
)

func testVCards(t *testing.T, open opener) {
	const a, b = "alice@example.com", "bob@example.com"
	card := func(fn string) []byte {
		return []byte("<vCard xmlns='vcard-temp'><FN>" + fn + "</FN></vCard>")
	}

	t.Run("NotFound", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, a)
		_, err := s.VCards().Get(ctx, a)
		isErr(t, "Get(none)", err, storage.ErrNotFound)
		_, err = s.VCards().PhotoHash(ctx, a)
		isErr(t, "PhotoHash(none)", err, storage.ErrNotFound)
		isErr(t, "Delete(none)", s.VCards().Delete(ctx, a), storage.ErrNotFound)
		_, err = s.VCards().Get(ctx, "nobody@example.com")
		isErr(t, "Get(no account)", err, storage.ErrNotFound)
	})

	t.Run("PutGet", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, a, b)
		when := aTime(0)
		raw := append(card("Alice"), allBytes()...) // stored byte for byte, whatever it holds
		noErr(t, "Put", s.VCards().Put(ctx, a, storage.VCard{XML: raw, PhotoHash: "01b87fcd030b72895ff8e88db57ec525450f000d", Updated: when}))
		got, err := s.VCards().Get(ctx, a)
		noErr(t, "Get", err)
		if !bytes.Equal(got.XML, raw) || got.PhotoHash != "01b87fcd030b72895ff8e88db57ec525450f000d" {
			t.Errorf("Get = %q, %q", got.XML, got.PhotoHash)
		}
		sameTime(t, "Updated", got.Updated, when)
		if h, err := s.VCards().PhotoHash(ctx, a); err != nil || h != "01b87fcd030b72895ff8e88db57ec525450f000d" {
			t.Errorf("PhotoHash = %q, %v", h, err)
		}
		_, err = s.VCards().Get(ctx, b)
		isErr(t, "Get(other owner)", err, storage.ErrNotFound)

		// Replace: no photo now, zero Updated means now.
		before := time.Now()
		noErr(t, "Put again", s.VCards().Put(ctx, a, storage.VCard{XML: card("Alice B.")}))
		got, err = s.VCards().Get(ctx, a)
		noErr(t, "Get", err)
		if !bytes.Equal(got.XML, card("Alice B.")) || got.PhotoHash != "" {
			t.Errorf("Get after replace = %q, %q", got.XML, got.PhotoHash)
		}
		if got.Updated.Before(before.Add(-time.Millisecond)) || got.Updated.After(time.Now().Add(time.Second)) {
			t.Errorf("Updated = %v, want about now", got.Updated)
		}
		if h, err := s.VCards().PhotoHash(ctx, a); err != nil || h != "" {
			t.Errorf("PhotoHash after replace = %q, %v; want empty, nil", h, err)
		}

		noErr(t, "Delete", s.VCards().Delete(ctx, a))
		_, err = s.VCards().Get(ctx, a)
		isErr(t, "Get(deleted)", err, storage.ErrNotFound)
	})

	t.Run("UnknownOwner", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		isErr(t, "Put(no account)", s.VCards().Put(ctx, a, storage.VCard{XML: card("A")}), storage.ErrNotFound)
	})

	t.Run("DeleteAccount", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, a, b)
		noErr(t, "Put(a)", s.VCards().Put(ctx, a, storage.VCard{XML: card("A")}))
		noErr(t, "Put(b)", s.VCards().Put(ctx, b, storage.VCard{XML: card("B")}))
		noErr(t, "Delete account", s.Accounts().Delete(ctx, a))
		noErr(t, "re-Create", s.Accounts().Create(ctx, storage.Account{JID: a}))
		_, err := s.VCards().Get(ctx, a)
		isErr(t, "Get(re-created)", err, storage.ErrNotFound)
		if got, err := s.VCards().Get(ctx, b); err != nil || !bytes.Equal(got.XML, card("B")) {
			t.Errorf("other owner's vCard = %q, %v", got.XML, err)
		}
	})

	t.Run("CanceledContext", func(t *testing.T) {
		s := open(t)
		create(t, s, a)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		isErr(t, "Put(canceled)", s.VCards().Put(ctx, a, storage.VCard{XML: card("A")}), context.Canceled)
		_, err := s.VCards().Get(t.Context(), a)
		isErr(t, "Get after a canceled Put", err, storage.ErrNotFound)
	})
}
