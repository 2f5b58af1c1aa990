package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/xmppd/xmppd/storage"
)

// TestRosterChangesShareOneCommit queues changes of several owners, one for
// an owner that does not exist and a removal of a missing item, so that one
// transaction writes them all; each caller gets its own result, the failing
// ones fail alone, and versions follow the queue order per owner.
func TestRosterChangesShareOneCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	owners := []string{"a@example.com", "b@example.com", "c@example.com"}
	for _, o := range owners {
		if err := s.Accounts().Create(ctx, storage.Account{JID: o}); err != nil {
			t.Fatal(err)
		}
	}
	r := &s.roster
	// Hold the writer back (as if a batch were being committed) until
	// every change is queued, so all of them go into the next batch.
	r.mu.Lock()
	r.writing = true
	r.mu.Unlock()

	type result struct {
		ver uint64
		err error
	}
	const perOwner = 5
	results := make(map[string]chan result)
	call := func(key string, fn func() (uint64, error)) {
		ch := make(chan result, 1)
		results[key] = ch
		go func() { v, err := fn(); ch <- result{v, err} }()
		// Queue in a known order: wait until this call is queued.
		for {
			r.mu.Lock()
			n := len(r.queue)
			r.mu.Unlock()
			if n == len(results) {
				return
			}
			runtime.Gosched()
		}
	}
	for i := range perOwner {
		for _, o := range owners {
			call(fmt.Sprint(o, i), func() (uint64, error) {
				return r.Put(ctx, o, storage.RosterItem{JID: fmt.Sprintf("x%d@example.com", i), Ask: true, Groups: []string{"G"}})
			})
		}
	}
	call("nobody", func() (uint64, error) {
		return r.Put(ctx, "nobody@example.com", storage.RosterItem{JID: "x@example.com"})
	})
	call("remove-missing", func() (uint64, error) { return r.Remove(ctx, owners[0], "missing@example.com") })
	call("remove", func() (uint64, error) { return r.Remove(ctx, owners[1], "x0@example.com") })

	r.mu.Lock()
	if len(r.queue) != len(results) {
		t.Fatalf("%d queued, want %d", len(r.queue), len(results))
	}
	go r.writer()
	r.mu.Unlock()

	for i := range perOwner {
		for _, o := range owners {
			res := <-results[fmt.Sprint(o, i)]
			if res.err != nil || res.ver != uint64(i+1) {
				t.Errorf("Put %s #%d: version %d, %v; want %d", o, i, res.ver, res.err, i+1)
			}
		}
	}
	if res := <-results["nobody"]; !errors.Is(res.err, storage.ErrNotFound) {
		t.Errorf("Put for an unknown owner: %d, %v; want ErrNotFound", res.ver, res.err)
	}
	if res := <-results["remove-missing"]; !errors.Is(res.err, storage.ErrNotFound) {
		t.Errorf("Remove of a missing item: %d, %v; want ErrNotFound", res.ver, res.err)
	}
	if res := <-results["remove"]; res.err != nil || res.ver != perOwner+1 {
		t.Errorf("Remove: %d, %v; want version %d", res.ver, res.err, perOwner+1)
	}
	// Committed: a new connection pool sees it all.
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for _, o := range owners {
		items, ver, err := s2.Roster().Items(context.Background(), o)
		wantItems, wantVer := perOwner, uint64(perOwner)
		if o == owners[1] {
			wantItems, wantVer = perOwner-1, perOwner+1
		}
		if err != nil || len(items) != wantItems || ver != wantVer {
			t.Errorf("%s: %d items, version %d, %v", o, len(items), ver, err)
		}
		for _, it := range items {
			if !it.Ask || len(it.Groups) != 1 {
				t.Errorf("%s: item %+v", o, it)
			}
		}
	}
}
