package roster

import (
	"context"
	"errors"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

// The subscription state of RFC 6121 Appendix A maps onto a stored item as
// Subscription (none, to, from, both) plus Ask ("Pending Out"), PendingIn
// ("Pending In") and Approved (pre-approved, §3.4). A missing item is
// "None". Hidden is not part of the state: it says whether the user can see
// the item (see tied in roster.go).

// outboundTransition applies Appendix A.2 to a subscription stanza of type
// typ that the user sends to the contact of it. It returns the new state
// and whether the stanza is routed to the contact.
func outboundTransition(typ string, it storage.RosterItem) (storage.RosterItem, bool) {
	to, from := hasTo(it), hasFrom(it)
	switch typ {
	case "subscribe": // A.2.1: always routed
		if !to {
			it.Ask = true
		}
		return it, true
	case "unsubscribe": // A.2.2: always routed
		it.Ask = false
		setSub(&it, false, from)
		return it, true
	case "subscribed": // A.2.3
		switch {
		case from:
			return it, false
		case it.PendingIn: // approval: the contact becomes visible if it was hidden
			setSub(&it, to, true)
			it.PendingIn, it.PendingInXML, it.Approved, it.Hidden = false, nil, false, false
			return it, true
		default: // §3.4: pre-approval, not routed
			it.Approved = true
			return it, false
		}
	case "unsubscribed": // A.2.4
		if from || it.PendingIn {
			setSub(&it, to, false)
			it.PendingIn, it.PendingInXML, it.Approved = false, nil, false
			return it, true
		}
		it.Approved = false // cancels a pre-approval (§3.4)
		return it, false
	}
	return it, false
}

// inboundTransition applies Appendix A.3 to a subscription stanza of type
// typ that the contact of it sends to the user. It returns the new state,
// whether the stanza is delivered to the user, and whether the server
// answers subscribed on the user's behalf (already subscribed, or
// pre-approved).
func inboundTransition(typ string, it storage.RosterItem) (next storage.RosterItem, deliver, autoReply bool) {
	to, from := hasTo(it), hasFrom(it)
	switch typ {
	case "subscribe": // A.3.1
		switch {
		case from:
			return it, false, true
		case it.Approved:
			setSub(&it, to, true)
			it.Approved, it.PendingIn, it.PendingInXML = false, false, nil
			return it, false, true
		case it.PendingIn:
			return it, false, false
		default:
			it.PendingIn = true
			return it, true, false
		}
	case "unsubscribe": // A.3.2
		if from || it.PendingIn {
			setSub(&it, to, false)
			it.PendingIn, it.PendingInXML = false, nil
			return it, true, false
		}
	case "subscribed": // A.3.3
		if it.Ask && !to {
			setSub(&it, true, from)
			it.Ask = false
			return it, true, false
		}
	case "unsubscribed": // A.3.4
		if it.Ask || to {
			setSub(&it, false, from)
			it.Ask = false
			return it, true, false
		}
	}
	return it, false, false
}

// outboundSubscription processes a subscription stanza sent by a local
// session (RFC 6121 §3.1.2, §3.1.5, §3.2.2, §3.3.2): it updates the user's
// roster, pushes the change, and routes the stanza from the user's bare JID
// to the contact's bare JID when Appendix A.2 says so.
func (m *Module) outboundSubscription(c *router.Context) {
	st := c.Stanza
	user, contact := c.From.Bare(), c.To.Bare()
	if contact.Equal(user) {
		return // a subscription to oneself is implicit
	}
	userS, contactS := user.String(), contact.String()
	var route bool
	unlock := m.lock(userS)
	res, err := m.change(c, userS, contactS, func(cur storage.RosterItem, existed bool, count storage.RosterCounts) (storage.RosterItem, storage.RosterOp, error) {
		var next storage.RosterItem
		next, route = outboundTransition(st.Type, cur)
		if (!existed || cur.Hidden) && tied(next) && m.opts.MaxItems > 0 { // the item becomes visible
			if _, visible, err := count(); err == nil && visible >= m.opts.MaxItems {
				return cur, storage.RosterKeep, errRosterFull
			}
		}
		next, op := plan(cur, next, existed)
		return next, op, nil
	})
	unlock()
	switch {
	case errors.Is(err, errRosterFull):
		c.Error("cancel", "not-allowed", "The roster is full")
		return
	case err != nil:
		m.log.Error("storing roster item failed", "owner", userS, "contact", contactS, "err", err)
		c.Error("wait", "internal-server-error", "")
		return
	}
	cur := res.Before
	if !route {
		return
	}
	m.route(c, restamp(st, userS, contactS), user, contact)
	switch {
	case st.Type == "subscribed":
		// §3.1.5: the contact learns the user's current presence.
		m.sendAvailable(c, user, contact)
	case st.Type == "unsubscribed" && hasFrom(cur):
		// §3.2.2: and learns that it is gone.
		m.sendUnavailable(c, user, contact)
	}
}

// inboundSubscription processes a subscription stanza addressed to a local
// account (RFC 6121 §3.1.3, §3.1.6, §3.2.3, §3.3.3).
func (m *Module) inboundSubscription(c *router.Context) {
	st := c.Stanza
	user, contact := c.To.Bare(), c.From.Bare()
	if contact.Equal(user) || contact.Domainpart() == "" {
		return
	}
	userS, contactS := user.String(), contact.String()
	exists, err := m.r.CheckAccount(c, userS)
	if err != nil {
		// Storage could not answer: refusing the request (unsubscribed)
		// would end a subscription that stands. The sender may retry.
		m.log.Error("checking the account failed; subscription stanza not processed", "owner", userS, "type", st.Type, "err", err)
		if st.Type == "subscribe" {
			c.Error("wait", "internal-server-error", "")
		}
		return
	}
	if !exists {
		if st.Type == "subscribe" {
			m.route(c, presence("unsubscribed", userS, contactS), user, contact)
		}
		return
	}
	in := st
	if st.From != contactS || st.To != userS {
		in = restamp(st, contactS, userS)
	}

	var deliver, autoReply bool
	unlock := m.lock(userS)
	res, err := m.change(c, userS, contactS, func(cur storage.RosterItem, existed bool, count storage.RosterCounts) (storage.RosterItem, storage.RosterOp, error) {
		var next storage.RosterItem
		next, deliver, autoReply = inboundTransition(st.Type, cur)
		if next.PendingIn && !cur.PendingIn {
			if len(in.Raw) <= maxPendingXML {
				next.PendingInXML = in.Raw
			} // else redelivered as a plain <presence type='subscribe'/>
			if !existed {
				// Kept only to remember the request: not in the user's roster
				// until she answers or adds the contact herself.
				next.Hidden = true
				if m.opts.MaxItems > 0 {
					// Strangers' requests are kept only while there is room.
					if all, _, err := count(); err != nil || all >= m.opts.MaxItems {
						return cur, storage.RosterKeep, nil
					}
				}
			}
		}
		next, op := plan(cur, next, existed)
		return next, op, nil
	})
	unlock()
	if err != nil {
		// Nothing is delivered that is not stored: the sender may retry.
		m.log.Error("storing roster item failed", "owner", userS, "contact", contactS, "err", err)
		if st.Type == "subscribe" {
			c.Error("wait", "internal-server-error", "")
		}
		return
	}
	cur := res.Before

	if deliver {
		m.deliver(user, in.Raw, st.Type == "subscribe")
	}
	if autoReply {
		m.route(c, presence("subscribed", userS, contactS), user, contact)
		m.sendAvailable(c, user, contact)
	}
	if st.Type == "unsubscribe" && hasFrom(cur) {
		// §3.3.3: the contact no longer sees the user's presence.
		m.sendUnavailable(c, user, contact)
	}
}

// deliver hands a subscription stanza to the user's available resources: a
// request (subscribe, RFC 6121 §3.1.3) to every one of them, so that a
// client that never asks for the roster (a browser client showing a friend
// request) sees it; approvals and cancellations (§3.2.3, §3.3.3), which come
// with a roster push, to those that requested the roster. A request that
// finds no available resource stays pending (stored with the item) and goes
// out with the next initial presence.
func (m *Module) deliver(user jid.JID, raw []byte, all bool) {
	for _, s := range m.r.Available(user.String()) {
		if all || s.Interested() {
			s.Send(raw)
		}
	}
}

// sendAvailable sends the current presence of each of user's available
// resources to contact.
func (m *Module) sendAvailable(ctx context.Context, user, contact jid.JID) {
	cs := contact.String()
	for _, s := range m.r.Available(user.String()) {
		if p := s.Presence(); p != nil {
			m.route(ctx, restamp(p, s.JID().String(), cs), s.JID(), contact)
		}
	}
}

// sendUnavailable sends unavailable presence from each of user's available
// resources to contact.
func (m *Module) sendUnavailable(ctx context.Context, user, contact jid.JID) {
	cs := contact.String()
	for _, s := range m.r.Available(user.String()) {
		m.route(ctx, presence("unavailable", s.JID().String(), cs), s.JID(), contact)
	}
}

// route sends a stanza made or restamped here through the router. Origin
// stays nil: the outbound hooks have already run.
func (m *Module) route(ctx context.Context, st *wire.Stanza, from, to jid.JID) {
	m.r.Route(&router.Context{Context: ctx, Router: m.r, Stanza: st, From: from, To: to})
}

// maxPendingXML bounds the stored copy of a subscription request. Every
// pending request is delivered again at each initial presence, all at
// once: stored whole, a handful of strangers' requests near
// max-stanza-size would pass the session buffer and end every login of
// their recipient (resource-constraint). A larger request is kept as a
// plain <presence type='subscribe'/>; its status or nick reached the
// resources available when it came. 1 KiB holds a nick (XEP-0172) and a
// status line, and max-roster-items (1000) of them a quarter of the
// default session-buffer.
const maxPendingXML = 1024
