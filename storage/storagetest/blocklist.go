package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/xmppd/xmppd/storage"
)

func testBlocklist(t *testing.T, open opener) {
	const a, b = "alice@example.com", "bob@example.com"
	list := func(t *testing.T, s storage.Store, owner string, want ...string) {
		t.Helper()
		got, err := s.Blocklist().List(t.Context(), owner)
		noErr(t, "List", err)
		if !slices.Equal(got, want) {
			t.Errorf("List(%s) = %q, want %q", owner, got, want)
		}
	}

	t.Run("Empty", func(t *testing.T) {
		s := open(t)
		list(t, s, a) // no account: empty, no error
		create(t, s, a)
		list(t, s, a)
		got, err := s.Blocklist().UnblockAll(t.Context(), a)
		if err != nil || len(got) != 0 {
			t.Errorf("UnblockAll(empty) = %q, %v", got, err)
		}
		got, err = s.Blocklist().Unblock(t.Context(), a, []string{"x@example.net"})
		if err != nil || len(got) != 0 {
			t.Errorf("Unblock(not listed) = %q, %v", got, err)
		}
	})

	t.Run("BlockSortedExact", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, a, b)
		// Every kind of entry XEP-0191 matches on, kept verbatim and sorted
		// byte for byte (upper case before lower case, no folding).
		jids := []string{"romeo@montague.net/orchard", "montague.net", "Iago@shakespeare.lit", "iago@shakespeare.lit", "capulet.com/balcony", "romeo@montague.net"}
		added, err := s.Blocklist().Block(ctx, a, jids, 0)
		noErr(t, "Block", err)
		if !slices.Equal(added, jids) {
			t.Errorf("Block returned %q, want %q (all new, in the order given)", added, jids)
		}
		want := slices.Clone(jids)
		slices.Sort(want)
		list(t, s, a, want...)
		list(t, s, b) // other owners are untouched

		// Already listed entries and duplicates in one call are not "added".
		added, err = s.Blocklist().Block(ctx, a, []string{"montague.net", "new.example", "new.example"}, 0)
		noErr(t, "Block again", err)
		if !slices.Equal(added, []string{"new.example"}) {
			t.Errorf("Block(existing, new, new) returned %q, want [new.example]", added)
		}
		if got, _ := s.Blocklist().List(ctx, a); len(got) != len(jids)+1 {
			t.Errorf("List after re-block has %d entries, want %d", len(got), len(jids)+1)
		}
	})

	t.Run("Unblock", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, a, b)
		_, err := s.Blocklist().Block(ctx, a, []string{"x@example.net", "y@example.net", "example.org"}, 0)
		noErr(t, "Block", err)
		_, err = s.Blocklist().Block(ctx, b, []string{"x@example.net"}, 0)
		noErr(t, "Block(b)", err)
		removed, err := s.Blocklist().Unblock(ctx, a, []string{"y@example.net", "z@example.net", "y@example.net", "x@example.net"})
		noErr(t, "Unblock", err)
		if !slices.Equal(removed, []string{"y@example.net", "x@example.net"}) {
			t.Errorf("Unblock returned %q, want [y@example.net x@example.net]", removed)
		}
		list(t, s, a, "example.org")
		list(t, s, b, "x@example.net")

		_, err = s.Blocklist().Block(ctx, a, []string{"c@example.net", "a@example.net"}, 0)
		noErr(t, "Block", err)
		removed, err = s.Blocklist().UnblockAll(ctx, a)
		noErr(t, "UnblockAll", err)
		if !slices.Equal(removed, []string{"a@example.net", "c@example.net", "example.org"}) {
			t.Errorf("UnblockAll returned %q, want the whole list sorted", removed)
		}
		list(t, s, a)
		list(t, s, b, "x@example.net")
	})

	t.Run("UnknownOwner", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		_, err := s.Blocklist().Block(ctx, a, []string{"x@example.net"}, 0)
		isErr(t, "Block(no account)", err, storage.ErrNotFound)
		_, err = s.Blocklist().Block(ctx, a, []string{"x@example.net"}, 10)
		isErr(t, "Block(no account, limit)", err, storage.ErrNotFound)
		create(t, s, a)
		list(t, s, a)
	})

	t.Run("Limit", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, a)
		_, err := s.Blocklist().Block(ctx, a, []string{"1@x", "2@x", "3@x"}, 4)
		noErr(t, "Block 3 of 4", err)
		// Two more would make 5: nothing of the call is kept.
		_, err = s.Blocklist().Block(ctx, a, []string{"4@x", "5@x"}, 4)
		isErr(t, "Block past the limit", err, storage.ErrQuotaExceeded)
		list(t, s, a, "1@x", "2@x", "3@x")
		// Entries already listed do not count twice.
		added, err := s.Blocklist().Block(ctx, a, []string{"1@x", "4@x"}, 4)
		if err != nil || !slices.Equal(added, []string{"4@x"}) {
			t.Errorf("Block(listed, new) at the limit = %q, %v; want [4@x]", added, err)
		}
		added, err = s.Blocklist().Block(ctx, a, []string{"1@x"}, 4)
		if err != nil || len(added) != 0 {
			t.Errorf("Block(listed) on a full list = %q, %v; want nothing added, no error", added, err)
		}
	})

	t.Run("DeleteAccount", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, a, b)
		_, err := s.Blocklist().Block(ctx, a, []string{"x@example.net", b}, 0)
		noErr(t, "Block(a)", err)
		_, err = s.Blocklist().Block(ctx, b, []string{a}, 0)
		noErr(t, "Block(b)", err)
		noErr(t, "Delete", s.Accounts().Delete(ctx, a))
		list(t, s, a)
		list(t, s, b, a) // b's entry naming the deleted account stays
		noErr(t, "re-Create", s.Accounts().Create(ctx, storage.Account{JID: a}))
		list(t, s, a)
	})

	t.Run("Concurrent", func(t *testing.T) {
		// Writers racing on one list with a limit: it never passes it, and
		// every entry reported added is there.
		s, ctx := open(t), t.Context()
		create(t, s, a)
		const writers, each, limit = 8, 10, 30
		var wg sync.WaitGroup
		var mu sync.Mutex
		var added []string
		var other []error
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					got, err := s.Blocklist().Block(ctx, a, []string{fmt.Sprintf("u%d-%d@example.net", w, i)}, limit)
					mu.Lock()
					if err == nil {
						added = append(added, got...)
					} else if !errors.Is(err, storage.ErrQuotaExceeded) {
						other = append(other, err)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		for _, err := range other {
			t.Errorf("concurrent Block: %v", err)
		}
		got, err := s.Blocklist().List(ctx, a)
		noErr(t, "List", err)
		slices.Sort(added)
		if len(got) != limit || !slices.Equal(got, added) {
			t.Errorf("List has %d entries, %d reported added; want %d, the same", len(got), len(added), limit)
		}
	})
}
