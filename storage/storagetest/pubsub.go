package storagetest

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xmppd/xmppd/storage"
)

func testPubSub(t *testing.T, open opener) {
	const a, b = "alice@example.com", "bob@example.com"
	const nodeA, nodeB = "urn:xmpp:avatar:metadata", "eu.siacs.conversations.axolotl.devicelist"
	ids := func(items []storage.PubSubItem) []string {
		out := make([]string, len(items))
		for i, it := range items {
			out[i] = it.ID
		}
		return out
	}
	items := func(t *testing.T, s storage.Store, owner, node string, max int, want ...string) []storage.PubSubItem {
		t.Helper()
		got, err := s.PubSub().Items(t.Context(), owner, node, max)
		noErr(t, "Items", err)
		if g := ids(got); !slices.Equal(g, want) && !(len(g) == 0 && len(want) == 0) {
			t.Errorf("Items(%s, %s, max %d) = %q, want %q", owner, node, max, g, want)
		}
		return got
	}
	item := func(id string) storage.PubSubItem {
		return storage.PubSubItem{ID: id, Publisher: a + "/phone", Payload: []byte("<x xmlns='urn:x'>" + id + "</x>")}
	}
	publish := func(t *testing.T, s storage.Store, owner, node string, max int, idList ...string) {
		t.Helper()
		for _, id := range idList {
			noErr(t, "Publish "+id, s.PubSub().Publish(t.Context(), owner, node, item(id), max))
		}
	}
	mkNode := func(t *testing.T, s storage.Store, owner, name string) {
		t.Helper()
		noErr(t, "CreateNode "+name, s.PubSub().CreateNode(t.Context(), owner, storage.PubSubNode{Name: name}, 0))
	}

	t.Run("UnknownOwner", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		isErr(t, "CreateNode(no account)", s.PubSub().CreateNode(ctx, a, storage.PubSubNode{Name: nodeA}, 0), storage.ErrNotFound)
		_, err := s.PubSub().Node(ctx, a, nodeA)
		isErr(t, "Node", err, storage.ErrNotFound)
		ns, err := s.PubSub().Nodes(ctx, a)
		if err != nil || len(ns) != 0 {
			t.Errorf("Nodes(no account) = %v, %v; want empty", ns, err)
		}
		_, err = s.PubSub().Items(ctx, a, nodeA, 0)
		isErr(t, "Items", err, storage.ErrNotFound)
		isErr(t, "Publish", s.PubSub().Publish(ctx, a, nodeA, item("1"), 0), storage.ErrNotFound)
		last, err := s.PubSub().LastItems(ctx, a, nil)
		if err != nil || len(last) != 0 {
			t.Errorf("LastItems(no account) = %v, %v; want empty", last, err)
		}
	})

	t.Run("Nodes", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, a, b)
		cfg := map[string][]string{
			"pubsub#access_model":          {"open"},
			"pubsub#roster_groups_allowed": {"Friends", "Family ☃", ""},
			"pubsub#title":                 {"<&'\"> ünïcode"},
			"pubsub#empty":                 {},
		}
		when := aTime(0)
		noErr(t, "CreateNode", s.PubSub().CreateNode(ctx, a, storage.PubSubNode{Name: nodeB, Config: cfg, Created: when}, 0))
		noErr(t, "CreateNode(no config)", s.PubSub().CreateNode(ctx, a, storage.PubSubNode{Name: nodeA}, 0))
		isErr(t, "CreateNode(again)", s.PubSub().CreateNode(ctx, a, storage.PubSubNode{Name: nodeA, Config: cfg}, 0), storage.ErrExists)
		// Names are exact: another case is another node.
		noErr(t, "CreateNode(upper case)", s.PubSub().CreateNode(ctx, a, storage.PubSubNode{Name: "URN:XMPP:AVATAR:METADATA"}, 0))

		n, err := s.PubSub().Node(ctx, a, nodeB)
		noErr(t, "Node", err)
		if n.Name != nodeB || !maps.EqualFunc(n.Config, cfg, slices.Equal) {
			t.Errorf("Node = %q %q, want %q %q", n.Name, n.Config, nodeB, cfg)
		}
		sameTime(t, "Created", n.Created, when)
		n, err = s.PubSub().Node(ctx, a, nodeA)
		noErr(t, "Node(no config)", err)
		if n.Config == nil || len(n.Config) != 0 {
			t.Errorf("Node(no config).Config = %#v, want an empty map", n.Config)
		}
		recentTime(t, "Created(zero = now)", n.Created)

		ns, err := s.PubSub().Nodes(ctx, a)
		noErr(t, "Nodes", err)
		var names []string
		for _, n := range ns {
			names = append(names, n.Name)
		}
		if want := []string{"URN:XMPP:AVATAR:METADATA", nodeB, nodeA}; !slices.Equal(names, want) {
			t.Errorf("Nodes = %q, want %q (sorted byte for byte)", names, want)
		}
		if ns, _ := s.PubSub().Nodes(ctx, b); len(ns) != 0 {
			t.Errorf("Nodes(b) = %v, want none (per owner)", ns)
		}
		_, err = s.PubSub().Node(ctx, b, nodeA)
		isErr(t, "Node(other owner)", err, storage.ErrNotFound)

		// Configure replaces the whole configuration.
		cfg2 := map[string][]string{"pubsub#access_model": {"whitelist"}}
		noErr(t, "ConfigureNode", s.PubSub().ConfigureNode(ctx, a, nodeB, cfg2, 0))
		n, _ = s.PubSub().Node(ctx, a, nodeB)
		if !maps.EqualFunc(n.Config, cfg2, slices.Equal) {
			t.Errorf("after ConfigureNode: %q, want %q", n.Config, cfg2)
		}
		isErr(t, "ConfigureNode(missing)", s.PubSub().ConfigureNode(ctx, a, "nope", cfg2, 0), storage.ErrNotFound)
		isErr(t, "ConfigureNode(other owner)", s.PubSub().ConfigureNode(ctx, b, nodeB, cfg2, 0), storage.ErrNotFound)

		// Delete takes the items along.
		publish(t, s, a, nodeB, 0, "1", "2")
		noErr(t, "DeleteNode", s.PubSub().DeleteNode(ctx, a, nodeB))
		isErr(t, "DeleteNode(again)", s.PubSub().DeleteNode(ctx, a, nodeB), storage.ErrNotFound)
		_, err = s.PubSub().Items(ctx, a, nodeB, 0)
		isErr(t, "Items(deleted node)", err, storage.ErrNotFound)
		mkNode(t, s, a, nodeB)
		items(t, s, a, nodeB, 0) // a new node of the same name starts empty
	})

	t.Run("MaxNodes", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, a, b)
		for i := range 3 {
			noErr(t, "CreateNode", s.PubSub().CreateNode(ctx, a, storage.PubSubNode{Name: fmt.Sprint("n", i)}, 3))
		}
		isErr(t, "CreateNode(past the limit)", s.PubSub().CreateNode(ctx, a, storage.PubSubNode{Name: "n3"}, 3), storage.ErrQuotaExceeded)
		isErr(t, "CreateNode(existing, at the limit)", s.PubSub().CreateNode(ctx, a, storage.PubSubNode{Name: "n0"}, 3), storage.ErrExists)
		noErr(t, "CreateNode(other owner)", s.PubSub().CreateNode(ctx, b, storage.PubSubNode{Name: "n3"}, 3))
		noErr(t, "CreateNode(no limit)", s.PubSub().CreateNode(ctx, a, storage.PubSubNode{Name: "n3"}, 0))
		noErr(t, "DeleteNode", s.PubSub().DeleteNode(ctx, a, "n0"))
		noErr(t, "DeleteNode", s.PubSub().DeleteNode(ctx, a, "n1"))
		noErr(t, "CreateNode(room again)", s.PubSub().CreateNode(ctx, a, storage.PubSubNode{Name: "n4"}, 3))
	})

	t.Run("PublishOrder", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, a, b)
		mkNode(t, s, a, nodeA)
		mkNode(t, s, b, nodeA)
		items(t, s, a, nodeA, 0)
		publish(t, s, a, nodeA, 0, "a", "b", "c")
		items(t, s, a, nodeA, 0, "a", "b", "c")
		items(t, s, b, nodeA, 0) // per owner
		// Republishing replaces the item and makes it the newest.
		when := aTime(time.Hour)
		noErr(t, "Publish(again)", s.PubSub().Publish(ctx, a, nodeA, storage.PubSubItem{
			ID: "a", Publisher: a + "/laptop", Published: when, Payload: allBytes()}, 0))
		got := items(t, s, a, nodeA, 0, "b", "c", "a")
		if len(got) == 3 {
			if !bytes.Equal(got[2].Payload, allBytes()) || got[2].Publisher != a+"/laptop" {
				t.Errorf("republished item = %q by %q", got[2].Payload, got[2].Publisher)
			}
			sameTime(t, "Published", got[2].Published, when)
			recentTime(t, "Published(zero = now)", got[0].Published)
			if !bytes.Equal(got[0].Payload, item("b").Payload) || got[0].Publisher != a+"/phone" {
				t.Errorf("item b = %q by %q", got[0].Payload, got[0].Publisher)
			}
		}
		items(t, s, a, nodeA, 2, "c", "a")
		items(t, s, a, nodeA, 1, "a")
		items(t, s, a, nodeA, 10, "b", "c", "a")

		// Empty payloads and odd IDs are kept.
		noErr(t, "Publish(empty)", s.PubSub().Publish(ctx, a, nodeA, storage.PubSubItem{ID: "ü <&> ", Payload: nil}, 0))
		got = items(t, s, a, nodeA, 1, "ü <&> ")
		if len(got) == 1 && len(got[0].Payload) != 0 {
			t.Errorf("empty payload came back as %q", got[0].Payload)
		}

		byID, err := s.PubSub().ItemsByID(ctx, a, nodeA, []string{"a", "missing", "b", "a"})
		noErr(t, "ItemsByID", err)
		if g := ids(byID); !slices.Equal(g, []string{"b", "a"}) {
			t.Errorf("ItemsByID = %q, want [b a] (existing, oldest first, once)", g)
		}
		byID, err = s.PubSub().ItemsByID(ctx, a, nodeA, nil)
		if err != nil || len(byID) != 0 {
			t.Errorf("ItemsByID(none) = %v, %v", byID, err)
		}
		_, err = s.PubSub().ItemsByID(ctx, a, "missing", []string{"a"})
		isErr(t, "ItemsByID(missing node)", err, storage.ErrNotFound)

		// Retract.
		noErr(t, "Retract", s.PubSub().Retract(ctx, a, nodeA, "c"))
		isErr(t, "Retract(again)", s.PubSub().Retract(ctx, a, nodeA, "c"), storage.ErrNotFound)
		isErr(t, "Retract(missing node)", s.PubSub().Retract(ctx, a, "missing", "a"), storage.ErrNotFound)
		isErr(t, "Retract(other owner)", s.PubSub().Retract(ctx, b, nodeA, "a"), storage.ErrNotFound)
		items(t, s, a, nodeA, 0, "b", "a", "ü <&> ")

		// Purge keeps the node.
		noErr(t, "Purge", s.PubSub().Purge(ctx, a, nodeA))
		items(t, s, a, nodeA, 0)
		noErr(t, "Purge(empty)", s.PubSub().Purge(ctx, a, nodeA))
		isErr(t, "Purge(missing)", s.PubSub().Purge(ctx, a, "missing"), storage.ErrNotFound)
		publish(t, s, a, nodeA, 0, "d")
		items(t, s, a, nodeA, 0, "d")
	})

	t.Run("MaxItems", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, a)
		mkNode(t, s, a, nodeA)
		publish(t, s, a, nodeA, 3, "1", "2", "3", "4", "5")
		items(t, s, a, nodeA, 0, "3", "4", "5")
		// Republishing an old one keeps the count and drops the oldest other.
		publish(t, s, a, nodeA, 3, "3", "6")
		items(t, s, a, nodeA, 0, "5", "3", "6")
		// 0 keeps everything.
		publish(t, s, a, nodeA, 0, "7", "8")
		items(t, s, a, nodeA, 0, "5", "3", "6", "7", "8")
		// Lowering max_items by configuration trims at once.
		noErr(t, "ConfigureNode(max 2)", s.PubSub().ConfigureNode(ctx, a, nodeA, nil, 2))
		items(t, s, a, nodeA, 0, "7", "8")
		noErr(t, "ConfigureNode(max 5)", s.PubSub().ConfigureNode(ctx, a, nodeA, nil, 5))
		items(t, s, a, nodeA, 0, "7", "8")
		publish(t, s, a, nodeA, 1, "9")
		items(t, s, a, nodeA, 0, "9")
	})

	t.Run("LastItems", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, a, b)
		for _, n := range []string{"n1", "n2", "n3", "empty"} {
			mkNode(t, s, a, n)
		}
		mkNode(t, s, b, "n1")
		publish(t, s, a, "n2", 0, "x", "y")
		publish(t, s, a, "n1", 0, "p")
		publish(t, s, a, "n3", 0, "q", "r")
		noErr(t, "Retract", s.PubSub().Retract(ctx, a, "n3", "r"))
		publish(t, s, b, "n1", 0, "other")
		check := func(nodes []string, want ...string) {
			t.Helper()
			got, err := s.PubSub().LastItems(ctx, a, nodes)
			noErr(t, "LastItems", err)
			var g []string
			for _, l := range got {
				g = append(g, l.Node.Name+"="+l.Item.ID)
				if l.Node.Config == nil {
					t.Errorf("LastItems: node %s has a nil Config", l.Node.Name)
				}
				if !bytes.Equal(l.Item.Payload, item(l.Item.ID).Payload) {
					t.Errorf("LastItems: payload %q", l.Item.Payload)
				}
			}
			if !slices.Equal(g, want) {
				t.Errorf("LastItems(%q) = %q, want %q", nodes, g, want)
			}
		}
		check(nil, "n1=p", "n2=y", "n3=q")
		check([]string{"n3", "empty", "missing", "n2"}, "n2=y", "n3=q")
		check([]string{})
	})

	t.Run("AccountDeletion", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, a, b)
		mkNode(t, s, a, nodeA)
		mkNode(t, s, b, nodeA)
		publish(t, s, a, nodeA, 0, "1")
		publish(t, s, b, nodeA, 0, "1")
		noErr(t, "Delete", s.Accounts().Delete(ctx, a))
		if ns, err := s.PubSub().Nodes(ctx, a); err != nil || len(ns) != 0 {
			t.Errorf("Nodes after account deletion = %v, %v", ns, err)
		}
		create(t, s, a)
		_, err := s.PubSub().Items(ctx, a, nodeA, 0)
		isErr(t, "Items(recreated account)", err, storage.ErrNotFound)
		items(t, s, b, nodeA, 0, "1")
	})

	t.Run("Concurrent", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, a)
		// Node creation under a limit: exactly the limit succeeds.
		var wg sync.WaitGroup
		var ok, quota atomic.Int32
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := s.PubSub().CreateNode(ctx, a, storage.PubSubNode{Name: fmt.Sprint("c", i)}, 5)
				switch {
				case err == nil:
					ok.Add(1)
				case err == storage.ErrQuotaExceeded:
					quota.Add(1)
				default:
					t.Errorf("CreateNode: %v", err)
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 5 || quota.Load() != 11 {
			t.Errorf("concurrent CreateNode: %d created, %d over quota; want 5 and 11", ok.Load(), quota.Load())
		}
		// Concurrent publishes under max_items never leave more.
		mkNode(t, s, a, nodeA)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 10 {
					if err := s.PubSub().Publish(ctx, a, nodeA, item(fmt.Sprint(g, "-", i)), 4); err != nil {
						t.Errorf("Publish: %v", err)
						return
					}
				}
			}()
		}
		wg.Wait()
		got, err := s.PubSub().Items(ctx, a, nodeA, 0)
		noErr(t, "Items", err)
		if len(got) != 4 {
			t.Errorf("after concurrent publishes with max 4: %d items", len(got))
		}
	})
}

// recentTime checks that got is in UTC and within a minute before now.
func recentTime(t *testing.T, what string, got time.Time) {
	t.Helper()
	if got.Location() != time.UTC {
		t.Errorf("%s = %v: location %v, want UTC", what, got, got.Location())
	}
	if d := time.Since(got); d < -time.Millisecond || d > time.Minute {
		t.Errorf("%s = %v, want about now (off by %v)", what, got, d)
	}
}
