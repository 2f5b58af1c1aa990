// Package roster implements RFC 6121: the roster (jabber:iq:roster get, set,
// remove and pushes, with XEP-0237 versioning), the presence subscription
// state machine of §3 and Appendix A (with pre-approval, §3.4), and presence
// broadcast, probes and directed presence (§4).
//
// It is a module in the pipeline of docs/ARCHITECTURE.md: New registers its
// roster IQ handlers on the router, an outbound presence hook (what a local
// session sends: broadcast, directed presence, subscription requests and
// answers), an inbound presence hook (what arrives for a local account:
// subscription stanzas and probes) and an unbound callback (unavailable
// presence when a session ends). Roster items live in a storage.Roster;
// presence lives on the sessions (router.Session.SetPresence); the only
// state the module keeps itself is who each session sent directed presence
// to.
//
// Subscription stanzas are processed twice, as in the RFC: once for the
// sender's roster (outbound) and, after Router.Route, once for the
// recipient's roster (inbound) — for two local accounts both happen here,
// one after the other.
package roster

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

// Namespaces and stream features.
const (
	// NS is the roster namespace (RFC 6121 §2).
	NS = "jabber:iq:roster"
	// NSRosterVer is the XEP-0237 stream feature namespace.
	NSRosterVer = "urn:xmpp:features:rosterver"
	// NSPreApproval is the RFC 6121 §3.4 stream feature namespace.
	NSPreApproval = "urn:xmpp:features:pre-approval"
)

// Limits on roster item content (RFC 6121 §2.3.3: not-acceptable).
const (
	MaxNameBytes  = 1023 // a 'name' attribute
	MaxGroupBytes = 1023 // one <group/>
	MaxGroups     = 64   // groups on one item
)

// Options configure the roster module.
type Options struct {
	// MaxItems is the largest roster a user may build with roster sets and
	// outbound subscriptions (0: no limit). Contacts that only asked to
	// subscribe and were not answered are not counted, but none are kept
	// beyond the limit either.
	MaxItems int
	// Versioning enables XEP-0237 roster versioning.
	Versioning bool
}

// Module is the roster and presence module.
type Module struct {
	r     *router.Router
	store storage.Roster
	log   *slog.Logger
	opts  Options

	lmu    sync.Mutex
	locks  map[string]*ownerLock // per owner: read-modify-write of items
	pushID atomic.Uint64

	dmu      sync.Mutex
	directed map[router.Session]map[string]jid.JID // session → recipients of its directed presence
}

// New registers the roster module on r.
func New(r *router.Router, store storage.Roster, log *slog.Logger, opts Options) *Module {
	if log == nil {
		log = slog.Default()
	}
	m := &Module{
		r:        r,
		store:    store,
		log:      log.With("module", "roster"),
		opts:     opts,
		locks:    make(map[string]*ownerLock),
		directed: make(map[router.Session]map[string]jid.JID),
	}
	r.HandleIQ("get", NS, router.ToBare, m.handleGet)
	r.HandleIQ("set", NS, router.ToBare, m.handleSet)
	r.OnOutbound(wire.KindPresence, m.outbound)
	r.OnInbound(wire.KindPresence, m.inbound)
	r.OnUnbound(m.unbound)
	return m
}

// StreamFeatures returns the stream features the c2s negotiation should
// advertise after binding: XEP-0237 roster versioning (when enabled) and
// RFC 6121 §3.4 subscription pre-approval.
func (m *Module) StreamFeatures() []byte {
	b := make([]byte, 0, 96)
	if m.opts.Versioning {
		b = append(b, "<ver xmlns='"+NSRosterVer+"'/>"...)
	}
	b = append(b, "<sub xmlns='"+NSPreApproval+"'/>"...)
	return b
}

// ownerLock is one owner's lock, with the number of holders and waiters.
type ownerLock struct {
	mu sync.Mutex
	n  int
}

// lock serializes read-modify-write of one owner's roster. Locks are never
// nested, and nothing is routed while one is held.
//
// Each owner has a lock of its own (kept only while someone holds or waits
// for it), not one of a fixed set of stripes: the lock is held until the
// change is committed, and storage commits the changes of many owners
// together, so a change must not wait behind another owner's commit that
// happens to share its stripe.
func (m *Module) lock(owner string) func() {
	m.lmu.Lock()
	l := m.locks[owner]
	if l == nil {
		l = &ownerLock{}
		m.locks[owner] = l
	}
	l.n++
	m.lmu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		m.lmu.Lock()
		if l.n--; l.n == 0 {
			delete(m.locks, owner)
		}
		m.lmu.Unlock()
	}
}

// hasTo and hasFrom read the subscription of an item.
func hasTo(it storage.RosterItem) bool {
	return it.Subscription == storage.SubTo || it.Subscription == storage.SubBoth
}

func hasFrom(it storage.RosterItem) bool {
	return it.Subscription == storage.SubFrom || it.Subscription == storage.SubBoth
}

func setSub(it *storage.RosterItem, to, from bool) {
	switch {
	case to && from:
		it.Subscription = storage.SubBoth
	case to:
		it.Subscription = storage.SubTo
	case from:
		it.Subscription = storage.SubFrom
	default:
		it.Subscription = storage.SubNone
	}
}

func normSub(it *storage.RosterItem) {
	if it.Subscription == "" {
		it.Subscription = storage.SubNone
	}
}

// An item the user never added, created only to remember an unanswered
// subscription request from that contact ("None + Pending In"), is stored
// with Hidden set: it is kept but left out of roster results and pushes
// (RFC 6121 Appendix A.1 allows either), and does not count towards
// MaxItems. Hidden is set only by inboundSubscription, when a subscribe
// creates the item, and cleared when the user sets the item (handleSet),
// approves the request, or the item otherwise gets a subscription state of
// its own (tied); refusing or withdrawing the request deletes a hidden item.
// Whatever the user added stays visible, name and groups or not.

// tied reports whether the subscription state alone makes the item a
// contact of the user: a subscription in either direction, her own pending
// request, or a pre-approval.
func tied(it storage.RosterItem) bool {
	return (it.Subscription != storage.SubNone && it.Subscription != "") || it.Ask || it.Approved
}

// visibleChange reports whether a roster push is due for a change from a to
// b (a is meaningful only when the item existed).
func visibleChange(a, b storage.RosterItem, existed bool) bool {
	if b.Hidden {
		return false
	}
	if !existed || a.Hidden {
		return true
	}
	if a.Subscription != b.Subscription || a.Ask != b.Ask || a.Name != b.Name ||
		(a.Approved && !hasFrom(a)) != (b.Approved && !hasFrom(b)) || len(a.Groups) != len(b.Groups) {
		return true
	}
	for i := range a.Groups {
		if a.Groups[i] != b.Groups[i] {
			return true
		}
	}
	return false
}

// item reads one item; a missing item is returned as a zero item with the
// contact's JID and found false.
func (m *Module) item(ctx context.Context, owner, contact string) (storage.RosterItem, bool, error) {
	it, err := m.store.Item(ctx, owner, contact)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.RosterItem{JID: contact, Subscription: storage.SubNone}, false, nil
	}
	if err != nil {
		return it, false, err
	}
	normSub(&it)
	return it, true, nil
}

// plan decides how the new state after of an item (before, when it
// existed) is stored after a subscription change. A hidden item whose state
// ties it to the user becomes visible. An item the user cannot see (new, or
// hidden) that is left with neither a pending request nor a subscription
// state is not stored, or removed. An unchanged state is not written.
func plan(before, after storage.RosterItem, existed bool) (storage.RosterItem, storage.RosterOp) {
	if after.Hidden && tied(after) {
		after.Hidden = false
	}
	if (!existed || before.Hidden) && !after.PendingIn && !tied(after) {
		if !existed {
			return after, storage.RosterKeep
		}
		return after, storage.RosterRemove
	}
	if existed && sameState(before, after) {
		return after, storage.RosterKeep
	}
	return after, storage.RosterPut
}

// errRosterFull ends a change that would make the roster hold more than
// MaxItems visible items.
var errRosterFull = errors.New("roster: roster full")

// change applies fn (see storage.RosterUpdateFunc) to one item of owner's
// roster and stores the result, durably, then pushes the change when the
// user can see it. The caller holds owner's lock, so pushes of one owner go
// out in version order. With a storage.RosterUpdater the read, fn and the
// write happen in one step in the store (for SQLite: on the writer, inside
// its shared transaction); otherwise the item is read, and then put or
// removed.
func (m *Module) change(ctx context.Context, owner, contact string, fn storage.RosterUpdateFunc) (storage.RosterUpdate, error) {
	var res storage.RosterUpdate
	if u, ok := m.store.(storage.RosterUpdater); ok {
		var err error
		if res, err = u.Update(ctx, owner, contact, fn); err != nil {
			return res, err
		}
	} else {
		cur, existed, err := m.item(ctx, owner, contact)
		if err != nil {
			return res, err
		}
		count := func() (all, visible int, err error) {
			items, _, err := m.store.Items(ctx, owner)
			for _, it := range items {
				if !it.Hidden {
					visible++
				}
			}
			return len(items), visible, err
		}
		next, op, err := fn(cur, existed, count)
		res = storage.RosterUpdate{Before: cur, Found: existed, After: cur}
		if err != nil {
			return res, err
		}
		switch {
		case op == storage.RosterPut:
			next.JID = contact
			if res.Version, err = m.store.Put(ctx, owner, next); err != nil {
				return res, err
			}
			res.After, res.Op = next, op
		case op == storage.RosterRemove && existed:
			res.Version, err = m.store.Remove(ctx, owner, contact)
			if errors.Is(err, storage.ErrNotFound) {
				return res, nil
			}
			if err != nil {
				return res, err
			}
			res.Op = op
		}
	}
	normSub(&res.Before)
	if res.Op == storage.RosterPut && visibleChange(res.Before, res.After, res.Found) {
		m.push(owner, res.After, res.Version, false)
	}
	return res, nil
}

func sameState(a, b storage.RosterItem) bool {
	return a.Subscription == b.Subscription && a.Ask == b.Ask && a.PendingIn == b.PendingIn &&
		a.Approved == b.Approved && a.Hidden == b.Hidden && string(a.PendingInXML) == string(b.PendingInXML)
}

// push sends a roster push (RFC 6121 §2.1.6) to every interested resource
// of owner. Send never blocks, so pushes may be sent under the owner's lock.
func (m *Module) push(owner string, it storage.RosterItem, ver uint64, removed bool) {
	var q []byte
	for _, s := range m.r.Resources(owner) {
		if !s.Interested() {
			continue
		}
		if q == nil {
			q = m.appendQuery(nil, ver)
			q = append(q, '>')
			q = appendItem(q, it, removed)
			q = append(q, "</query>"...)
		}
		b := make([]byte, 0, len(q)+96)
		b = append(b, "<iq type='set' id='push"...)
		b = strconv.AppendUint(b, m.pushID.Add(1), 10)
		b = append(b, "' to='"...)
		b = wire.AppendEscapedAttr(b, s.JID().String())
		b = append(b, "'>"...)
		b = append(b, q...)
		b = append(b, "</iq>"...)
		s.Send(b)
	}
}

// appendQuery opens <query xmlns='jabber:iq:roster' [ver='…'] (unclosed tag).
func (m *Module) appendQuery(b []byte, ver uint64) []byte {
	b = append(b, "<query xmlns='"+NS+"'"...)
	if m.opts.Versioning {
		b = append(b, " ver='"...)
		b = strconv.AppendUint(b, ver, 10)
		b = append(b, '\'')
	}
	return b
}

// appendItem writes one <item/> of a roster result or push.
func appendItem(b []byte, it storage.RosterItem, removed bool) []byte {
	b = append(b, "<item jid='"...)
	b = wire.AppendEscapedAttr(b, it.JID)
	b = append(b, '\'')
	if removed {
		return append(b, " subscription='remove'/>"...)
	}
	if it.Name != "" {
		b = append(b, " name='"...)
		b = wire.AppendEscapedAttr(b, it.Name)
		b = append(b, '\'')
	}
	sub := it.Subscription
	if sub == "" {
		sub = storage.SubNone
	}
	b = append(b, " subscription='"...)
	b = append(b, sub...)
	b = append(b, '\'')
	if it.Ask {
		b = append(b, " ask='subscribe'"...)
	}
	if it.Approved && !hasFrom(it) {
		b = append(b, " approved='true'"...)
	}
	if len(it.Groups) == 0 {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	for _, g := range it.Groups {
		b = append(b, "<group>"...)
		b = wire.AppendEscapedText(b, g)
		b = append(b, "</group>"...)
	}
	return append(b, "</item>"...)
}
