package router

import (
	"context"
	"sync"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/wire"
)

// Addr says to what kind of address a stanza was sent.
type Addr uint8

const (
	ToServer Addr = 1 << iota // a local domain (no localpart)
	ToBare                    // a local account's bare JID (or no 'to' on an iq)
	ToFull                    // a full JID
)

// Context carries one stanza through routing and handlers.
type Context struct {
	context.Context
	Router *Router
	Stanza *wire.Stanza
	// From is the stamped sender: a full JID for a client session.
	From jid.JID
	// To is the prepared destination. An iq with no 'to' from a client is
	// addressed to the sender's bare JID (RFC 6120 §10.3.3).
	To jid.JID
	// Origin is the local session that sent the stanza (nil otherwise).
	Origin Session

	// holds are writes routing started that must be durable before the
	// stanza counts as handled (see Hold).
	holds []<-chan error
}

// Hold registers a write that routing this stanza started and that must be
// durable before the origin session counts the stanza as handled: a c2s
// session acknowledges it (XEP-0198 <a h='…'/>) only once done has yielded
// its result or been closed. A hook that queues an archive write calls it
// instead of waiting for the commit, so delivery does not wait for the
// disk but the sender's acknowledgement does. A non-nil error on done means
// the write failed; the stanza is still counted as handled (it was
// delivered), and the hook has logged the failure.
func (c *Context) Hold(done <-chan error) {
	if done != nil {
		c.holds = append(c.holds, done)
	}
}

// Holds returns what Hold registered while the stanza was routed.
func (c *Context) Holds() []<-chan error { return c.holds }

// Reply answers an iq get/set with a result carrying payload (may be empty).
func (c *Context) Reply(payload []byte) {
	st := c.Stanza
	b := make([]byte, 0, 64+len(payload)+len(st.ID))
	b = append(b, "<iq type='result' id='"...)
	b = wire.AppendEscapedAttr(b, st.ID)
	b = append(b, '\'')
	b = appendAddrs(b, c.To.String(), c.From.String())
	if len(payload) == 0 {
		b = append(b, "/>"...)
	} else {
		b = append(b, '>')
		b = append(b, payload...)
		b = append(b, "</iq>"...)
	}
	c.Router.sendTo(c, c.From, b)
}

// Error answers the stanza with a stanza error (RFC 6120 §8.3), unless the
// stanza is itself an error.
func (c *Context) Error(errType, cond, text string) {
	if c.Stanza.Type == "error" {
		return
	}
	st := *c.Stanza
	st.From = c.From.String()
	if st.To == "" {
		st.To = c.To.String()
	}
	c.Router.sendTo(c, c.From, wire.ErrorReply(&st, errType, cond, text))
}

func appendAddrs(b []byte, from, to string) []byte {
	if from != "" {
		b = append(b, " from='"...)
		b = wire.AppendEscapedAttr(b, from)
		b = append(b, '\'')
	}
	if to != "" {
		b = append(b, " to='"...)
		b = wire.AppendEscapedAttr(b, to)
		b = append(b, '\'')
	}
	return b
}

// sendTo delivers server-made bytes back toward j: straight to the origin
// session when that is where j lives, else through the registry. An answer
// to one of the server's own queries (Query) goes to the query instead.
func (r *Router) sendTo(c *Context, j jid.JID, raw []byte) {
	if c.Stanza.Kind == wire.KindIQ && r.waiting(c.Stanza.ID) {
		if st, err := wire.ParseElement(raw, wire.NSClient); err == nil && r.answer(st) {
			return
		}
	}
	if c.Origin != nil && c.Origin.JID().Equal(j) {
		c.Origin.Send(raw)
		return
	}
	r.DeliverRaw(j, raw)
}

// DeliverRaw hands server-made bytes to the local session(s) of j without
// running hooks: one full JID, or every available resource of a bare one.
func (r *Router) DeliverRaw(j jid.JID, raw []byte) {
	bare := j.Bare().String()
	if res := j.Resourcepart(); res != "" {
		if s := r.Resource(bare, res); s != nil {
			s.Send(raw)
		}
		return
	}
	for _, s := range r.Available(bare) {
		s.Send(raw)
	}
}

// Hook sees a stanza at one stage of routing; it returns true when it
// consumed the stanza (routing stops).
type Hook func(c *Context) bool

// IQHandler answers an iq get or set (with c.Reply or c.Error).
type IQHandler func(c *Context)

type iqKey struct {
	typ, ns string
	addr    Addr
}

type handlers struct {
	hmu       sync.RWMutex
	iq        map[iqKey]IQHandler
	outbound  [4][]Hook
	inbound   [4][]Hook
	offline   []Hook
	features  map[Addr]map[string]struct{}
	bound     []func(Session)
	unbound   []func(Session)
	available []func(Session)
	suspended []func(Session)
}

func newHandlers() handlers {
	return handlers{iq: make(map[iqKey]IQHandler), features: make(map[Addr]map[string]struct{})}
}

// HandleIQ registers h for iqs of type typ ("get" or "set") whose payload is
// in namespace ns, sent to any of the addresses in addr.
func (r *Router) HandleIQ(typ, ns string, addr Addr, h IQHandler) {
	r.hmu.Lock()
	defer r.hmu.Unlock()
	for _, a := range []Addr{ToServer, ToBare, ToFull} {
		if addr&a != 0 {
			r.iq[iqKey{typ, ns, a}] = h
		}
	}
}

// AddFeature lists disco#info features for the server (ToServer) or for
// accounts (ToBare).
func (r *Router) AddFeature(addr Addr, features ...string) {
	r.hmu.Lock()
	defer r.hmu.Unlock()
	for _, a := range []Addr{ToServer, ToBare} {
		if addr&a == 0 {
			continue
		}
		if r.features[a] == nil {
			r.features[a] = make(map[string]struct{})
		}
		for _, f := range features {
			r.features[a][f] = struct{}{}
		}
	}
}

// Features returns the sorted disco#info features for addr.
func (r *Router) Features(addr Addr) []string {
	r.hmu.RLock()
	defer r.hmu.RUnlock()
	return sortedKeys(r.features[addr])
}

// OnOutbound adds a hook for stanzas of kind sent by local sessions, run
// after stamping and before routing (presence broadcast, subscriptions).
func (r *Router) OnOutbound(kind wire.Kind, h Hook) {
	r.hmu.Lock()
	r.outbound[kind] = append(r.outbound[kind], h)
	r.hmu.Unlock()
}

// OnInbound adds a hook for stanzas of kind addressed to a local account
// (bare or full JID), run before delivery.
func (r *Router) OnInbound(kind wire.Kind, h Hook) {
	r.hmu.Lock()
	r.inbound[kind] = append(r.inbound[kind], h)
	r.hmu.Unlock()
}

// OnOffline adds a hook for chat and normal messages to an existing local
// account with no available resource that takes them.
func (r *Router) OnOffline(h Hook) {
	r.hmu.Lock()
	r.offline = append(r.offline, h)
	r.hmu.Unlock()
}

// OnBound, OnUnbound and OnAvailable add session lifecycle callbacks.
func (r *Router) OnBound(f func(Session)) { r.hmu.Lock(); r.bound = append(r.bound, f); r.hmu.Unlock() }
func (r *Router) OnUnbound(f func(Session)) {
	r.hmu.Lock()
	r.unbound = append(r.unbound, f)
	r.hmu.Unlock()
}
func (r *Router) OnAvailable(f func(Session)) {
	r.hmu.Lock()
	r.available = append(r.available, f)
	r.hmu.Unlock()
}

// OnSuspended adds a callback for a session that lost its link but stays
// bound, waiting for a resumption (XEP-0198 hibernation).
func (r *Router) OnSuspended(f func(Session)) {
	r.hmu.Lock()
	r.suspended = append(r.suspended, f)
	r.hmu.Unlock()
}

// SessionSuspended runs the OnSuspended callbacks.
func (r *Router) SessionSuspended(s Session) { r.run(&r.suspended, s) }

// SessionBound, SessionUnbound and SessionAvailable are called by session
// code to run the lifecycle callbacks.
func (r *Router) SessionBound(s Session)     { r.run(&r.bound, s) }
func (r *Router) SessionUnbound(s Session)   { r.run(&r.unbound, s) }
func (r *Router) SessionAvailable(s Session) { r.run(&r.available, s) }

// run calls the callbacks in *list, read under the hook lock (a module may
// register one while sessions come and go).
func (r *Router) run(list *[]func(Session), s Session) {
	r.hmu.RLock()
	fs := (*list)[:len(*list):len(*list)]
	r.hmu.RUnlock()
	for _, f := range fs {
		f(s)
	}
}

// hooks returns *list, read under the hook lock.
func (r *Router) hooks(list *[]Hook) []Hook {
	r.hmu.RLock()
	defer r.hmu.RUnlock()
	return (*list)[:len(*list):len(*list)]
}

func runHooks(hs []Hook, c *Context) bool {
	for _, h := range hs {
		if h(c) {
			return true
		}
	}
	return false
}

// Route delivers a stamped stanza by RFC 6121 §8.
func (r *Router) Route(c *Context) {
	st := c.Stanza
	if c.Origin != nil && runHooks(r.hooks(&r.outbound[st.Kind]), c) {
		return
	}
	to := c.To
	if to.Domainpart() == "" { // no 'to'
		switch st.Kind {
		case wire.KindPresence:
			return // broadcast is the presence module's outbound hook
		default:
			to = c.From.Bare()
			c.To = to
		}
	}
	if svc := r.service(to.Domainpart()); svc != nil {
		if st.Kind == wire.KindIQ && (st.Type == "result" || st.Type == "error") && r.answer(st) {
			return
		}
		svc(c)
		return
	}
	if !r.isLocal(to.Domainpart()) {
		r.routeRemote(c)
		return
	}
	if to.Localpart() == "" {
		r.routeServer(c)
		return
	}
	if runHooks(r.hooks(&r.inbound[st.Kind]), c) {
		return
	}
	if to.Resourcepart() == "" {
		r.routeBare(c)
	} else {
		r.routeFull(c)
	}
}

func (r *Router) routeRemote(c *Context) {
	// Federation (s2s/) plugs in here.
	if c.Stanza.Kind != wire.KindPresence {
		c.Error("cancel", "remote-server-not-found", "")
	}
}

func (r *Router) routeServer(c *Context) {
	st := c.Stanza
	if st.Kind != wire.KindIQ {
		return // messages and presence to the server itself are not served
	}
	if c.To.Resourcepart() != "" {
		c.Error("cancel", "service-unavailable", "")
		return
	}
	r.handleIQ(c, ToServer)
}

func (r *Router) handleIQ(c *Context, addr Addr) {
	st := c.Stanza
	switch st.Type {
	case "get", "set":
	case "result", "error":
		r.answer(st) // answers to the server go to whoever asked (Query)
		return
	default:
		c.Error("modify", "bad-request", "")
		return
	}
	if st.PayloadNS == "" {
		c.Error("modify", "bad-request", "iq get/set needs exactly one payload")
		return
	}
	other := "set"
	if st.Type == "set" {
		other = "get"
	}
	r.hmu.RLock()
	h := r.iq[iqKey{st.Type, st.PayloadNS, addr}]
	known := r.iq[iqKey{other, st.PayloadNS, addr}] != nil
	r.hmu.RUnlock()
	if h == nil {
		if known {
			// The namespace is served, this type of request is not.
			c.Error("cancel", "feature-not-implemented", "")
			return
		}
		c.Error("cancel", "service-unavailable", "")
		return
	}
	h(c)
}

func (r *Router) routeBare(c *Context) {
	st := c.Stanza
	bare := c.To.String()
	if !r.accountKnown(c, bare) {
		return
	}
	switch st.Kind {
	case wire.KindIQ:
		r.handleIQ(c, ToBare)
	case wire.KindPresence:
		if st.Type == "" || st.Type == "unavailable" {
			for _, s := range r.Available(bare) {
				s.Send(st.Raw)
			}
		}
	case wire.KindMessage:
		r.deliverMessage(c, bare)
	}
}

// accountKnown checks that the stanza's local recipient exists. When it
// does not, the sender gets service-unavailable (RFC 6121 §8.5.2.2.1, §8.5.4
// — no different from a user who blocks, so accounts cannot be probed);
// when storage could not tell, it gets internal-server-error of type wait
// (RFC 6120 §8.3.3.5, §8.3.2: retry later), never "no such user". Presence
// gets no error either way.
func (r *Router) accountKnown(c *Context, bare string) bool {
	ok, err := r.CheckAccount(c, bare)
	if err != nil {
		r.log.Error("checking an account failed", "jid", bare, "err", err)
		if c.Stanza.Kind != wire.KindPresence {
			c.Error("wait", "internal-server-error", "")
		}
		return false
	}
	if !ok && c.Stanza.Kind != wire.KindPresence {
		c.Error("cancel", "service-unavailable", "")
	}
	return ok
}

// deliverMessage applies RFC 6121 §8.5.2.1 to a message for an existing account.
func (r *Router) deliverMessage(c *Context, bare string) {
	st := c.Stanza
	switch st.Type {
	case "error":
		return
	case "groupchat":
		c.Error("cancel", "service-unavailable", "")
		return
	}
	var best []Session
	for _, s := range r.Available(bare) {
		if s.Priority() >= 0 {
			best = append(best, s)
		}
	}
	delivered := false
	for _, s := range best {
		if s.Send(st.Raw) {
			delivered = true
		}
	}
	if delivered || st.Type == "headline" {
		return
	}
	if runHooks(r.hooks(&r.offline), c) {
		return
	}
	c.Error("cancel", "service-unavailable", "")
}

func (r *Router) routeFull(c *Context) {
	st := c.Stanza
	bare, res := c.To.Bare().String(), c.To.Resourcepart()
	if s := r.Resource(bare, res); s != nil {
		if !s.Send(st.Raw) {
			switch st.Kind {
			case wire.KindIQ:
				c.Error("wait", "resource-constraint", "")
			case wire.KindMessage:
				// The session is going (its buffer is full, its link
				// died): the message goes where its queue goes.
				r.Requeue(c.Context, st)
			}
		}
		return
	}
	switch st.Kind {
	case wire.KindIQ:
		c.Error("cancel", "service-unavailable", "")
	case wire.KindMessage:
		switch st.Type {
		case "", "normal", "chat":
			c.To = c.To.Bare()
			if !r.accountKnown(c, bare) {
				return
			}
			r.deliverMessage(c, bare)
		case "groupchat":
			c.Error("cancel", "service-unavailable", "")
		}
	}
}

// NewContext is a convenience for code that routes server-made stanzas.
func (r *Router) NewContext(ctx context.Context, st *wire.Stanza, from, to jid.JID, origin Session) *Context {
	return &Context{Context: ctx, Router: r, Stanza: st, From: from, To: to, Origin: origin}
}

// Confirmer is implemented by sessions that can tell when a stanza reached
// their client (c2s sessions). Offline storage uses it to delete a stored
// message only once the client has it.
type Confirmer interface {
	// SendConfirmed queues raw like Send and calls confirm once the client
	// has it: acknowledged (XEP-0198) when stream management is on,
	// otherwise written to the link. If that never happens, confirm is not
	// called and the session does not hand raw to offline storage when it
	// ends: the caller still holds it.
	SendConfirmed(raw []byte, confirm func()) bool
}

// Requeue gives a message that a session could not write to the offline
// hooks (a dying connection, a full queue at shutdown).
func (r *Router) Requeue(ctx context.Context, st *wire.Stanza) {
	if st.Kind != wire.KindMessage || !(st.Type == "" || st.Type == "normal" || st.Type == "chat") {
		return
	}
	// Copies made for this session (carbons, archive query results) are
	// not messages to store: the original lives elsewhere.
	if st.HasChild("urn:xmpp:carbons:2", "sent") || st.HasChild("urn:xmpp:carbons:2", "received") ||
		st.HasChild("urn:xmpp:mam:2", "result") {
		return
	}
	from, err1 := jid.Parse(st.From)
	to, err2 := jid.Parse(st.To)
	if err1 != nil || err2 != nil || to.Localpart() == "" {
		return
	}
	c := &Context{Context: ctx, Router: r, Stanza: st, From: from, To: to.Bare()}
	if !runHooks(r.hooks(&r.offline), c) {
		r.log.Warn("message lost: no offline storage took it", "to", st.To)
	}
}
