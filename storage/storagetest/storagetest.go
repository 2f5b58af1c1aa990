// Package storagetest is the conformance suite for storage backends: every
// implementation of storage.Store must pass Run. It pins down what the
// interfaces' comments promise (error values, ordering, versions, limits,
// isolation between users, concurrency) so callers can rely on it whatever
// the backend.
//
// A backend's test calls it with a function returning a new, empty store:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Store {
//			s, err := sqlite.Open(filepath.Join(t.TempDir(), "xmppd.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/storage"
)

// Run runs the suite. open must return a new, empty store each time it is
// called (it is called once per subtest, never concurrently); Run closes
// the store when the subtest ends, so open must not.
func Run(t *testing.T, open func(t *testing.T) storage.Store) {
	fresh := func(t *testing.T) storage.Store {
		t.Helper()
		s := open(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}
	t.Run("Store", func(t *testing.T) {
		t.Run("Close", func(t *testing.T) {
			s := open(t)
			if err := s.Close(); err != nil {
				t.Fatalf("Close = %v, want nil", err)
			}
		})
	})
	t.Run("Accounts", func(t *testing.T) { testAccounts(t, fresh) })
	t.Run("Roster", func(t *testing.T) { testRoster(t, fresh) })
	t.Run("Offline", func(t *testing.T) { testOffline(t, fresh) })
	t.Run("Archive", func(t *testing.T) { testArchive(t, fresh) })
	t.Run("Blocklist", func(t *testing.T) { testBlocklist(t, fresh) })
	t.Run("VCards", func(t *testing.T) { testVCards(t, fresh) })
	t.Run("Private", func(t *testing.T) { testPrivate(t, fresh) })
	t.Run("PubSub", func(t *testing.T) { testPubSub(t, fresh) })
	t.Run("PushRegistrations", func(t *testing.T) { testPushRegistrations(t, fresh) })
	t.Run("Calls", func(t *testing.T) { testCalls(t, fresh) })
}

type opener = func(t *testing.T) storage.Store

// Helpers.

func create(t *testing.T, s storage.Store, jids ...string) {
	t.Helper()
	for _, jid := range jids {
		if err := s.Accounts().Create(t.Context(), storage.Account{
			JID:     jid,
			Created: time.Now(),
			Keys:    map[string]storage.SCRAMKeys{"SHA-256": keys(jid)},
		}); err != nil {
			t.Fatalf("Create(%s): %v", jid, err)
		}
	}
}

// keys returns distinct, binary (NUL and 0xff carrying) key material for a seed.
func keys(seed string) storage.SCRAMKeys {
	b := func(tag byte, n int) []byte {
		out := make([]byte, n)
		for i := range out {
			out[i] = byte(i*31) ^ tag
		}
		out[0], out[n-1] = 0x00, 0xff
		return append(out, seed...)
	}
	return storage.SCRAMKeys{Salt: b(1, 16), Iterations: 4096, StoredKey: b(2, 32), ServerKey: b(3, 32)}
}

func keysEqual(a, b map[string]storage.SCRAMKeys) bool {
	return maps.EqualFunc(a, b, func(x, y storage.SCRAMKeys) bool {
		return bytes.Equal(x.Salt, y.Salt) && x.Iterations == y.Iterations &&
			bytes.Equal(x.StoredKey, y.StoredKey) && bytes.Equal(x.ServerKey, y.ServerKey)
	})
}

// sameTime checks that got is in UTC and within a millisecond of want.
func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if want.IsZero() {
		if !got.IsZero() {
			t.Errorf("%s = %v, want the zero time", what, got)
		}
		return
	}
	if got.Location() != time.UTC {
		t.Errorf("%s = %v: location %v, want UTC", what, got, got.Location())
	}
	if d := got.Sub(want); d <= -time.Millisecond || d >= time.Millisecond {
		t.Errorf("%s = %v, want %v (off by %v)", what, got, want, d)
	}
}

func isErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s = %v, want %v", what, err, want)
	}
}

func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// aTime is a timestamp with sub-microsecond digits in a non-UTC zone.
func aTime(offset time.Duration) time.Time {
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	return time.Date(2024, 2, 29, 23, 59, 58, 123456789, zone).Add(offset)
}

// allBytes is every byte value, plus invalid UTF-8 and markup.
func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return append(b, []byte("<message xmlns='jabber:client'><body>\xc3\x28 ☃ \x00</body></message>")...)
}

// Accounts.

func testAccounts(t *testing.T, open opener) {
	t.Run("CreateGet", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		want := storage.Account{
			JID: "juliet@capulet.example",
			Keys: map[string]storage.SCRAMKeys{
				"SHA-1":   keys("1"),
				"SHA-256": keys("256"),
				"SHA-512": {Salt: []byte{0}, Iterations: 100000, StoredKey: []byte{0xff}, ServerKey: []byte("k")},
			},
			Created:    aTime(0),
			LastLogout: aTime(time.Hour),
			LastStatus: "Parting is such sweet sorrow ☾",
		}
		noErr(t, "Create", s.Accounts().Create(ctx, want))
		got, err := s.Accounts().Get(ctx, want.JID)
		noErr(t, "Get", err)
		if got.JID != want.JID {
			t.Errorf("JID = %q, want %q", got.JID, want.JID)
		}
		if !keysEqual(got.Keys, want.Keys) {
			t.Errorf("Keys = %v, want %v", got.Keys, want.Keys)
		}
		sameTime(t, "Created", got.Created, want.Created)
		sameTime(t, "LastLogout", got.LastLogout, want.LastLogout)
		if got.LastStatus != want.LastStatus {
			t.Errorf("LastStatus = %q, want %q", got.LastStatus, want.LastStatus)
		}
	})

	t.Run("CreateDefaults", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		before := time.Now()
		noErr(t, "Create", s.Accounts().Create(ctx, storage.Account{JID: "a@example.com"}))
		after := time.Now()
		got, err := s.Accounts().Get(ctx, "a@example.com")
		noErr(t, "Get", err)
		// A zero Created means "now".
		if got.Created.Before(before.Add(-time.Millisecond)) || got.Created.After(after.Add(time.Millisecond)) {
			t.Errorf("Created = %v, want between %v and %v", got.Created, before, after)
		}
		if got.Created.Location() != time.UTC {
			t.Errorf("Created location = %v, want UTC", got.Created.Location())
		}
		sameTime(t, "LastLogout", got.LastLogout, time.Time{})
		if got.LastStatus != "" || len(got.Keys) != 0 {
			t.Errorf("Get = %+v, want no status and no keys", got)
		}
	})

	t.Run("CreateExists", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, "a@example.com")
		err := s.Accounts().Create(ctx, storage.Account{
			JID:  "a@example.com",
			Keys: map[string]storage.SCRAMKeys{"SHA-1": keys("other")},
		})
		isErr(t, "second Create", err, storage.ErrExists)
		got, err := s.Accounts().Get(ctx, "a@example.com")
		noErr(t, "Get", err)
		if want := map[string]storage.SCRAMKeys{"SHA-256": keys("a@example.com")}; !keysEqual(got.Keys, want) {
			t.Errorf("failed Create changed the keys: %v", got.Keys)
		}
	})

	t.Run("GetNotFound", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, "a@example.com")
		_, err := s.Accounts().Get(ctx, "b@example.com")
		isErr(t, "Get(unknown)", err, storage.ErrNotFound)
	})

	t.Run("ExistsAndChanges", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		acc := s.Accounts()
		c0, err := acc.Changes(ctx)
		noErr(t, "Changes", err)
		ok, err := acc.Exists(ctx, "a@example.com")
		noErr(t, "Exists(none)", err)
		if ok {
			t.Fatal("Exists = true before Create")
		}
		create(t, s, "a@example.com")
		c1, err := acc.Changes(ctx)
		noErr(t, "Changes", err)
		if c1 == c0 {
			t.Error("Changes did not change with Create")
		}
		ok, err = acc.Exists(ctx, "a@example.com")
		noErr(t, "Exists", err)
		if !ok {
			t.Fatal("Exists = false after Create")
		}
		if ok, _ := acc.Exists(ctx, "A@example.com"); ok {
			t.Error("Exists matched another spelling")
		}
		// Other changes leave the counter alone.
		noErr(t, "SetLast", acc.SetLast(ctx, "a@example.com", aTime(0), "away"))
		noErr(t, "SetKeys", acc.SetKeys(ctx, "a@example.com", map[string]storage.SCRAMKeys{"SHA-1": keys("x")}))
		if c, _ := acc.Changes(ctx); c != c1 {
			t.Errorf("Changes moved with SetLast/SetKeys: %d, then %d", c1, c)
		}
		noErr(t, "Delete", acc.Delete(ctx, "a@example.com"))
		c2, err := acc.Changes(ctx)
		noErr(t, "Changes", err)
		if c2 == c1 || c2 == c0 {
			t.Errorf("Changes after Delete = %d (before: %d, %d)", c2, c0, c1)
		}
		if ok, err := acc.Exists(ctx, "a@example.com"); ok || err != nil {
			t.Errorf("Exists after Delete = %v, %v", ok, err)
		}
	})

	t.Run("JIDsAreExact", func(t *testing.T) {
		// JIDs arrive canonical; the store compares them byte for byte.
		s, ctx := open(t), t.Context()
		create(t, s, "a@example.com", "A@example.com", "a@Example.com")
		list, err := s.Accounts().List(ctx, "")
		noErr(t, "List", err)
		if want := []string{"A@example.com", "a@Example.com", "a@example.com"}; !slices.Equal(list, want) {
			t.Errorf("List = %q, want %q", list, want)
		}
		_, err = s.Accounts().Get(ctx, "a@EXAMPLE.com")
		isErr(t, "Get(other case)", err, storage.ErrNotFound)
	})

	t.Run("SetKeys", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, "a@example.com", "b@example.com")
		newKeys := map[string]storage.SCRAMKeys{"SHA-1": keys("n1"), "SHA-512": keys("n512")}
		noErr(t, "SetKeys", s.Accounts().SetKeys(ctx, "a@example.com", newKeys))
		got, err := s.Accounts().Get(ctx, "a@example.com")
		noErr(t, "Get", err)
		if !keysEqual(got.Keys, newKeys) {
			t.Errorf("Keys = %v, want exactly %v (old sets replaced)", got.Keys, newKeys)
		}
		other, err := s.Accounts().Get(ctx, "b@example.com")
		noErr(t, "Get(b)", err)
		if want := map[string]storage.SCRAMKeys{"SHA-256": keys("b@example.com")}; !keysEqual(other.Keys, want) {
			t.Errorf("SetKeys(a) changed b's keys: %v", other.Keys)
		}
		noErr(t, "SetKeys(empty)", s.Accounts().SetKeys(ctx, "a@example.com", nil))
		got, err = s.Accounts().Get(ctx, "a@example.com")
		noErr(t, "Get", err)
		if len(got.Keys) != 0 {
			t.Errorf("Keys after SetKeys(nil) = %v, want none", got.Keys)
		}
		isErr(t, "SetKeys(unknown)", s.Accounts().SetKeys(ctx, "c@example.com", newKeys), storage.ErrNotFound)
	})

	t.Run("SetLast", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		created := aTime(-24 * time.Hour)
		noErr(t, "Create", s.Accounts().Create(ctx, storage.Account{JID: "a@example.com", Created: created}))
		create(t, s, "b@example.com")
		for _, st := range []string{"first", "", "second ✓"} {
			when := aTime(time.Duration(len(st)) * time.Minute)
			noErr(t, "SetLast", s.Accounts().SetLast(ctx, "a@example.com", when, st))
			got, err := s.Accounts().Get(ctx, "a@example.com")
			noErr(t, "Get", err)
			sameTime(t, "LastLogout", got.LastLogout, when)
			if got.LastStatus != st {
				t.Errorf("LastStatus = %q, want %q", got.LastStatus, st)
			}
			sameTime(t, "Created", got.Created, created)
		}
		other, err := s.Accounts().Get(ctx, "b@example.com")
		noErr(t, "Get(b)", err)
		if !other.LastLogout.IsZero() || other.LastStatus != "" {
			t.Errorf("SetLast(a) changed b: %+v", other)
		}
		isErr(t, "SetLast(unknown)", s.Accounts().SetLast(ctx, "c@example.com", time.Now(), "x"), storage.ErrNotFound)
	})

	t.Run("Delete", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		isErr(t, "Delete(unknown)", s.Accounts().Delete(ctx, "a@example.com"), storage.ErrNotFound)
		create(t, s, "a@example.com", "b@example.com")
		_, err := s.Roster().Put(ctx, "a@example.com", storage.RosterItem{JID: "b@example.com", Groups: []string{"G"}})
		noErr(t, "Put", err)
		noErr(t, "Store", s.Offline().Store(ctx, "a@example.com", storage.OfflineMessage{From: "b@example.com/r", Stanza: []byte("<message/>")}, 0))

		noErr(t, "Delete", s.Accounts().Delete(ctx, "a@example.com"))
		_, err = s.Accounts().Get(ctx, "a@example.com")
		isErr(t, "Get(deleted)", err, storage.ErrNotFound)
		isErr(t, "second Delete", s.Accounts().Delete(ctx, "a@example.com"), storage.ErrNotFound)

		// Re-creating the JID starts from nothing.
		noErr(t, "re-Create", s.Accounts().Create(ctx, storage.Account{JID: "a@example.com"}))
		got, err := s.Accounts().Get(ctx, "a@example.com")
		noErr(t, "Get", err)
		if len(got.Keys) != 0 {
			t.Errorf("re-created account has old keys: %v", got.Keys)
		}
		items, ver, err := s.Roster().Items(ctx, "a@example.com")
		noErr(t, "Items", err)
		if len(items) != 0 || ver != 0 {
			t.Errorf("re-created account: Items = %v, version %d; want empty, 0", items, ver)
		}
		if v, err := s.Roster().Version(ctx, "a@example.com"); err != nil || v != 0 {
			t.Errorf("re-created account: Version = %d, %v; want 0", v, err)
		}
		if n, err := s.Offline().Count(ctx, "a@example.com"); err != nil || n != 0 {
			t.Errorf("re-created account: Count = %d, %v; want 0", n, err)
		}
		if ms, err := s.Offline().List(ctx, "a@example.com"); err != nil || len(ms) != 0 {
			t.Errorf("re-created account: List = %v, %v; want none", ms, err)
		}
	})

	t.Run("DeleteIsolation", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		const a, b, c = "alice@example.com", "bob@example.com", "carol@example.org"
		create(t, s, a, b, c)
		put := func(owner, contact string) {
			t.Helper()
			_, err := s.Roster().Put(ctx, owner, storage.RosterItem{
				JID: contact, Subscription: storage.SubBoth, Groups: []string{"Friends"},
			})
			noErr(t, "Put", err)
		}
		put(a, b)
		put(a, c)
		put(b, a)
		put(b, c)
		put(c, a)
		for _, to := range []string{a, b, c} {
			for _, from := range []string{a, b, c} {
				noErr(t, "Store", s.Offline().Store(ctx, to, storage.OfflineMessage{
					From: from + "/res", Stanza: []byte("<message from='" + from + "'/>"),
				}, 0))
			}
		}
		bItems, bVer, err := s.Roster().Items(ctx, b)
		noErr(t, "Items(b)", err)
		bMsgs, err := s.Offline().List(ctx, b)
		noErr(t, "List(b)", err)

		noErr(t, "Delete(alice)", s.Accounts().Delete(ctx, a))

		// Other users keep everything, including items pointing at alice and
		// messages alice sent them; their roster versions do not move.
		items, ver, err := s.Roster().Items(ctx, b)
		noErr(t, "Items(b)", err)
		if ver != bVer || !itemsEqual(items, bItems) {
			t.Errorf("bob's roster after deleting alice = %s (version %d), want %s (version %d)", itemsString(items), ver, itemsString(bItems), bVer)
		}
		if _, err := s.Roster().Item(ctx, c, a); err != nil {
			t.Errorf("carol's item for alice after deleting alice: %v", err)
		}
		msgs, err := s.Offline().List(ctx, b)
		noErr(t, "List(b)", err)
		if !msgsEqual(msgs, bMsgs) {
			t.Errorf("bob's offline messages after deleting alice = %v, want %v", msgs, bMsgs)
		}
		if n, err := s.Offline().Count(ctx, c); err != nil || n != 3 {
			t.Errorf("carol's Count = %d, %v; want 3", n, err)
		}
		list, err := s.Accounts().List(ctx, "")
		noErr(t, "List", err)
		if want := []string{b, c}; !slices.Equal(list, want) {
			t.Errorf("List = %q, want %q", list, want)
		}
		// And alice has nothing left.
		items, ver, err = s.Roster().Items(ctx, a)
		noErr(t, "Items(a)", err)
		if len(items) != 0 || ver != 0 {
			t.Errorf("deleted alice: Items = %v, version %d", items, ver)
		}
		_, err = s.Roster().Item(ctx, a, b)
		isErr(t, "Item(deleted owner)", err, storage.ErrNotFound)
		if n, err := s.Offline().Count(ctx, a); err != nil || n != 0 {
			t.Errorf("deleted alice: Count = %d, %v", n, err)
		}
	})

	t.Run("List", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		list, err := s.Accounts().List(ctx, "")
		noErr(t, "List(empty store)", err)
		if len(list) != 0 {
			t.Errorf("List on an empty store = %q", list)
		}
		all := []string{
			"zed@example.com", "a@example.com", "a.b@example.com", "Ab@example.com", "b@example.com",
			"a@example.org", "a@sub.example.com", "a@xample.com", "a@example.co", "a@example.com.evil",
			"😀@example.com", "ü@example.com",
		}
		create(t, s, all...)
		sorted := slices.Clone(all)
		sort.Strings(sorted) // byte order
		list, err = s.Accounts().List(ctx, "")
		noErr(t, "List", err)
		if !slices.Equal(list, sorted) {
			t.Errorf("List(\"\") = %q, want %q", list, sorted)
		}
		for domain, want := range map[string][]string{
			"example.com": {"Ab@example.com", "a.b@example.com", "a@example.com", "b@example.com",
				"zed@example.com", "ü@example.com", "😀@example.com"},
			"example.org":     {"a@example.org"},
			"sub.example.com": {"a@sub.example.com"},
			"example":         nil,
			"%":               nil,
			"nowhere.test":    nil,
		} {
			list, err := s.Accounts().List(ctx, domain)
			noErr(t, "List", err)
			if !slices.Equal(list, want) {
				t.Errorf("List(%q) = %q, want %q", domain, list, want)
			}
		}
	})
}

// Roster.

func itemEqual(a, b storage.RosterItem) bool {
	return a.JID == b.JID && a.Name == b.Name && a.Subscription == b.Subscription && a.Ask == b.Ask &&
		a.PendingIn == b.PendingIn && bytes.Equal(a.PendingInXML, b.PendingInXML) && a.Approved == b.Approved &&
		a.Hidden == b.Hidden && slices.Equal(a.Groups, b.Groups) // nil and empty compare equal
}

func itemsEqual(a, b []storage.RosterItem) bool { return slices.EqualFunc(a, b, itemEqual) }

// itemString formats an item for failure messages.
func itemString(it storage.RosterItem) string {
	return fmt.Sprintf("{%s name=%q sub=%s ask=%t pending=%t xml=%q approved=%t hidden=%t groups=%q}",
		it.JID, it.Name, it.Subscription, it.Ask, it.PendingIn, it.PendingInXML, it.Approved, it.Hidden, it.Groups)
}

func itemsString(items []storage.RosterItem) string {
	var b strings.Builder
	for _, it := range items {
		b.WriteString("\n\t" + itemString(it))
	}
	return b.String()
}

func testRoster(t *testing.T, open opener) {
	const owner = "romeo@montague.example"

	t.Run("Empty", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, owner)
		for _, o := range []string{owner, "nobody@montague.example"} {
			items, ver, err := s.Roster().Items(ctx, o)
			noErr(t, "Items", err)
			if len(items) != 0 || ver != 0 {
				t.Errorf("Items(%s) = %v, version %d; want none, 0", o, items, ver)
			}
			ver, err = s.Roster().Version(ctx, o)
			if err != nil || ver != 0 {
				t.Errorf("Version(%s) = %d, %v; want 0", o, ver, err)
			}
			_, err = s.Roster().Item(ctx, o, "juliet@capulet.example")
			isErr(t, "Item(none)", err, storage.ErrNotFound)
		}
	})

	t.Run("PutItem", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, owner)
		want := storage.RosterItem{
			JID:          "juliet@capulet.example",
			Name:         "Juliet ♥",
			Subscription: storage.SubFrom,
			Ask:          true,
			PendingIn:    true,
			PendingInXML: allBytes(),
			Approved:     true,
			Hidden:       true,
			Groups:       []string{"Capulets", "Friends", "with space ", "Ünïcode group"}, // sorted bytewise
		}
		ver, err := s.Roster().Put(ctx, owner, want)
		noErr(t, "Put", err)
		if ver == 0 {
			t.Errorf("Put returned version 0, want > 0")
		}
		got, err := s.Roster().Item(ctx, owner, want.JID)
		noErr(t, "Item", err)
		if !itemEqual(got, want) {
			t.Errorf("Item = %s\nwant   %s", itemString(got), itemString(want))
		}
		items, iver, err := s.Roster().Items(ctx, owner)
		noErr(t, "Items", err)
		if !itemsEqual(items, []storage.RosterItem{want}) || iver != ver {
			t.Errorf("Items = %s (version %d), want %s (version %d)", itemsString(items), iver, itemString(want), ver)
		}
		if v, err := s.Roster().Version(ctx, owner); err != nil || v != ver {
			t.Errorf("Version = %d, %v; want %d", v, err, ver)
		}
		_, err = s.Roster().Item(ctx, owner, "JULIET@capulet.example")
		isErr(t, "Item(other case)", err, storage.ErrNotFound)
	})

	t.Run("PutEachSubscription", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, owner)
		for _, sub := range []storage.Subscription{storage.SubNone, storage.SubTo, storage.SubFrom, storage.SubBoth} {
			_, err := s.Roster().Put(ctx, owner, storage.RosterItem{JID: string(sub) + "@example.com", Subscription: sub})
			noErr(t, "Put", err)
			got, err := s.Roster().Item(ctx, owner, string(sub)+"@example.com")
			noErr(t, "Item", err)
			if got.Subscription != sub || got.Ask || got.PendingIn || got.Approved || got.Hidden || len(got.PendingInXML) != 0 || len(got.Groups) != 0 {
				t.Errorf("Item = %s, want only subscription %q", itemString(got), sub)
			}
		}
		// The zero Subscription is stored as "none".
		_, err := s.Roster().Put(ctx, owner, storage.RosterItem{JID: "zero@example.com"})
		noErr(t, "Put", err)
		got, err := s.Roster().Item(ctx, owner, "zero@example.com")
		noErr(t, "Item", err)
		if got.Subscription != storage.SubNone {
			t.Errorf("Subscription = %q, want %q", got.Subscription, storage.SubNone)
		}
	})

	t.Run("PutReplaces", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, owner)
		first := storage.RosterItem{
			JID: "juliet@capulet.example", Name: "J", Subscription: storage.SubNone, Ask: true,
			PendingIn: true, PendingInXML: []byte("<presence type='subscribe'/>"), Hidden: true, Groups: []string{"A", "B"},
		}
		v1, err := s.Roster().Put(ctx, owner, first)
		noErr(t, "Put", err)
		second := storage.RosterItem{
			JID: "juliet@capulet.example", Name: "Juliet", Subscription: storage.SubBoth, Groups: []string{"B", "C"},
		}
		v2, err := s.Roster().Put(ctx, owner, second)
		noErr(t, "Put", err)
		if v2 <= v1 {
			t.Errorf("versions %d then %d, want increasing", v1, v2)
		}
		items, ver, err := s.Roster().Items(ctx, owner)
		noErr(t, "Items", err)
		if !itemsEqual(items, []storage.RosterItem{second}) || ver != v2 {
			t.Errorf("Items = %s (version %d), want %s (version %d)", itemsString(items), ver, itemString(second), v2)
		}
	})

	t.Run("Hidden", func(t *testing.T) {
		// The flag round-trips on its own: the store neither derives it from
		// the other fields nor changes them with it.
		s, ctx := open(t), t.Context()
		create(t, s, owner)
		stranger := storage.RosterItem{
			JID: "nurse@capulet.example", Subscription: storage.SubNone,
			PendingIn: true, PendingInXML: []byte("<presence type='subscribe'/>"), Hidden: true,
		}
		added := storage.RosterItem{ // the same state, but added by the user: not hidden
			JID: "juliet@capulet.example", Subscription: storage.SubNone,
			PendingIn: true, PendingInXML: []byte("<presence type='subscribe'/>"),
		}
		hiddenContact := storage.RosterItem{JID: "tybalt@capulet.example", Name: "T", Subscription: storage.SubBoth,
			Hidden: true, Groups: []string{"G"}}
		for _, it := range []storage.RosterItem{stranger, added, hiddenContact} {
			_, err := s.Roster().Put(ctx, owner, it)
			noErr(t, "Put", err)
			got, err := s.Roster().Item(ctx, owner, it.JID)
			noErr(t, "Item", err)
			if !itemEqual(got, it) {
				t.Errorf("Item = %s\nwant   %s", itemString(got), itemString(it))
			}
		}
		items, _, err := s.Roster().Items(ctx, owner)
		noErr(t, "Items", err)
		if want := []storage.RosterItem{added, stranger, hiddenContact}; !itemsEqual(items, want) {
			t.Errorf("Items = %s\nwant %s", itemsString(items), itemsString(want))
		}
		// Replacing clears and sets it.
		stranger.Hidden, added.Hidden = false, true
		for _, it := range []storage.RosterItem{stranger, added} {
			_, err := s.Roster().Put(ctx, owner, it)
			noErr(t, "Put", err)
			got, err := s.Roster().Item(ctx, owner, it.JID)
			noErr(t, "Item", err)
			if got.Hidden != it.Hidden {
				t.Errorf("Item(%s).Hidden = %t after replacing, want %t", it.JID, got.Hidden, it.Hidden)
			}
		}
	})

	t.Run("GroupsNormalized", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, owner)
		in := []string{"b", "a", "B", "b", "ä", "a"}
		orig := slices.Clone(in)
		_, err := s.Roster().Put(ctx, owner, storage.RosterItem{JID: "x@example.com", Groups: in})
		noErr(t, "Put", err)
		if !slices.Equal(in, orig) {
			t.Errorf("Put modified the caller's Groups slice: %q", in)
		}
		got, err := s.Roster().Item(ctx, owner, "x@example.com")
		noErr(t, "Item", err)
		if want := []string{"B", "a", "b", "ä"}; !slices.Equal(got.Groups, want) {
			t.Errorf("Groups = %q, want %q (sorted bytewise, unique)", got.Groups, want)
		}
		_, err = s.Roster().Put(ctx, owner, storage.RosterItem{JID: "x@example.com", Groups: []string{}})
		noErr(t, "Put", err)
		got, err = s.Roster().Item(ctx, owner, "x@example.com")
		noErr(t, "Item", err)
		if len(got.Groups) != 0 {
			t.Errorf("Groups = %q after replacing with none", got.Groups)
		}
	})

	t.Run("ItemsSorted", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, owner, "other@montague.example")
		var want []storage.RosterItem
		for i, jid := range []string{"zed@example.com", "a@example.com", "Bee@example.net", "a@example.co", "mercutio@example.com"} {
			it := storage.RosterItem{
				JID: jid, Name: fmt.Sprint("n", i), Subscription: storage.SubTo,
				Groups: []string{fmt.Sprint("g", i), "shared"},
			}
			if i%2 == 0 {
				it.PendingIn, it.PendingInXML = true, []byte(fmt.Sprintf("<presence from='%s' type='subscribe'/>", jid))
			}
			it.Hidden = i%3 == 0
			_, err := s.Roster().Put(ctx, owner, it)
			noErr(t, "Put", err)
			want = append(want, it)
		}
		// Another owner's items must not leak in.
		_, err := s.Roster().Put(ctx, "other@montague.example", storage.RosterItem{JID: "a@example.com", Groups: []string{"other"}})
		noErr(t, "Put(other)", err)
		slices.SortFunc(want, func(a, b storage.RosterItem) int {
			if a.JID < b.JID {
				return -1
			}
			return 1
		})
		items, _, err := s.Roster().Items(ctx, owner)
		noErr(t, "Items", err)
		if !itemsEqual(items, want) {
			t.Errorf("Items = %s\nwant (sorted by JID) %s", itemsString(items), itemsString(want))
		}
	})

	t.Run("Remove", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, owner)
		v1, err := s.Roster().Put(ctx, owner, storage.RosterItem{JID: "a@example.com", Groups: []string{"G1", "G2"}})
		noErr(t, "Put", err)
		v2, err := s.Roster().Put(ctx, owner, storage.RosterItem{JID: "b@example.com"})
		noErr(t, "Put", err)

		_, err = s.Roster().Remove(ctx, owner, "c@example.com")
		isErr(t, "Remove(absent)", err, storage.ErrNotFound)
		if v, _ := s.Roster().Version(ctx, owner); v != v2 {
			t.Errorf("failed Remove changed the version from %d to %d", v2, v)
		}

		v3, err := s.Roster().Remove(ctx, owner, "a@example.com")
		noErr(t, "Remove", err)
		if !(v1 < v2 && v2 < v3) {
			t.Errorf("versions %d, %d, %d; want increasing", v1, v2, v3)
		}
		_, err = s.Roster().Item(ctx, owner, "a@example.com")
		isErr(t, "Item(removed)", err, storage.ErrNotFound)
		_, err = s.Roster().Remove(ctx, owner, "a@example.com")
		isErr(t, "second Remove", err, storage.ErrNotFound)
		items, ver, err := s.Roster().Items(ctx, owner)
		noErr(t, "Items", err)
		if len(items) != 1 || items[0].JID != "b@example.com" || ver != v3 {
			t.Errorf("Items = %s (version %d), want b@example.com only (version %d)", itemsString(items), ver, v3)
		}
		// Its groups went with it.
		_, err = s.Roster().Put(ctx, owner, storage.RosterItem{JID: "a@example.com"})
		noErr(t, "Put", err)
		got, err := s.Roster().Item(ctx, owner, "a@example.com")
		noErr(t, "Item", err)
		if len(got.Groups) != 0 {
			t.Errorf("re-added item has the removed item's groups %q", got.Groups)
		}
	})

	t.Run("UnknownOwner", func(t *testing.T) {
		// Rosters belong to accounts: writing one for a JID with no account
		// is ErrNotFound (and leaves nothing behind for a future account).
		s, ctx := open(t), t.Context()
		_, err := s.Roster().Put(ctx, owner, storage.RosterItem{JID: "a@example.com"})
		isErr(t, "Put(no account)", err, storage.ErrNotFound)
		_, err = s.Roster().Remove(ctx, owner, "a@example.com")
		isErr(t, "Remove(no account)", err, storage.ErrNotFound)
		create(t, s, owner)
		items, ver, err := s.Roster().Items(ctx, owner)
		noErr(t, "Items", err)
		if len(items) != 0 || ver != 0 {
			t.Errorf("new account's Items = %v, version %d", items, ver)
		}
	})

	t.Run("Versions", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		const other = "benvolio@montague.example"
		create(t, s, owner, other)
		var last uint64
		check := func(what string, v uint64, err error) {
			t.Helper()
			noErr(t, what, err)
			if v <= last {
				t.Errorf("%s: version %d after %d, want strictly increasing", what, v, last)
			}
			last = v
			if cur, err := s.Roster().Version(ctx, owner); err != nil || cur != v {
				t.Errorf("%s: Version = %d, %v; want %d", what, cur, err, v)
			}
			if _, iv, err := s.Roster().Items(ctx, owner); err != nil || iv != v {
				t.Errorf("%s: Items version = %d, %v; want %d", what, iv, err, v)
			}
		}
		otherVer, err := s.Roster().Put(ctx, other, storage.RosterItem{JID: "x@example.com"})
		noErr(t, "Put(other)", err)
		for i := range 5 {
			v, err := s.Roster().Put(ctx, owner, storage.RosterItem{JID: fmt.Sprintf("c%d@example.com", i)})
			check("Put", v, err)
			v, err = s.Roster().Put(ctx, owner, storage.RosterItem{JID: fmt.Sprintf("c%d@example.com", i), Name: "same again"})
			check("Put(replace)", v, err)
		}
		v, err := s.Roster().Remove(ctx, owner, "c0@example.com")
		check("Remove", v, err)
		if v, err := s.Roster().Version(ctx, other); err != nil || v != otherVer {
			t.Errorf("other owner's Version = %d, %v; want %d, untouched", v, err, otherVer)
		}
		v, err = s.Roster().Put(ctx, other, storage.RosterItem{JID: "y@example.com"})
		noErr(t, "Put(other)", err)
		if v <= otherVer {
			t.Errorf("other owner's version %d after %d", v, otherVer)
		}
		if cur, _ := s.Roster().Version(ctx, owner); cur != last {
			t.Errorf("Version = %d after another owner's change, want %d", cur, last)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, owner)
		const n = 32
		vers := make([]uint64, n)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				v, err := s.Roster().Put(ctx, owner, storage.RosterItem{
					JID: fmt.Sprintf("c%02d@example.com", i), Groups: []string{"g", fmt.Sprint(i)},
				})
				vers[i] = v
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			noErr(t, "concurrent Put", err)
		}
		slices.Sort(vers)
		if len(slices.Compact(slices.Clone(vers))) != n {
			t.Errorf("concurrent Puts returned versions %v, want %d distinct", vers, n)
		}
		items, ver, err := s.Roster().Items(ctx, owner)
		noErr(t, "Items", err)
		if len(items) != n || ver != vers[n-1] {
			t.Errorf("Items: %d items, version %d; want %d items, version %d", len(items), ver, n, vers[n-1])
		}
		for i, it := range items {
			if want := []string{fmt.Sprint(i), "g"}; !slices.Equal(it.Groups, want) {
				t.Errorf("item %s groups %q, want %q", it.JID, it.Groups, want)
			}
		}
	})

	t.Run("Update", func(t *testing.T) { testRosterUpdate(t, open) })
}

// testRosterUpdate checks storage.RosterUpdater, for stores that have it.
func testRosterUpdate(t *testing.T, open opener) {
	const owner = "romeo@montague.example"
	updater := func(t *testing.T) (storage.RosterUpdater, storage.Roster, context.Context) {
		t.Helper()
		s := open(t)
		u, ok := s.Roster().(storage.RosterUpdater)
		if !ok {
			t.Skip("the store's Roster is not a storage.RosterUpdater")
		}
		create(t, s, owner)
		return u, s.Roster(), t.Context()
	}
	set := func(it storage.RosterItem, op storage.RosterOp) storage.RosterUpdateFunc {
		return func(storage.RosterItem, bool, storage.RosterCounts) (storage.RosterItem, storage.RosterOp, error) {
			return it, op, nil
		}
	}

	t.Run("PutKeepRemove", func(t *testing.T) {
		u, r, ctx := updater(t)
		const c = "juliet@capulet.example"
		want := storage.RosterItem{JID: c, Name: "J", Subscription: storage.SubTo, Groups: []string{"b", "a", "b"},
			PendingIn: true, PendingInXML: []byte("<presence type='subscribe'/>")}
		var seen storage.RosterItem
		var seenFound bool
		res, err := u.Update(ctx, owner, c, func(cur storage.RosterItem, found bool, _ storage.RosterCounts) (storage.RosterItem, storage.RosterOp, error) {
			seen, seenFound = cur, found
			return want, storage.RosterPut, nil
		})
		noErr(t, "Update(new)", err)
		if seenFound || seen.JID != c || seen.Subscription != storage.SubNone || seen.Ask || seen.PendingIn || len(seen.Groups) != 0 {
			t.Errorf("a missing item was seen as %s (found %v), want a zero item with its JID and none", itemString(seen), seenFound)
		}
		want.Groups = []string{"a", "b"}
		if res.Op != storage.RosterPut || res.Found || !itemEqual(res.After, want) {
			t.Errorf("Update(new) = %+v, want Put of %s", res, itemString(want))
		}
		got, err := r.Item(ctx, owner, c)
		noErr(t, "Item", err)
		if !itemEqual(got, want) {
			t.Errorf("stored %s, want %s", itemString(got), itemString(want))
		}
		if v, _ := r.Version(ctx, owner); v != res.Version || v == 0 {
			t.Errorf("Version = %d, Update returned %d", v, res.Version)
		}

		// The function sees the stored item; keeping it changes nothing.
		v0 := res.Version
		res, err = u.Update(ctx, owner, c, func(cur storage.RosterItem, found bool, _ storage.RosterCounts) (storage.RosterItem, storage.RosterOp, error) {
			seen, seenFound = cur, found
			cur.Name = "not stored"
			return cur, storage.RosterKeep, nil
		})
		noErr(t, "Update(keep)", err)
		if !seenFound || !itemEqual(seen, want) {
			t.Errorf("Update saw %s (found %v), want %s", itemString(seen), seenFound, itemString(want))
		}
		if res.Op != storage.RosterKeep || res.Version != 0 || !itemEqual(res.Before, want) {
			t.Errorf("Update(keep) = %+v", res)
		}
		if v, _ := r.Version(ctx, owner); v != v0 {
			t.Errorf("Keep changed the version from %d to %d", v0, v)
		}

		// A change keeps the groups the function leaves alone.
		res, err = u.Update(ctx, owner, c, func(cur storage.RosterItem, _ bool, _ storage.RosterCounts) (storage.RosterItem, storage.RosterOp, error) {
			cur.Subscription, cur.PendingIn, cur.PendingInXML = storage.SubBoth, false, nil
			return cur, storage.RosterPut, nil
		})
		noErr(t, "Update(change)", err)
		want.Subscription, want.PendingIn, want.PendingInXML = storage.SubBoth, false, nil
		if got, _ := r.Item(ctx, owner, c); !itemEqual(got, want) || res.Version <= v0 {
			t.Errorf("after a change: %s (version %d after %d), want %s", itemString(got), res.Version, v0, itemString(want))
		}

		// Remove, then removing what is not there: Keep, version unchanged.
		res, err = u.Update(ctx, owner, c, set(storage.RosterItem{}, storage.RosterRemove))
		noErr(t, "Update(remove)", err)
		if res.Op != storage.RosterRemove || !res.Found {
			t.Errorf("Update(remove) = %+v", res)
		}
		_, err = r.Item(ctx, owner, c)
		isErr(t, "Item(removed)", err, storage.ErrNotFound)
		v1 := res.Version
		res, err = u.Update(ctx, owner, c, set(storage.RosterItem{}, storage.RosterRemove))
		noErr(t, "Update(remove absent)", err)
		if v, _ := r.Version(ctx, owner); res.Op != storage.RosterKeep || v != v1 {
			t.Errorf("removing an absent item: %+v, version %d after %d", res, v, v1)
		}
	})

	t.Run("FunctionError", func(t *testing.T) {
		u, r, ctx := updater(t)
		boom := errors.New("no")
		_, err := u.Update(ctx, owner, "a@example.com", func(storage.RosterItem, bool, storage.RosterCounts) (storage.RosterItem, storage.RosterOp, error) {
			return storage.RosterItem{JID: "a@example.com"}, storage.RosterPut, boom
		})
		isErr(t, "Update", err, boom)
		if items, v, _ := r.Items(ctx, owner); len(items) != 0 || v != 0 {
			t.Errorf("a failed Update left %s, version %d", itemsString(items), v)
		}
	})

	t.Run("UnknownOwner", func(t *testing.T) {
		u, r, ctx := updater(t)
		_, err := u.Update(ctx, "nobody@example.com", "a@example.com", set(storage.RosterItem{JID: "a@example.com"}, storage.RosterPut))
		isErr(t, "Update(no account)", err, storage.ErrNotFound)
		// The owner's own changes are unaffected.
		_, err = u.Update(ctx, owner, "a@example.com", set(storage.RosterItem{JID: "a@example.com"}, storage.RosterPut))
		noErr(t, "Update", err)
		if items, _, _ := r.Items(ctx, owner); len(items) != 1 {
			t.Errorf("Items = %s", itemsString(items))
		}
	})

	t.Run("Counts", func(t *testing.T) {
		u, r, ctx := updater(t)
		for i, hidden := range []bool{false, true, false} {
			_, err := r.Put(ctx, owner, storage.RosterItem{JID: fmt.Sprintf("c%d@example.com", i), Hidden: hidden})
			noErr(t, "Put", err)
		}
		var all, visible int
		_, err := u.Update(ctx, owner, "new@example.com", func(cur storage.RosterItem, _ bool, count storage.RosterCounts) (storage.RosterItem, storage.RosterOp, error) {
			var err error
			all, visible, err = count()
			return cur, storage.RosterKeep, err
		})
		noErr(t, "Update", err)
		if all != 3 || visible != 2 {
			t.Errorf("counts = %d all, %d visible; want 3, 2", all, visible)
		}
	})

	t.Run("Atomic", func(t *testing.T) {
		// Concurrent read-modify-writes of one item lose nothing: each
		// adds one to a counter kept in the item's name.
		u, r, ctx := updater(t)
		const n = 64
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() {
				_, err := u.Update(ctx, owner, "counter@example.com", func(cur storage.RosterItem, _ bool, _ storage.RosterCounts) (storage.RosterItem, storage.RosterOp, error) {
					k := 0
					fmt.Sscan(cur.Name, &k)
					cur.Name = fmt.Sprint(k + 1)
					return cur, storage.RosterPut, nil
				})
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			noErr(t, "concurrent Update", err)
		}
		got, err := r.Item(ctx, owner, "counter@example.com")
		noErr(t, "Item", err)
		if got.Name != fmt.Sprint(n) {
			t.Errorf("counter = %q after %d concurrent Updates", got.Name, n)
		}
	})
}

// Offline.

func msgsEqual(a, b []storage.OfflineMessage) bool {
	return slices.EqualFunc(a, b, func(x, y storage.OfflineMessage) bool {
		return x.Seq == y.Seq && x.Stamp.Equal(y.Stamp) && x.From == y.From && bytes.Equal(x.Stanza, y.Stanza)
	})
}

func testOffline(t *testing.T, open opener) {
	const owner = "juliet@capulet.example"
	msg := func(i int) storage.OfflineMessage {
		return storage.OfflineMessage{
			Stamp:  aTime(time.Duration(i) * time.Second),
			From:   fmt.Sprintf("romeo@montague.example/r%d", i),
			Stanza: fmt.Appendf(nil, "<message id='%d'><body>%d</body></message>", i, i),
		}
	}

	t.Run("Empty", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, owner)
		for _, o := range []string{owner, "nobody@capulet.example"} {
			ms, err := s.Offline().List(ctx, o)
			if err != nil || len(ms) != 0 {
				t.Errorf("List(%s) = %v, %v; want none", o, ms, err)
			}
			n, err := s.Offline().Count(ctx, o)
			if err != nil || n != 0 {
				t.Errorf("Count(%s) = %d, %v; want 0", o, n, err)
			}
			noErr(t, "Delete(nothing)", s.Offline().Delete(ctx, o, 1<<62))
		}
	})

	t.Run("StoreList", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, owner)
		var want []storage.OfflineMessage
		for i := range 5 {
			m := msg(i)
			if i == 2 {
				m.Stanza = allBytes()
			}
			m.Stamp = m.Stamp.Add(-time.Duration(i) * 2 * time.Second) // stamps need not be in arrival order
			noErr(t, "Store", s.Offline().Store(ctx, owner, m, 0))
			want = append(want, m)
		}
		got, err := s.Offline().List(ctx, owner)
		noErr(t, "List", err)
		if len(got) != len(want) {
			t.Fatalf("List returned %d messages, want %d", len(got), len(want))
		}
		for i, m := range got {
			if i > 0 && m.Seq <= got[i-1].Seq {
				t.Errorf("Seq %d after %d, want increasing", m.Seq, got[i-1].Seq)
			}
			if m.From != want[i].From || !bytes.Equal(m.Stanza, want[i].Stanza) {
				t.Errorf("message %d = %q from %q, want %q from %q", i, m.Stanza, m.From, want[i].Stanza, want[i].From)
			}
			sameTime(t, fmt.Sprint("Stamp of message ", i), m.Stamp, want[i].Stamp)
		}
		if n, err := s.Offline().Count(ctx, owner); err != nil || n != 5 {
			t.Errorf("Count = %d, %v; want 5", n, err)
		}
	})

	t.Run("ZeroStamp", func(t *testing.T) {
		// A zero Stamp means "now".
		s, ctx := open(t), t.Context()
		create(t, s, owner)
		before := time.Now()
		noErr(t, "Store", s.Offline().Store(ctx, owner, storage.OfflineMessage{From: "a@b/c", Stanza: []byte("<message/>")}, 0))
		after := time.Now()
		ms, err := s.Offline().List(ctx, owner)
		noErr(t, "List", err)
		if len(ms) != 1 {
			t.Fatalf("List = %v", ms)
		}
		if st := ms[0].Stamp; st.Before(before.Add(-time.Millisecond)) || st.After(after.Add(time.Millisecond)) || st.Location() != time.UTC {
			t.Errorf("Stamp = %v, want UTC between %v and %v", st, before, after)
		}
	})

	t.Run("Limit", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, owner, "other@capulet.example")
		for i := range 3 {
			noErr(t, "Store", s.Offline().Store(ctx, owner, msg(i), 3))
		}
		isErr(t, "Store over the limit", s.Offline().Store(ctx, owner, msg(3), 3), storage.ErrQuotaExceeded)
		isErr(t, "Store with a lower limit", s.Offline().Store(ctx, owner, msg(3), 1), storage.ErrQuotaExceeded)
		if n, _ := s.Offline().Count(ctx, owner); n != 3 {
			t.Errorf("Count = %d after refused Store, want 3", n)
		}
		// The limit is per user.
		noErr(t, "Store(other)", s.Offline().Store(ctx, "other@capulet.example", msg(0), 1))
		// limit <= 0 means no limit.
		noErr(t, "Store(limit 0)", s.Offline().Store(ctx, owner, msg(3), 0))
		noErr(t, "Store(limit -1)", s.Offline().Store(ctx, owner, msg(4), -1))
		isErr(t, "Store(limit 4, holding 5)", s.Offline().Store(ctx, owner, msg(5), 4), storage.ErrQuotaExceeded)
		ms, err := s.Offline().List(ctx, owner)
		noErr(t, "List", err)
		if len(ms) != 5 {
			t.Fatalf("List: %d messages, want 5", len(ms))
		}
		// Room again after a Delete.
		noErr(t, "Delete", s.Offline().Delete(ctx, owner, ms[0].Seq))
		noErr(t, "Store after Delete", s.Offline().Store(ctx, owner, msg(6), 5))
		isErr(t, "Store when full again", s.Offline().Store(ctx, owner, msg(7), 5), storage.ErrQuotaExceeded)
	})

	t.Run("ListAfter", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		const other = "nurse@capulet.example"
		create(t, s, owner, other)
		for i := range 6 {
			noErr(t, "Store", s.Offline().Store(ctx, owner, msg(i), 0))
			noErr(t, "Store(other)", s.Offline().Store(ctx, other, msg(i), 0))
		}
		all, err := s.Offline().List(ctx, owner)
		noErr(t, "List", err)
		size := len(all[0].Stanza) // every msg(i) for i < 10 has this size
		for _, c := range []struct {
			name     string
			after    int64
			maxBytes int
			want     []storage.OfflineMessage
		}{
			{"all", 0, 0, all},
			{"after the 2nd, unbounded", all[1].Seq, -1, all[2:]},
			{"two fit", 0, 2 * size, all[:2]},
			{"two and a half fit", all[0].Seq, 2*size + size/2, all[1:3]},
			{"at least one", all[2].Seq, 1, all[3:4]},
			{"at the end", all[5].Seq, 1, nil},
		} {
			ms, err := s.Offline().ListAfter(ctx, owner, c.after, c.maxBytes)
			noErr(t, "ListAfter "+c.name, err)
			if !msgsEqual(ms, c.want) {
				t.Errorf("ListAfter %s = %d messages %v, want %d %v", c.name, len(ms), ms, len(c.want), c.want)
			}
		}
		if ms, err := s.Offline().ListAfter(ctx, "romeo@montague.example", 0, 0); err != nil || len(ms) != 0 {
			t.Errorf("ListAfter(unknown owner) = %v, %v; want none", ms, err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		const other = "nurse@capulet.example"
		create(t, s, owner, other)
		for i := range 6 {
			noErr(t, "Store", s.Offline().Store(ctx, owner, msg(i), 0))
			noErr(t, "Store(other)", s.Offline().Store(ctx, other, msg(i), 0))
		}
		all, err := s.Offline().List(ctx, owner)
		noErr(t, "List", err)
		otherAll, err := s.Offline().List(ctx, other)
		noErr(t, "List(other)", err)

		noErr(t, "Delete(before all)", s.Offline().Delete(ctx, owner, all[0].Seq-1))
		if ms, _ := s.Offline().List(ctx, owner); !msgsEqual(ms, all) {
			t.Errorf("Delete below the first Seq removed messages: %v", ms)
		}
		noErr(t, "Delete", s.Offline().Delete(ctx, owner, all[2].Seq))
		ms, err := s.Offline().List(ctx, owner)
		noErr(t, "List", err)
		if !msgsEqual(ms, all[3:]) {
			t.Errorf("after Delete(up to the 3rd): %v, want %v", ms, all[3:])
		}
		if n, _ := s.Offline().Count(ctx, owner); n != 3 {
			t.Errorf("Count = %d, want 3", n)
		}
		noErr(t, "Delete(again)", s.Offline().Delete(ctx, owner, all[2].Seq))
		noErr(t, "Delete(all)", s.Offline().Delete(ctx, owner, all[5].Seq))
		if n, _ := s.Offline().Count(ctx, owner); n != 0 {
			t.Errorf("Count = %d after deleting all, want 0", n)
		}
		// Deleting one user's messages leaves the other's alone, even with a
		// Seq above theirs.
		if ms, _ := s.Offline().List(ctx, other); !msgsEqual(ms, otherAll) {
			t.Errorf("other user's messages after Delete = %v, want %v", ms, otherAll)
		}
		// Seqs are never reused, so a stale Delete(upTo) cannot remove a
		// message stored after it.
		noErr(t, "Store", s.Offline().Store(ctx, owner, msg(9), 0))
		ms, err = s.Offline().List(ctx, owner)
		noErr(t, "List", err)
		if len(ms) != 1 || ms[0].Seq <= all[5].Seq {
			t.Fatalf("after deleting all and storing one: %v, want one message with Seq > %d", ms, all[5].Seq)
		}
		noErr(t, "stale Delete", s.Offline().Delete(ctx, owner, all[5].Seq))
		if n, _ := s.Offline().Count(ctx, owner); n != 1 {
			t.Errorf("stale Delete removed a newer message")
		}
	})

	t.Run("UnknownOwner", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		isErr(t, "Store(no account)", s.Offline().Store(ctx, owner, msg(0), 0), storage.ErrNotFound)
		isErr(t, "Store(no account, limit)", s.Offline().Store(ctx, owner, msg(0), 10), storage.ErrNotFound)
		create(t, s, owner)
		if n, err := s.Offline().Count(ctx, owner); err != nil || n != 0 {
			t.Errorf("new account's Count = %d, %v; want 0", n, err)
		}
	})

	t.Run("CanceledContext", func(t *testing.T) {
		s := open(t)
		create(t, s, owner)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		isErr(t, "Store(canceled)", s.Offline().Store(ctx, owner, msg(0), 0), context.Canceled)
		if n, err := s.Offline().Count(t.Context(), owner); err != nil || n != 0 {
			t.Errorf("Count = %d, %v after a canceled Store; want 0", n, err)
		}
	})

	t.Run("ConcurrentLimit", func(t *testing.T) {
		// Many writers racing for one user's queue: exactly limit succeed,
		// the rest get ErrQuotaExceeded, and every Seq is distinct.
		s, ctx := open(t), t.Context()
		create(t, s, owner)
		const writers, each, limit = 16, 8, 50
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, refused := 0, 0
		var other []error
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					m := msg(w*each + i)
					err := s.Offline().Store(ctx, owner, m, limit)
					mu.Lock()
					switch {
					case err == nil:
						ok++
					case errors.Is(err, storage.ErrQuotaExceeded):
						refused++
					default:
						other = append(other, err)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		for _, err := range other {
			t.Errorf("concurrent Store: %v", err)
		}
		if ok != limit || refused != writers*each-limit {
			t.Errorf("%d stored, %d refused; want %d and %d", ok, refused, limit, writers*each-limit)
		}
		if n, err := s.Offline().Count(ctx, owner); err != nil || n != limit {
			t.Errorf("Count = %d, %v; want %d", n, err, limit)
		}
		ms, err := s.Offline().List(ctx, owner)
		noErr(t, "List", err)
		if len(ms) != limit {
			t.Errorf("List: %d messages, want %d", len(ms), limit)
		}
		for i := 1; i < len(ms); i++ {
			if ms[i].Seq <= ms[i-1].Seq {
				t.Errorf("Seq %d after %d, want strictly increasing", ms[i].Seq, ms[i-1].Seq)
			}
		}
	})

	t.Run("ConcurrentOrder", func(t *testing.T) {
		// Without a limit every message lands, with a distinct Seq, and each
		// writer's messages are listed in the order it stored them.
		s, ctx := open(t), t.Context()
		create(t, s, owner)
		const writers, each = 8, 25
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					errs <- s.Offline().Store(ctx, owner, storage.OfflineMessage{
						Stamp: time.Now(), From: fmt.Sprintf("w%d@example.com/r", w), Stanza: fmt.Append(nil, i),
					}, 0)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			noErr(t, "concurrent Store", err)
		}
		ms, err := s.Offline().List(ctx, owner)
		noErr(t, "List", err)
		if len(ms) != writers*each {
			t.Fatalf("List: %d messages, want %d", len(ms), writers*each)
		}
		next := map[string]int{}
		for i, m := range ms {
			if i > 0 && m.Seq <= ms[i-1].Seq {
				t.Errorf("Seq %d after %d, want strictly increasing", m.Seq, ms[i-1].Seq)
			}
			if want := fmt.Sprint(next[m.From]); string(m.Stanza) != want {
				t.Errorf("from %s: message %q listed where %q was expected", m.From, m.Stanza, want)
			}
			next[m.From]++
		}
	})
}
