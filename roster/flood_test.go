package roster

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/sqlite"
)

// gatedRoster is the real store with a gate in front of Put: every Put
// waits until want of them are waiting together, and then the gate stays
// open. It shows how many users' changes can be on their way to the store
// at the same time, which is what group commit needs to share commits.
type gatedRoster struct {
	storage.Roster
	want int

	mu      sync.Mutex
	waiting int
	opened  bool
	open    chan struct{}
	giveUp  <-chan struct{}
}

func (g *gatedRoster) Put(ctx context.Context, owner string, it storage.RosterItem) (uint64, error) {
	g.mu.Lock()
	g.waiting++
	if g.waiting >= g.want && !g.opened {
		g.opened = true
		close(g.open)
	}
	g.mu.Unlock()
	select {
	case <-g.open:
	case <-g.giveUp: // the failure case: never that many at once
	}
	g.mu.Lock()
	g.waiting--
	g.mu.Unlock()
	return g.Roster.Put(ctx, owner, it)
}

// TestSubscriptionFloodReachesStoreTogether: when many users subscribe at
// once, each user's change waits only for its own commit, not behind the
// commits of unrelated users (before, 64 lock stripes let at most 64 users'
// changes reach the store at a time, so a flood of thousands queued in
// rounds of 64 commits and the answers completing a subscription waited
// behind all of it). 200 users each send one subscribe at the same time:
// all 200 changes must be at the store together.
func TestSubscriptionFloodReachesStoreTogether(t *testing.T) {
	const users = 200
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := range users {
		for _, j := range []string{fmt.Sprintf("u%d@example.com", i), fmt.Sprintf("c%d@example.com", i)} {
			if err := st.Accounts().Create(t.Context(), storage.Account{JID: j}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// giveUp only ends a failing run; a passing one opens the gate by count.
	giveUp, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	g := &gatedRoster{Roster: st.Roster(), want: users, open: make(chan struct{}), giveUp: giveUp.Done()}
	e := newEnvWith(t, Options{}, g, sqliteAccounts{st.Accounts()})

	sess := make([]*fakeSession, users)
	for i := range users {
		sess[i] = e.bind(fmt.Sprintf("u%d@example.com/r", i))
	}
	var wg sync.WaitGroup
	for i := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.send(sess[i], fmt.Sprintf(`<presence type='subscribe' to='c%d@example.com'/>`, i))
		}()
	}
	wg.Wait()
	g.mu.Lock()
	opened := g.opened
	g.mu.Unlock()
	if !opened {
		t.Fatalf("never %d users' roster changes at the store together", users)
	}
	for i := range users {
		u, c := fmt.Sprintf("u%d@example.com", i), fmt.Sprintf("c%d@example.com", i)
		if it, ok := e.item(u, c); !ok || !it.Ask {
			t.Errorf("%s: item for %s %+v (found %v), want ask", u, c, it, ok)
		}
		if it, ok := e.item(c, u); !ok || !it.PendingIn {
			t.Errorf("%s: item for %s %+v (found %v), want pending in", c, u, it, ok)
		}
	}
}
