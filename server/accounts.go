package server

import (
	"context"
	"sync"
	"time"

	"github.com/xmppd/xmppd/storage"
)

// Routing a stanza to a local bare JID asks whether the account exists.
// accountCache answers from memory: storage.Accounts.Exists (a primary-key
// lookup, no credentials) fills it, and it is emptied
//   - at once when an account is created or deleted through this process's
//     store (registration, servertest, admin code: cachedStore), and
//   - within accountRecheck when another process changed the accounts (the
//     `xmppd user add|del` CLI on the same database while the server runs):
//     a cached answer older than that is used only after the store's change
//     counter (Accounts.Changes) was read and found unchanged.
//
// So a user added with the CLI receives messages at most a second later,
// and a deleted one stops being accepted as fast, at the cost of at most
// one counter read per second under load. Negative answers are cached the
// same way (a flood to made-up names costs one lookup per name), and the
// cache is bounded: when full it starts over. A storage error on a miss
// is returned as such (router.CheckedAccounts), never cached, and never read
// as "no such user"; while the counter cannot be read, cached answers are
// still used, so recipients already known keep getting their messages.
type accountCache struct {
	a       storage.Accounts
	recheck time.Duration
	max     int
	now     func() time.Time

	mu      sync.Mutex
	known   map[string]bool
	epoch   uint64 // bumped whenever known is emptied
	changes uint64 // the store's counter when last read
	checked time.Time
}

const (
	accountRecheck   = time.Second
	accountCacheSize = 10000
)

func newAccountCache(a storage.Accounts, recheck time.Duration, size int) *accountCache {
	return &accountCache{a: a, recheck: recheck, max: size, now: time.Now, known: make(map[string]bool)}
}

// Exists implements router.Accounts (false on a storage error too).
func (c *accountCache) Exists(ctx context.Context, bare string) bool {
	ok, err := c.Check(ctx, bare)
	return ok && err == nil
}

// Check implements router.CheckedAccounts.
func (c *accountCache) Check(ctx context.Context, bare string) (bool, error) {
	c.fresh(ctx)
	c.mu.Lock()
	ok, hit := c.known[bare]
	epoch := c.epoch
	c.mu.Unlock()
	if hit {
		return ok, nil
	}
	ok, err := c.a.Exists(ctx, bare)
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	// An answer read before the cache was emptied may predate the change
	// that emptied it: not kept.
	if c.epoch == epoch {
		if len(c.known) >= c.max {
			c.resetLocked()
		}
		c.known[bare] = ok
	}
	c.mu.Unlock()
	return ok, nil
}

// fresh reads the store's change counter when the last reading is older
// than recheck, and empties the cache if it moved.
func (c *accountCache) fresh(ctx context.Context) {
	c.mu.Lock()
	due := c.now().Sub(c.checked) >= c.recheck
	epoch := c.epoch
	c.mu.Unlock()
	if !due {
		return
	}
	n, err := c.a.Changes(ctx)
	if err != nil {
		// The store cannot tell: answers already cached are still used
		// (an online recipient still gets its messages); a miss asks the
		// store, and fails with it. The next check reads the counter again.
		return
	}
	c.mu.Lock()
	if n != c.changes || c.epoch != epoch {
		c.changes = n
		c.resetLocked()
	}
	c.checked = c.now()
	c.mu.Unlock()
}

func (c *accountCache) resetLocked() {
	clear(c.known)
	c.epoch++
}

func (c *accountCache) forget() {
	c.mu.Lock()
	c.resetLocked()
	c.mu.Unlock()
}

// storeAccounts is the storage.Accounts the server's store hands out: the
// store's own, with the cache emptied when an account is created or
// deleted in this process, and Exists answered from the cache.
type storeAccounts struct {
	storage.Accounts
	c *accountCache
}

func (s storeAccounts) Create(ctx context.Context, a storage.Account) error {
	defer s.c.forget()
	return s.Accounts.Create(ctx, a)
}

func (s storeAccounts) Delete(ctx context.Context, jid string) error {
	defer s.c.forget()
	return s.Accounts.Delete(ctx, jid)
}

func (s storeAccounts) Exists(ctx context.Context, jid string) (bool, error) {
	return s.c.Check(ctx, jid)
}

// cachedStore is the server's store with the account cache in front.
type cachedStore struct {
	storage.Store
	accounts *accountCache
}

func (s cachedStore) Accounts() storage.Accounts {
	return storeAccounts{Accounts: s.Store.Accounts(), c: s.accounts}
}
