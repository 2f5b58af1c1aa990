package blocking

import (
	"context"
	"sync"
	"sync/atomic"

	"mellium.im/xmpp/jid"
)

// list is one account's blocklist, immutable once built.
type list struct {
	items []string // canonical JIDs, sorted
	set   map[string]struct{}
}

func newList(items []string) *list {
	l := &list{items: items}
	if len(items) > 0 {
		l.set = make(map[string]struct{}, len(items))
		for _, it := range items {
			l.set[it] = struct{}{}
		}
	}
	return l
}

// blocks reports whether an entry matches j by the rules of XEP-0191 §6 /
// XEP-0016: user@domain/resource matches only that full JID, user@domain
// any of its resources, domain/resource only that JID, and domain the
// domain itself and every JID at it.
func (l *list) blocks(j jid.JID) bool {
	if l == nil || len(l.set) == 0 || j.Domainpart() == "" {
		return false
	}
	if _, ok := l.set[j.Domainpart()]; ok {
		return true
	}
	if _, ok := l.set[j.Bare().String()]; ok {
		return true
	}
	if j.Resourcepart() != "" {
		_, ok := l.set[j.String()]
		return ok
	}
	return false
}

// has reports whether s is an entry.
func (l *list) has(s string) bool {
	_, ok := l.set[s]
	return ok
}

// cache keeps the blocklists of recently seen accounts, so the hooks that
// run on every stanza do not read storage. Entries are dropped when an
// account's last session ends, and at random when the cache is full.
type cache struct {
	max int
	gen atomic.Uint64 // bumped by every change, so a load that raced one is not kept

	mu sync.RWMutex
	m  map[string]*list
}

func newCache(max int) *cache { return &cache{max: max, m: make(map[string]*list)} }

// get returns the cached list of bare, loading it with load when missing.
func (c *cache) get(ctx context.Context, bare string, load func(context.Context, string) ([]string, error)) (*list, error) {
	c.mu.RLock()
	l, ok := c.m[bare]
	c.mu.RUnlock()
	if ok {
		return l, nil
	}
	gen := c.gen.Load()
	items, err := load(ctx, bare)
	if err != nil {
		return nil, err
	}
	l = newList(items)
	c.mu.Lock()
	if c.gen.Load() == gen {
		c.putLocked(bare, l)
	}
	c.mu.Unlock()
	return l, nil
}

// set records a changed list.
func (c *cache) set(bare string, l *list) {
	c.mu.Lock()
	c.gen.Add(1)
	c.putLocked(bare, l)
	c.mu.Unlock()
}

func (c *cache) putLocked(bare string, l *list) {
	if _, ok := c.m[bare]; !ok && len(c.m) >= c.max {
		for k := range c.m { // map order is random enough
			delete(c.m, k)
			break
		}
	}
	c.m[bare] = l
}

// drop forgets bare's list.
func (c *cache) drop(bare string) {
	c.mu.Lock()
	c.gen.Add(1)
	delete(c.m, bare)
	c.mu.Unlock()
}
