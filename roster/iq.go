package roster

import (
	"slices"
	"strconv"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// rosterIQ is the part of a roster get or set the module reads.
type rosterIQ struct {
	Query struct {
		Ver   *string   `xml:"ver,attr"`
		Items []xmlItem `xml:"item"`
	} `xml:"jabber:iq:roster query"`
}

type xmlItem struct {
	JID          string   `xml:"jid,attr"`
	Name         string   `xml:"name,attr"`
	Subscription string   `xml:"subscription,attr"`
	Groups       []string `xml:"group"`
}

// own reports whether the iq comes from the account whose roster it
// addresses; only the account itself may read or change its roster
// (RFC 6121 §2.1.5 and §2.3.3: forbidden).
func own(c *router.Context) bool {
	if c.From.Bare().Equal(c.To.Bare()) {
		return true
	}
	c.Error("auth", "forbidden", "Only the account itself may access its roster")
	return false
}

// handleGet answers a roster get (RFC 6121 §2.2) and, with XEP-0237, an
// empty result when the client's cached version is current. A stale
// version gets the whole roster with the current version (not a series of
// pushes).
func (m *Module) handleGet(c *router.Context) {
	if !own(c) {
		return
	}
	var q rosterIQ
	if err := c.Stanza.Decode(&q); err != nil {
		c.Error("modify", "bad-request", "")
		return
	}
	if c.Origin != nil {
		c.Origin.SetInterested()
	}
	owner := c.To.Bare().String()
	items, ver, err := m.store.Items(c, owner)
	if err != nil {
		m.log.Error("reading roster failed", "owner", owner, "err", err)
		c.Error("wait", "internal-server-error", "")
		return
	}
	if m.opts.Versioning && q.Query.Ver != nil && *q.Query.Ver == strconv.FormatUint(ver, 10) {
		c.Reply(nil)
		return
	}
	b := m.appendQuery(make([]byte, 0, 64+64*len(items)), ver)
	b = append(b, '>')
	for _, it := range items {
		if !it.Hidden {
			b = appendItem(b, it, false)
		}
	}
	b = append(b, "</query>"...)
	c.Reply(b)
}

// handleSet adds, updates (RFC 6121 §2.3, §2.4) or removes (§2.5) one item.
func (m *Module) handleSet(c *router.Context) {
	if !own(c) {
		return
	}
	var q rosterIQ
	if err := c.Stanza.Decode(&q); err != nil {
		c.Error("modify", "bad-request", "")
		return
	}
	if len(q.Query.Items) != 1 {
		c.Error("modify", "bad-request", "A roster set carries exactly one item")
		return
	}
	x := q.Query.Items[0]
	if x.JID == "" {
		c.Error("modify", "bad-request", "The item has no JID")
		return
	}
	contact, err := jid.Parse(x.JID)
	if err != nil {
		c.Error("modify", "jid-malformed", "")
		return
	}
	if contact.Resourcepart() != "" {
		c.Error("modify", "jid-malformed", "Roster items are bare JIDs")
		return
	}
	owner := c.To.Bare()
	if contact.Equal(owner) {
		c.Error("cancel", "not-allowed", "Your own JID cannot be a roster item")
		return
	}
	// RFC 6121 §2.1.2.5: values of 'subscription' other than "remove" are
	// ignored in a roster set, and so is 'ask'.
	if x.Subscription == "remove" {
		m.remove(c, owner, contact)
		return
	}
	if len(x.Name) > MaxNameBytes {
		c.Error("modify", "not-acceptable", "The name is too long")
		return
	}
	if len(x.Groups) > MaxGroups {
		c.Error("modify", "not-acceptable", "Too many groups")
		return
	}
	groups := slices.Clone(x.Groups)
	slices.Sort(groups)
	for i, g := range groups {
		switch {
		case g == "":
			c.Error("modify", "not-acceptable", "A group name is empty")
			return
		case len(g) > MaxGroupBytes:
			c.Error("modify", "not-acceptable", "A group name is too long")
			return
		case i > 0 && groups[i-1] == g:
			c.Error("modify", "bad-request", "Duplicate group")
			return
		}
	}

	ownerS, contactS := owner.String(), contact.String()
	unlock := m.lock(ownerS)
	cur, existed, err := m.item(c, ownerS, contactS)
	if err != nil {
		unlock()
		m.log.Error("reading roster item failed", "owner", ownerS, "err", err)
		c.Error("wait", "internal-server-error", "")
		return
	}
	if !existed || cur.Hidden {
		if full, err := m.full(c, ownerS); err != nil {
			unlock()
			m.log.Error("reading roster failed", "owner", ownerS, "err", err)
			c.Error("wait", "internal-server-error", "")
			return
		} else if full {
			unlock()
			c.Error("cancel", "not-allowed", "The roster is full ("+strconv.Itoa(m.opts.MaxItems)+" items)")
			return
		}
	}
	it := cur
	it.Name = x.Name
	it.Groups = groups
	it.Hidden = false // the user added it herself
	ver, err := m.store.Put(c, ownerS, it)
	if err != nil {
		unlock()
		m.log.Error("storing roster item failed", "owner", ownerS, "contact", contactS, "err", err)
		c.Error("wait", "internal-server-error", "")
		return
	}
	m.push(ownerS, it, ver, false)
	unlock()
	c.Reply(nil)
}

// full reports whether owner's roster holds MaxItems visible items.
func (m *Module) full(c *router.Context, owner string) (bool, error) {
	if m.opts.MaxItems <= 0 {
		return false, nil
	}
	items, _, err := m.store.Items(c, owner)
	if err != nil {
		return false, err
	}
	n := 0
	for _, it := range items {
		if !it.Hidden {
			n++
		}
	}
	return n >= m.opts.MaxItems, nil
}

// remove deletes an item (RFC 6121 §2.5): it cancels both directions of the
// subscription with unsubscribe and unsubscribed, pushes the removal, and
// answers the client.
func (m *Module) remove(c *router.Context, owner, contact jid.JID) {
	ownerS, contactS := owner.String(), contact.String()
	unlock := m.lock(ownerS)
	cur, existed, err := m.item(c, ownerS, contactS)
	if err != nil {
		unlock()
		m.log.Error("reading roster item failed", "owner", ownerS, "err", err)
		c.Error("wait", "internal-server-error", "")
		return
	}
	if !existed {
		unlock()
		c.Error("cancel", "item-not-found", "")
		return
	}
	ver, err := m.store.Remove(c, ownerS, contactS)
	if err != nil {
		unlock()
		m.log.Error("removing roster item failed", "owner", ownerS, "contact", contactS, "err", err)
		c.Error("wait", "internal-server-error", "")
		return
	}
	if !cur.Hidden {
		m.push(ownerS, storage.RosterItem{JID: contactS}, ver, true)
	}
	unlock()

	if hasTo(cur) || cur.Ask {
		m.route(c, presence("unsubscribe", ownerS, contactS), owner, contact)
	}
	if hasFrom(cur) || cur.PendingIn {
		m.route(c, presence("unsubscribed", ownerS, contactS), owner, contact)
	}
	if hasFrom(cur) {
		m.sendUnavailable(c, owner, contact)
	}
	c.Reply(nil)
}
