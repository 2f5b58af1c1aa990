package push

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/c2s"
	"github.com/xmppd/xmppd/dataform"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

const (
	// NS is the XEP-0357 namespace, advertised on accounts.
	NS = "urn:xmpp:push:0"
	// NSCall marks a notification for a Jingle Message Initiation proposal
	// (an incoming call): <call xmlns='urn:xmppd:push:call:0' id='…'
	// from='…' media='audio video'/> inside <notification/>.
	NSCall = "urn:xmppd:push:call:0"

	nsPubSub = "http://jabber.org/protocol/pubsub"
	nsMAM    = "urn:xmpp:mam:2"
)

// maxNode bounds a registration's node.
const maxNode = 1024

// Module is XEP-0357 on the user's server: registrations (enable,
// disable) and the notifications published to app servers.
type Module struct {
	r     *router.Router
	store storage.PushRegistrations
	log   *slog.Logger
	cfg   Config
	app   *AppServer

	// accounts runs each account's notifications in order (storage read,
	// counting); devices publishes each device's in order.
	accounts, devices *lanes
	overflow          atomic.Uint64 // notifications refused by a full queue

	mu     sync.Mutex
	devs   map[string]map[regKey]*device // owner → devices notified since they went away
	closed bool

	smu sync.Mutex // creates session states

	cmu   sync.Mutex
	cache map[string][]storage.PushRegistration // owner → registrations (nil slice: none)
	cgen  uint64                                // bumped by every change

	archiveOnce sync.Once
	archive     bool // an archive (MAM) lets devices fetch what others got
}

// regKey names a registration within an account.
type regKey struct{ service, node string }

func keyOf(reg storage.PushRegistration) regKey { return regKey{reg.Service, reg.Node} }

// New registers XEP-0357 on r and, when cfg has vendor credentials, the
// built-in app server push.HOST for each of hosts.
func New(r *router.Router, store storage.PushRegistrations, log *slog.Logger, cfg *Config, hosts []string) (*Module, error) {
	m := &Module{r: r, store: store, log: log, cfg: *cfg,
		devs: map[string]map[regKey]*device{}, cache: map[string][]storage.PushRegistration{}}
	m.accounts = newLanes("account", log, cfg.MaxQueue, &m.overflow)
	m.devices = newLanes("device", log, cfg.MaxQueue, &m.overflow)
	if cfg.AppServer.On() {
		app, err := NewAppServer(r, store, log, &cfg.AppServer, hosts)
		if err != nil {
			return nil, err
		}
		m.app = app
	}
	r.AddFeature(router.ToBare, NS)
	r.HandleIQ("set", NS, router.ToBare, m.handleIQ)
	r.OnOffline(m.offline)
	r.OnInbound(wire.KindMessage, m.inbound)
	for _, k := range []wire.Kind{wire.KindMessage, wire.KindPresence, wire.KindIQ} {
		r.OnOutbound(k, m.outbound)
	}
	r.OnBound(m.bound)
	modules.Store(r, m)
	return m, nil
}

var modules sync.Map // *router.Router → *Module

// Lookup returns the push module registered on r (nil when it is off).
func Lookup(r *router.Router) *Module {
	if m, ok := modules.Load(r); ok {
		return m.(*Module)
	}
	return nil
}

// Overflowed returns how many notifications a full queue refused
// (max-queue waiting per account or per device).
func (m *Module) Overflowed() uint64 { return m.overflow.Load() }

// Idle returns when no notification waits or is being published (those
// the throttle holds excepted), or when ctx ends.
func (m *Module) Idle(ctx context.Context) error {
	if err := m.accounts.wait(ctx); err != nil {
		return err
	}
	return m.devices.wait(ctx)
}

// Close drops the notifications the throttle holds (at shutdown); later
// messages are no longer notified.
func (m *Module) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.accounts.close()
	m.devices.close()
	for _, devs := range m.devs {
		for _, d := range devs {
			if d.timer != nil {
				d.timer.Stop()
			}
		}
	}
	clear(m.devs)
}

// AppServer returns the built-in app server (nil when it is off).
func (m *Module) AppServer() *AppServer { return m.app }

// ChainHibernated returns a c2s.Options.OnHibernated callback that calls
// next (if any) and then notifies for what a hibernating session is sent.
func (m *Module) ChainHibernated(next func(*c2s.Session, []byte)) func(*c2s.Session, []byte) {
	return func(s *c2s.Session, raw []byte) {
		if next != nil {
			next(s, raw)
		}
		m.Hibernated(s, raw)
	}
}

// sessKey is the key of a session's push state (router.Session.Value).
type sessKey struct{}

// sessState is what the module keeps on a session.
type sessState struct {
	mu      sync.Mutex
	enabled map[regKey]struct{} // registrations this session enabled
	// away is set when a notification went out for the session while it
	// hibernated; its next stanza (it resumed) clears the devices' counts.
	away atomic.Bool
}

func (ss *sessState) has(k regKey) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	_, ok := ss.enabled[k]
	return ok
}

func (m *Module) sessState(s router.Session, create bool) *sessState {
	if v, ok := s.Value(sessKey{}).(*sessState); ok || !create {
		return v
	}
	m.smu.Lock()
	defer m.smu.Unlock()
	if v, ok := s.Value(sessKey{}).(*sessState); ok {
		return v
	}
	ss := &sessState{}
	s.SetValue(sessKey{}, ss)
	return ss
}

// XEP-0357 §5 and §6: enabling and disabling.

type pushIQ struct {
	Enable *struct {
		JID  string         `xml:"jid,attr"`
		Node string         `xml:"node,attr"`
		X    *dataform.Form `xml:"jabber:x:data x"`
	} `xml:"urn:xmpp:push:0 enable"`
	Disable *struct {
		JID  string `xml:"jid,attr"`
		Node string `xml:"node,attr"`
	} `xml:"urn:xmpp:push:0 disable"`
}

func (m *Module) handleIQ(c *router.Context) {
	if !c.From.Bare().Equal(c.To) {
		c.Error("auth", "forbidden", "Only the account itself may manage its push registrations")
		return
	}
	var q pushIQ
	if err := c.Stanza.Decode(&q); err != nil {
		var fe *dataform.Error
		if errors.As(err, &fe) {
			c.Error("modify", fe.Condition, fe.Text())
			return
		}
		c.Error("modify", "bad-request", "")
		return
	}
	switch {
	case q.Enable != nil:
		m.enable(c, q.Enable.JID, q.Enable.Node, q.Enable.X)
	case q.Disable != nil:
		m.disable(c, q.Disable.JID, q.Disable.Node)
	default:
		c.Error("modify", "bad-request", "")
	}
}

func (m *Module) enable(c *router.Context, service, node string, x *dataform.Form) {
	svc, err := jid.Parse(service)
	if service == "" || err != nil {
		c.Error("modify", "bad-request", "The jid attribute must be the app server's JID")
		return
	}
	if node == "" || len(node) > maxNode {
		c.Error("modify", "bad-request", "The node attribute is required (at most 1024 bytes)")
		return
	}
	var form []byte
	if x != nil {
		if form, err = publishOptions(x); err != nil {
			c.Error("modify", "bad-request", err.Error())
			return
		}
	}
	if m.app != nil && m.app.Serves(svc) {
		if err := m.app.checkDevice(form); err != nil {
			c.Error("modify", "not-acceptable", err.Error())
			return
		}
	}
	owner := c.To.String()
	reg := storage.PushRegistration{Owner: owner, Service: svc.String(), Node: node, Form: form, Resource: c.From.Resourcepart()}
	id, err := m.store.Put(c, reg, m.cfg.MaxDevices)
	switch {
	case errors.Is(err, storage.ErrQuotaExceeded):
		c.Error("wait", "resource-constraint", "Too many push registrations; disable one first")
		return
	case err != nil:
		m.log.Error("push: storing a registration failed", "jid", owner, "err", err)
		c.Error("wait", "internal-server-error", "")
		return
	}
	m.invalidate(owner)
	k := keyOf(reg)
	if c.Origin != nil {
		ss := m.sessState(c.Origin, true)
		ss.mu.Lock()
		if ss.enabled == nil {
			ss.enabled = map[regKey]struct{}{}
		}
		ss.enabled[k] = struct{}{}
		ss.mu.Unlock()
	}
	m.reset(owner, func(dk regKey, _ *device) bool { return dk == k })
	m.log.Debug("push: enabled", "jid", c.From.String(), "service", reg.Service, "node", node, "id", id)
	c.Reply(nil)
}

func (m *Module) disable(c *router.Context, service, node string) {
	svc, err := jid.Parse(service)
	if service == "" || err != nil {
		c.Error("modify", "bad-request", "The jid attribute must be the app server's JID")
		return
	}
	owner := c.To.String()
	_, err = m.store.Remove(c, owner, svc.String(), node)
	m.invalidate(owner)
	if err != nil {
		m.log.Error("push: removing a registration failed", "jid", owner, "err", err)
		c.Error("wait", "internal-server-error", "")
		return
	}
	match := func(k regKey) bool { return k.service == svc.String() && (node == "" || k.node == node) }
	for _, s := range m.r.Resources(owner) {
		if ss := m.sessState(s, false); ss != nil {
			ss.mu.Lock()
			for k := range ss.enabled {
				if match(k) {
					delete(ss.enabled, k)
				}
			}
			ss.mu.Unlock()
		}
	}
	m.reset(owner, func(k regKey, _ *device) bool { return match(k) })
	c.Reply(nil)
}

// Triggers.

// offline is the OnOffline hook: the message found no available resource.
// It only looks (returns false) so that offline storage keeps the message.
func (m *Module) offline(c *router.Context) bool {
	ev, ok := inspect(c.Stanza, m.cfg.IncludeBody)
	if !ok {
		return false
	}
	ev.owner = c.To.Bare().String()
	ev.sender = c.From.Bare().String()
	if ev.call != nil {
		ev.call.from = c.From.String()
	}
	m.queue(ev.owner, func() { m.dispatch(ev, nil) })
	return false
}

// inbound is the OnInbound hook for messages: a message to the bare JID
// that available resources will get is also for the account's devices
// that are not connected at all. They are notified of a call always, of a
// message when an archive (MAM) lets them fetch it. It only looks.
func (m *Module) inbound(c *router.Context) bool {
	st := c.Stanza
	if c.To.Resourcepart() != "" || !(st.Type == "" || st.Type == "chat" || st.Type == "normal") {
		return false
	}
	owner := c.To.String()
	if regs, known := m.cached(owner); known && len(regs) == 0 {
		return false // the usual case: no registration, nothing more to do
	}
	ev, ok := inspect(st, m.cfg.IncludeBody)
	if !ok || (ev.call == nil && !m.archived()) {
		return false
	}
	available := false
	for _, s := range m.r.Available(owner) {
		if s.Priority() >= 0 {
			available = true
			break
		}
	}
	if !available {
		return false // the offline hook sees it
	}
	ev.owner = owner
	ev.sender = c.From.Bare().String()
	if ev.call != nil {
		ev.call.from = c.From.String()
	}
	m.queue(owner, func() { m.dispatch(ev, func(reg storage.PushRegistration) bool { return !m.connected(reg) }) })
	return false
}

// archived reports whether an archive keeps messages for devices to
// fetch later (the mam module registered urn:xmpp:mam:2).
func (m *Module) archived() bool {
	m.archiveOnce.Do(func() {
		for _, f := range m.r.Features(router.ToBare) {
			if f == nsMAM {
				m.archive = true
			}
		}
	})
	return m.archive
}

// Hibernated notifies for a stanza sent to a session that hibernates
// (XEP-0198): the devices that session enabled, or that registered from
// its resource, are told.
func (m *Module) Hibernated(s router.Session, raw []byte) {
	if !bytes.HasPrefix(raw, []byte("<message")) {
		return
	}
	st, err := wire.ParseElement(raw, wire.NSClient)
	if err != nil {
		return
	}
	ev, ok := inspect(st, m.cfg.IncludeBody)
	if !ok {
		return
	}
	ev.owner = s.JID().Bare().String()
	ss := m.sessState(s, true)
	ss.away.Store(true)
	res := s.JID().Resourcepart()
	m.queue(ev.owner, func() {
		m.dispatch(ev, func(reg storage.PushRegistration) bool {
			return (reg.Resource != "" && reg.Resource == res) || ss.has(keyOf(reg))
		})
	})
}

// dispatch notifies the registrations of ev.owner that sel accepts; with
// sel nil, every registration whose device has no live session.
func (m *Module) dispatch(ev event, sel func(storage.PushRegistration) bool) {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.Timeout)
	defer cancel()
	regs, err := m.registrations(ctx, ev.owner)
	if err != nil {
		m.log.Error("push: reading registrations failed", "jid", ev.owner, "err", err)
		return
	}
	for _, reg := range regs {
		if sel != nil && !sel(reg) || sel == nil && m.live(reg) {
			continue
		}
		m.notify(reg, ev)
	}
}

type hibernator interface{ Hibernating() bool }

// connected reports whether the device of reg has a bound session (with
// a link or hibernating).
func (m *Module) connected(reg storage.PushRegistration) bool {
	k := keyOf(reg)
	for _, s := range m.r.Resources(reg.Owner) {
		if reg.Resource != "" && s.JID().Resourcepart() == reg.Resource {
			return true
		}
		if ss := m.sessState(s, false); ss != nil && ss.has(k) {
			return true
		}
	}
	return false
}

// maxCached bounds the registration cache (accounts); past it, it starts
// over.
const maxCached = 100000

// cached returns owner's registrations if they are in the cache.
func (m *Module) cached(owner string) ([]storage.PushRegistration, bool) {
	m.cmu.Lock()
	defer m.cmu.Unlock()
	regs, ok := m.cache[owner]
	return regs, ok
}

// registrations reads owner's registrations from storage and caches the
// answer. Notifications always go by what storage says (an account deleted
// and created again must not inherit old devices); the cache only spares
// the inbound hook a read for accounts without registrations.
func (m *Module) registrations(ctx context.Context, owner string) ([]storage.PushRegistration, error) {
	m.cmu.Lock()
	gen := m.cgen
	m.cmu.Unlock()
	regs, err := m.store.List(ctx, owner)
	if err != nil {
		return nil, err
	}
	m.cmu.Lock()
	if m.cgen == gen { // no change since the read
		if len(m.cache) >= maxCached {
			clear(m.cache)
		}
		m.cache[owner] = regs
	}
	m.cmu.Unlock()
	return regs, nil
}

// invalidate drops owner's cached registrations after a change.
func (m *Module) invalidate(owner string) {
	m.cmu.Lock()
	delete(m.cache, owner)
	m.cgen++
	m.cmu.Unlock()
}

// live reports whether the device of reg has a session with a link: the
// one that enabled it, or one bound to the resource it registered from.
func (m *Module) live(reg storage.PushRegistration) bool {
	k := keyOf(reg)
	for _, s := range m.r.Resources(reg.Owner) {
		if h, ok := s.(hibernator); ok && h.Hibernating() {
			continue
		}
		if reg.Resource != "" && s.JID().Resourcepart() == reg.Resource {
			return true
		}
		if ss := m.sessState(s, false); ss != nil && ss.has(k) {
			return true
		}
	}
	return false
}

// outbound sees every stanza a local session sends: a session that was
// notified for while it hibernated and speaks again has resumed, so its
// devices' counts start over.
func (m *Module) outbound(c *router.Context) bool {
	if c.Origin == nil {
		return false
	}
	ss, _ := c.Origin.Value(sessKey{}).(*sessState)
	if ss != nil && ss.away.Load() && ss.away.CompareAndSwap(true, false) {
		m.back(c.Origin, ss)
	}
	return false
}

// bound runs when a session binds: a device that comes back under the
// resource it registered from starts its count over.
func (m *Module) bound(s router.Session) {
	m.back(s, nil)
}

func (m *Module) back(s router.Session, ss *sessState) {
	res := s.JID().Resourcepart()
	m.reset(s.JID().Bare().String(), func(k regKey, d *device) bool {
		return (d.reg.Resource != "" && d.reg.Resource == res) || (ss != nil && ss.has(k))
	})
}

// queue runs f on the account's lane: no router hook waits for storage
// or an app server, and an account's notifications keep their order.
func (m *Module) queue(owner string, f func()) {
	m.accounts.add(owner, f)
}

// stanzaError returns the type and defined condition of an error stanza.
func stanzaError(st *wire.Stanza) (typ, cond string) {
	var v struct {
		Error struct {
			Type  string `xml:"type,attr"`
			Conds []struct {
				XMLName xml.Name
			} `xml:",any"`
		} `xml:"error"`
	}
	if st.Decode(&v) != nil {
		return "", ""
	}
	for _, c := range v.Error.Conds {
		if c.XMLName.Space == wire.NSStanzas && c.XMLName.Local != "text" {
			return v.Error.Type, c.XMLName.Local
		}
	}
	return v.Error.Type, ""
}

// disables reports whether an app server's error ends a registration
// (XEP-0357 §7.1: an error disables it; transient ones are tolerated).
func disables(typ, cond string) bool {
	if typ == "wait" {
		return false
	}
	switch cond {
	case "remote-server-not-found", "remote-server-timeout", "internal-server-error",
		"resource-constraint", "undefined-condition", "recipient-unavailable":
		return false
	}
	return true
}
