package roster

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"strings"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/wire"
)

// maxDirected bounds how many recipients of directed presence are
// remembered per session (for the unavailable presence at logout).
const maxDirected = 1024

// outbound is the hook for presence sent by a local session.
func (m *Module) outbound(c *router.Context) bool {
	st := c.Stanza
	noTo := c.To.Domainpart() == ""
	switch st.Type {
	case "subscribe", "subscribed", "unsubscribe", "unsubscribed":
		if !noTo {
			m.outboundSubscription(c)
		}
		return true
	case "", "unavailable":
		if noTo {
			m.broadcast(c)
			return true
		}
		m.directedPresence(c)
		return false // the router delivers it
	case "probe":
		return noTo // a probe the client addressed is answered by the contact's server
	case "error":
		return false
	}
	c.Error("modify", "bad-request", "Unknown presence type")
	return true
}

// inbound is the hook for presence addressed to a local account.
func (m *Module) inbound(c *router.Context) bool {
	switch c.Stanza.Type {
	case "subscribe", "subscribed", "unsubscribe", "unsubscribed":
		m.inboundSubscription(c)
		return true
	case "probe":
		m.probe(c)
		return true
	}
	return false // available, unavailable, error: the router's §8 rules
}

// broadcast handles presence with no 'to' (RFC 6121 §4.2, §4.4, §4.5):
// initial and subsequent available presence and unavailable presence.
func (m *Module) broadcast(c *router.Context) {
	s, st := c.Origin, c.Stanza
	full, user := c.From, c.From.Bare()
	fullS, userS := full.String(), user.String()
	avail := st.Type == ""
	was := s.Presence() != nil

	items, _, err := m.store.Items(c, userS)
	if err != nil {
		m.log.Error("reading roster failed", "owner", userS, "err", err)
	}
	if avail {
		p := *st
		p.Raw = slices.Clone(st.Raw)
		s.SetPresence(&p, priority(st))
	} else {
		s.SetPresence(nil, 0)
	}

	covered := make(map[string]bool)
	if avail || was {
		for _, it := range items {
			if !hasFrom(it) {
				continue
			}
			to, err := jid.Parse(it.JID)
			if err != nil {
				continue
			}
			covered[it.JID] = true
			m.route(c, restamp(st, fullS, it.JID), full, to)
		}
		// The user's own resources, including the one that sent it when
		// available (§4.2.2, §4.4.2).
		for _, o := range m.r.Available(userS) {
			o.Send(restamp(st, fullS, o.JID().String()).Raw)
		}
	}
	if !avail {
		// §4.5.2: and everyone that got directed presence.
		m.unavailableToDirected(c, s, st, covered)
		return
	}
	if was {
		return
	}
	// Initial presence (§4.2): probe the contacts the user is subscribed to,
	// show the user's other resources, hand over pending requests, then let
	// offline delivery run.
	for _, it := range items {
		if !hasTo(it) {
			continue
		}
		to, err := jid.Parse(it.JID)
		if err != nil {
			continue
		}
		m.route(c, presence("probe", fullS, it.JID), full, to)
	}
	for _, o := range m.r.Available(userS) {
		if o == s {
			continue
		}
		if p := o.Presence(); p != nil {
			s.Send(restamp(p, o.JID().String(), fullS).Raw)
		}
	}
	for _, it := range items {
		if !it.PendingIn {
			continue
		}
		raw := it.PendingInXML
		if len(raw) == 0 {
			raw = presence("subscribe", it.JID, userS).Raw
		}
		s.Send(raw)
	}
	m.r.SessionAvailable(s)
}

// priority reads <priority/> (RFC 6121 §4.7.2.3), clamped to −128..127;
// absent or invalid is 0.
func priority(st *wire.Stanza) int {
	if !bytes.Contains(st.Raw, []byte("priority")) {
		return 0
	}
	var p struct {
		Priority string `xml:"priority"`
	}
	if err := st.Decode(&p); err != nil {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(p.Priority))
	if err != nil {
		return 0
	}
	return min(max(n, -128), 127)
}

// directedPresence remembers (available) or forgets (unavailable) the
// recipient of directed presence (RFC 6121 §4.6), so that it gets
// unavailable presence when the session goes away.
func (m *Module) directedPresence(c *router.Context) {
	to := c.To
	if to.Bare().Equal(c.From.Bare()) {
		return
	}
	key := to.String()
	m.dmu.Lock()
	defer m.dmu.Unlock()
	set := m.directed[c.Origin]
	if c.Stanza.Type == "unavailable" {
		delete(set, key)
		return
	}
	if set == nil {
		set = make(map[string]jid.JID)
		m.directed[c.Origin] = set
	}
	if len(set) < maxDirected {
		set[key] = to
	}
}

// unavailableToDirected sends unavailable (a restamped copy of st) to the
// recipients of s's directed presence and forgets them, except those in
// covered (by full JID, or by bare JID when the broadcast just made reached
// that contact's bare JID).
func (m *Module) unavailableToDirected(ctx context.Context, s router.Session, st *wire.Stanza, covered map[string]bool) {
	m.dmu.Lock()
	set := m.directed[s]
	delete(m.directed, s)
	m.dmu.Unlock()
	full := s.JID()
	fs := full.String()
	for key, to := range set {
		if covered[key] || covered[to.Bare().String()] {
			continue
		}
		m.route(ctx, restamp(st, fs, key), full, to)
	}
}

// unbound sends unavailable presence for a session that ended without
// sending it (RFC 6121 §4.5.3), to its contacts, the account's other
// resources and the recipients of its directed presence.
func (m *Module) unbound(s router.Session) {
	ctx := context.Background()
	full := s.JID()
	user := full.Bare()
	fullS, userS := full.String(), user.String()
	unavailable := presence("unavailable", fullS, "")

	// A new session bound to the same full JID replaced this one: what it
	// already announced must not be taken back.
	var successor map[string]jid.JID
	cur := m.r.Resource(userS, full.Resourcepart())
	replaced := cur != nil && cur != s && cur.Presence() != nil
	if cur != nil && cur != s {
		m.dmu.Lock()
		successor = m.directed[cur]
		m.dmu.Unlock()
	}

	covered := make(map[string]bool)
	if s.Presence() != nil {
		s.SetPresence(nil, 0)
		if !replaced {
			items, _, err := m.store.Items(ctx, userS)
			if err != nil {
				m.log.Error("reading roster failed", "owner", userS, "err", err)
			}
			for _, it := range items {
				if !hasFrom(it) {
					continue
				}
				to, err := jid.Parse(it.JID)
				if err != nil {
					continue
				}
				covered[it.JID] = true
				m.route(ctx, restamp(unavailable, fullS, it.JID), full, to)
			}
			for _, o := range m.r.Available(userS) {
				if o != s {
					o.Send(restamp(unavailable, fullS, o.JID().String()).Raw)
				}
			}
		}
	}
	for key := range successor {
		covered[key] = true
	}
	m.unavailableToDirected(ctx, s, unavailable, covered)
}

// probe answers a presence probe addressed to a local account (RFC 6121
// §4.3.2): with the presence of each available resource when the prober
// is subscribed (from or both), with unsubscribed when it is not (so its
// server corrects its roster), with nothing when it has a request pending.
// A contact with no available resource answers nothing.
func (m *Module) probe(c *router.Context) {
	user, prober := c.To.Bare(), c.From
	if prober.Domainpart() == "" {
		return
	}
	userS, proberBare := user.String(), prober.Bare().String()
	if !prober.Bare().Equal(user) {
		exists, err := m.r.CheckAccount(c, userS)
		if err != nil {
			// Not "no such user": an unsubscribed answer would make the
			// prober's server drop a subscription that still stands.
			m.log.Error("checking the account failed; probe not answered", "owner", userS, "err", err)
			return
		}
		if !exists {
			m.route(c, presence("unsubscribed", userS, proberBare), user, prober.Bare())
			return
		}
		it, _, err := m.item(c, userS, proberBare)
		if err != nil {
			m.log.Error("reading roster item failed", "owner", userS, "err", err)
			return
		}
		if !hasFrom(it) {
			if !it.PendingIn {
				m.route(c, presence("unsubscribed", userS, proberBare), user, prober.Bare())
			}
			return
		}
	}
	res := c.To.Resourcepart()
	ps := prober.String()
	for _, s := range m.r.Available(userS) {
		if res != "" && s.JID().Resourcepart() != res {
			continue
		}
		if p := s.Presence(); p != nil {
			m.route(c, restamp(p, s.JID().String(), ps), s.JID(), prober)
		}
	}
}

// presence builds <presence type='typ' from='from' to='to'/> ('to' left
// out when empty).
func presence(typ, from, to string) *wire.Stanza {
	b := make([]byte, 0, 40+len(typ)+len(from)+len(to))
	b = append(b, "<presence"...)
	if typ != "" {
		b = append(b, " type='"...)
		b = wire.AppendEscapedAttr(b, typ)
		b = append(b, '\'')
	}
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
	b = append(b, "/>"...)
	return &wire.Stanza{Kind: wire.KindPresence, Name: "presence", NS: wire.NSClient, Type: typ, From: from, To: to, Raw: b}
}

// restamp returns a copy of st with new addresses; st is left untouched.
func restamp(st *wire.Stanza, from, to string) *wire.Stanza {
	cp := *st
	cp.SetAddrs(from, to) // makes a new Raw
	return &cp
}
