// Package blocking implements XEP-0191 Blocking Command (urn:xmpp:blocking):
// a user's list of blocked JIDs, its retrieval, block, unblock and
// unblock-all commands with pushes to the resources that asked for the
// list, and the enforcement of the list in both directions.
//
// It is a module in the pipeline of docs/ARCHITECTURE.md and must be
// registered before the modules that process the stanzas it stops (roster,
// archive, carbons, offline storage):
//
//   - its outbound hooks refuse what a user sends to a JID she blocked,
//     with <not-acceptable/> and <blocked xmlns='urn:xmpp:blocking:errors'/>
//     (XEP-0191 §3.3);
//   - its inbound hooks stop what a blocked JID sends her: presence is
//     dropped silently, messages and iq get/set are answered
//     <service-unavailable/> (so she appears offline), other iqs and errors
//     are dropped. They also drop what the server itself routes on her
//     behalf (presence broadcasts, probes, unavailable at logout) to a local
//     JID she blocked.
//
// Blocking sends unavailable presence from her available resources to the
// blocked contacts that could see her presence; unblocking sends her current
// presence to them again (and probes the contacts she is subscribed to, so
// her clients learn their presence). Subscriptions are left as they are
// ("polite blocking", §4).
//
// Lists live in a storage.Blocklist; the module caches the lists of the
// accounts it meets, so enforcement costs no storage read per stanza.
package blocking

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

// Namespaces.
const (
	// NS is the XEP-0191 namespace (and disco feature).
	NS = "urn:xmpp:blocking"
	// NSErrors qualifies the <blocked/> application error condition.
	NSErrors = "urn:xmpp:blocking:errors"
)

// Config is the <modules><blocking …/></modules> section.
type Config struct {
	conf.ModuleBase
	// MaxItems is the longest blocklist a user may have; 0 = no limit.
	MaxItems int `conf:"max-items,min=0"`
}

func init() {
	conf.RegisterModule("blocking", func() any { return &Config{MaxItems: 1000} })
}

// Options configure the module.
type Options struct {
	// MaxItems is the longest blocklist a user may have (0: no limit); a
	// block command that would pass it is refused with <not-allowed/>.
	MaxItems int
	// CacheSize is how many accounts' lists are kept in memory (0: 10000).
	CacheSize int
}

// Module is the blocking command module.
type Module struct {
	r      *router.Router
	store  storage.Blocklist
	roster storage.Roster
	log    *slog.Logger
	opts   Options

	cache  *cache
	locks  [64]sync.Mutex // per owner (by hash): block and unblock commands
	pushID atomic.Uint64
}

// requestedKey marks, on a session, that its client retrieved the
// blocklist (it then receives pushes).
type requestedKey struct{}

// New registers the module on r. roster is read to find the contacts that
// get presence when their blocking state changes.
func New(r *router.Router, store storage.Blocklist, roster storage.Roster, log *slog.Logger, opts Options) *Module {
	if log == nil {
		log = slog.Default()
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = 10000
	}
	m := &Module{
		r:      r,
		store:  store,
		roster: roster,
		log:    log.With("module", "blocking"),
		opts:   opts,
		cache:  newCache(opts.CacheSize),
	}
	r.AddFeature(router.ToServer, NS)
	r.HandleIQ("get", NS, router.ToBare, m.handleGet)
	r.HandleIQ("set", NS, router.ToBare, m.handleSet)
	for _, k := range []wire.Kind{wire.KindMessage, wire.KindPresence, wire.KindIQ} {
		r.OnOutbound(k, m.outbound)
		r.OnInbound(k, m.inbound)
	}
	r.OnUnbound(m.unbound)
	return m
}

// Blocked reports whether owner's blocklist matches j (for other modules:
// offline storage and the archive filter what they stored before a block).
// What the enforcement never blocks is never reported blocked: j of the
// owner's own account, or a local domain itself.
func (m *Module) Blocked(ctx context.Context, owner string, j jid.JID) bool {
	if o, err := jid.Parse(owner); err != nil || m.exempt(j, o) {
		return false
	}
	l, err := m.list(ctx, owner)
	return err == nil && l.blocks(j)
}

// list returns owner's blocklist from the cache or storage.
func (m *Module) list(ctx context.Context, owner string) (*list, error) {
	return m.cache.get(ctx, owner, m.store.List)
}

func (m *Module) unbound(s router.Session) {
	bare := s.JID().Bare().String()
	if len(m.r.Resources(bare)) == 0 {
		m.cache.drop(bare)
	}
}

func (m *Module) lock(owner string) func() {
	h := fnv.New32a()
	h.Write([]byte(owner))
	mu := &m.locks[h.Sum32()%uint32(len(m.locks))]
	mu.Lock()
	return mu.Unlock
}

// own reports whether the iq comes from the account it is addressed to
// (only she may read or change her list).
func own(c *router.Context) bool {
	return c.From.Localpart() != "" && c.From.Bare().Equal(c.To.Bare())
}

func (m *Module) handleGet(c *router.Context) {
	if !own(c) {
		c.Error("auth", "forbidden", "")
		return
	}
	if c.Stanza.PayloadName != "blocklist" {
		c.Error("modify", "bad-request", "")
		return
	}
	owner := c.To.Bare().String()
	l, err := m.list(c, owner)
	if err != nil {
		m.log.Error("reading blocklist failed", "owner", owner, "err", err)
		c.Error("wait", "internal-server-error", "")
		return
	}
	if c.Origin != nil {
		c.Origin.SetValue(requestedKey{}, true)
	}
	c.Reply(appendItems(nil, "blocklist", l.items))
}

// command is a decoded <block/> or <unblock/>.
type command struct {
	Items []struct {
		JID *string `xml:"jid,attr"`
	} `xml:"urn:xmpp:blocking item"`
}

func (m *Module) handleSet(c *router.Context) {
	if !own(c) {
		c.Error("auth", "forbidden", "")
		return
	}
	st := c.Stanza
	var v struct {
		Block   *command `xml:"urn:xmpp:blocking block"`
		Unblock *command `xml:"urn:xmpp:blocking unblock"`
	}
	if err := st.Decode(&v); err != nil {
		c.Error("modify", "bad-request", "")
		return
	}
	cmd := v.Block
	if st.PayloadName == "unblock" {
		cmd = v.Unblock
	} else if st.PayloadName != "block" {
		cmd = nil
	}
	if cmd == nil {
		c.Error("modify", "bad-request", "")
		return
	}
	var jids []string
	seen := make(map[string]bool, len(cmd.Items))
	for _, it := range cmd.Items {
		if it.JID == nil {
			c.Error("modify", "bad-request", "An item needs a jid")
			return
		}
		j, err := jid.Parse(*it.JID)
		if err != nil {
			c.Error("modify", "jid-malformed", "")
			return
		}
		if s := j.String(); !seen[s] {
			seen[s] = true
			jids = append(jids, s)
		}
	}
	if st.PayloadName == "block" {
		if len(jids) == 0 {
			c.Error("modify", "bad-request", "Nothing to block")
			return
		}
		m.block(c, jids)
		return
	}
	m.unblock(c, jids)
}

// block runs a block command (XEP-0191 §3.3).
func (m *Module) block(c *router.Context, jids []string) {
	owner := c.To.Bare().String()
	defer m.lock(owner)()
	cur, err := m.list(c, owner)
	if err != nil {
		m.log.Error("reading blocklist failed", "owner", owner, "err", err)
		c.Error("wait", "internal-server-error", "")
		return
	}
	var fresh []string
	for _, j := range jids {
		if !cur.has(j) {
			fresh = append(fresh, j)
		}
	}
	if max := m.opts.MaxItems; max > 0 && len(cur.items)+len(fresh) > max {
		c.Error("cancel", "not-allowed", "The blocklist is full ("+strconv.Itoa(max)+" items)")
		return
	}
	// The contacts that could see her presence are told she left, while
	// routing to them still works; then the block takes effect.
	if len(fresh) > 0 {
		m.presenceChange(c, owner, newList(fresh), cur, true)
	}
	_, err = m.store.Block(c, owner, jids, m.opts.MaxItems)
	if err == nil {
		err = m.reload(c, owner)
	}
	switch {
	case errors.Is(err, storage.ErrQuotaExceeded):
		c.Error("cancel", "not-allowed", "The blocklist is full")
		return
	case err != nil:
		m.log.Error("storing blocklist failed", "owner", owner, "err", err)
		c.Error("wait", "internal-server-error", "")
		return
	}
	c.Reply(nil)
	m.push(owner, "block", jids)
}

// unblock runs an unblock command (§3.4), or unblock-all (§3.5) when jids
// is empty.
func (m *Module) unblock(c *router.Context, jids []string) {
	owner := c.To.Bare().String()
	defer m.lock(owner)()
	var removed []string
	var err error
	if len(jids) == 0 {
		removed, err = m.store.UnblockAll(c, owner)
	} else {
		removed, err = m.store.Unblock(c, owner, jids)
	}
	if err == nil {
		err = m.reload(c, owner)
	}
	if err != nil {
		m.log.Error("storing blocklist failed", "owner", owner, "err", err)
		c.Error("wait", "internal-server-error", "")
		return
	}
	c.Reply(nil)
	m.push(owner, "unblock", jids)
	if len(removed) > 0 {
		now, err := m.list(c, owner)
		if err != nil {
			return
		}
		m.presenceChange(c, owner, newList(removed), now, false)
	}
}

// reload puts owner's stored list in the cache.
func (m *Module) reload(ctx context.Context, owner string) error {
	items, err := m.store.List(ctx, owner)
	if err != nil {
		m.cache.drop(owner)
		return err
	}
	m.cache.set(owner, newList(items))
	return nil
}

// push sends the command to every resource of owner that retrieved the
// blocklist (§3.3, §3.4, §3.5).
func (m *Module) push(owner, name string, jids []string) {
	var payload []byte
	for _, s := range m.r.Resources(owner) {
		if s.Value(requestedKey{}) == nil {
			continue
		}
		if payload == nil {
			payload = appendItems(nil, name, jids)
		}
		b := make([]byte, 0, len(payload)+96)
		b = append(b, "<iq type='set' id='block-push"...)
		b = strconv.AppendUint(b, m.pushID.Add(1), 10)
		b = append(b, "' to='"...)
		b = wire.AppendEscapedAttr(b, s.JID().String())
		b = append(b, "'>"...)
		b = append(b, payload...)
		b = append(b, "</iq>"...)
		s.Send(b)
	}
}

// appendItems writes <name xmlns='urn:xmpp:blocking'><item jid='…'/>…</name>.
func appendItems(b []byte, name string, jids []string) []byte {
	b = append(b, '<')
	b = append(b, name...)
	b = append(b, " xmlns='"+NS+"'"...)
	if len(jids) == 0 {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	for _, j := range jids {
		b = append(b, "<item jid='"...)
		b = wire.AppendEscapedAttr(b, j)
		b = append(b, "'/>"...)
	}
	b = append(b, "</"...)
	b = append(b, name...)
	return append(b, '>')
}

// presenceChange tells the contacts matched by changed that the user's
// blocking state toward them changed: when blocking, unavailable presence
// from each of her available resources (to the contacts that could see her
// presence), and unavailable presence from the contacts' available local
// resources to her (their presence will not reach her any more); when
// unblocking, her current presence, and a probe of the contacts she is
// subscribed to. A contact still blocked by another entry of now (the
// list after the change) is left out when unblocking.
func (m *Module) presenceChange(ctx context.Context, owner string, changed, now *list, blocking bool) {
	items, _, err := m.roster.Items(ctx, owner)
	if err != nil {
		m.log.Error("reading roster failed", "owner", owner, "err", err)
		return
	}
	mine := m.r.Available(owner)
	for _, it := range items {
		contact, err := jid.Parse(it.JID)
		if err != nil {
			continue
		}
		for _, target := range targets(changed, contact) {
			if !blocking && now.blocks(target) {
				continue
			}
			from := it.Subscription == storage.SubFrom || it.Subscription == storage.SubBoth
			to := it.Subscription == storage.SubTo || it.Subscription == storage.SubBoth
			for _, s := range mine {
				full := s.JID()
				switch {
				case blocking && from:
					m.route(ctx, presence("unavailable", full.String(), target.String()), full, target)
				case !blocking && from:
					if p := s.Presence(); p != nil {
						cp := *p
						cp.SetAddrs(full.String(), target.String())
						m.route(ctx, &cp, full, target)
					}
				}
				if !blocking && to {
					m.route(ctx, presence("probe", full.String(), target.String()), full, target)
				}
			}
			if blocking && to && len(mine) > 0 && m.r.IsLocal(target.Domainpart()) {
				for _, o := range m.r.Available(target.Bare().String()) {
					if target.Resourcepart() != "" && !o.JID().Equal(target) {
						continue
					}
					for _, s := range mine {
						s.Send(presence("unavailable", o.JID().String(), s.JID().String()).Raw)
					}
				}
			}
		}
	}
}

// targets returns the addresses of contact (a bare JID from the roster)
// that entries of changed name: the bare JID when the bare JID or the
// domain is named, else each full JID of the contact that is named.
func targets(changed *list, contact jid.JID) []jid.JID {
	if changed.has(contact.String()) || changed.has(contact.Domainpart()) {
		return []jid.JID{contact}
	}
	var out []jid.JID
	prefix := contact.String() + "/"
	for _, e := range changed.items {
		if len(e) > len(prefix) && e[:len(prefix)] == prefix {
			if j, err := jid.Parse(e); err == nil {
				out = append(out, j)
			}
		}
	}
	return out
}

// route sends a server-made stanza through the router (inbound hooks of a
// local recipient run).
func (m *Module) route(ctx context.Context, st *wire.Stanza, from, to jid.JID) {
	m.r.Route(&router.Context{Context: ctx, Router: m.r, Stanza: st, From: from, To: to})
}

// presence builds <presence type='typ' from='from' to='to'/>.
func presence(typ, from, to string) *wire.Stanza {
	b := make([]byte, 0, 48+len(typ)+len(from)+len(to))
	b = append(b, "<presence"...)
	if typ != "" {
		b = append(b, " type='"...)
		b = wire.AppendEscapedAttr(b, typ)
		b = append(b, '\'')
	}
	b = append(b, " from='"...)
	b = wire.AppendEscapedAttr(b, from)
	b = append(b, "' to='"...)
	b = wire.AppendEscapedAttr(b, to)
	b = append(b, "'/>"...)
	return &wire.Stanza{Kind: wire.KindPresence, Name: "presence", NS: wire.NSClient, Type: typ, From: from, To: to, Raw: b}
}
