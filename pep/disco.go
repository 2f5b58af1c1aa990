package pep

import (
	"errors"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

// Service discovery on an account's bare JID (XEP-0163 §3, XEP-0060 §5).
//
// The disco module answers for accounts with the account/registered
// identity and the features modules registered; it has no way to add an
// identity or to answer for nodes. PEP needs both (clients look for the
// pubsub/pep identity before they use PEP), so this module takes over the
// account's disco#info and disco#items (it registers after disco): the
// same account answer plus pubsub/pep, node information, the nodes the
// requester may see, and a node's items.

func (m *Module) discoInfo(c *router.Context) {
	q := queryNode(c)
	b := []byte("<query xmlns='" + nsDiscoInfo + "'")
	if q == "" {
		b = append(b, "><identity category='account' type='registered'/><identity category='pubsub' type='pep'/>"...)
		for _, f := range m.r.Features(router.ToBare) {
			b = wire.AppendAttr(append(b, "<feature"...), "var", f)
			b = append(b, "/>"...)
		}
		c.Reply(append(b, "</query>"...))
		return
	}
	owner := c.To.Bare().String()
	n, err := m.store.Node(c, owner, q)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		m.internal(c, "reading a node", err)
		return
	}
	if err != nil || !m.visible(c, owner, &n) {
		c.Error("cancel", "item-not-found", "")
		return
	}
	b = wire.AppendAttr(b, "node", q)
	b = append(b, "><identity category='pubsub' type='leaf'/><feature var='"+NSPubSub+"'/>"...)
	c.Reply(append(b, "</query>"...))
}

// visible reports whether the requester may see the node (without
// answering an error).
func (m *Module) visible(c *router.Context, owner string, n *storage.PubSubNode) bool {
	cfg := configFromMap(n.Config)
	k := &contact{m: m, owner: owner, bare: c.From.Bare().String()}
	return k.check(c, &cfg) == accessOK
}

func (m *Module) discoItems(c *router.Context) {
	q := queryNode(c)
	owner := c.To.Bare().String()
	b := []byte("<query xmlns='" + nsDiscoItems + "'")
	if q == "" {
		nodes, err := m.store.Nodes(c, owner)
		if err != nil {
			m.internal(c, "listing nodes", err)
			return
		}
		b = append(b, '>')
		k := &contact{m: m, owner: owner, bare: c.From.Bare().String()}
		for _, n := range nodes {
			cfg := configFromMap(n.Config)
			if k.check(c, &cfg) != accessOK {
				continue
			}
			b = wire.AppendAttr(append(b, "<item"...), "jid", owner)
			b = wire.AppendAttr(b, "node", n.Name)
			b = append(b, "/>"...)
		}
		c.Reply(append(b, "</query>"...))
		return
	}
	n, err := m.store.Node(c, owner, q)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		m.internal(c, "reading a node", err)
		return
	}
	if err != nil || !m.visible(c, owner, &n) {
		c.Error("cancel", "item-not-found", "")
		return
	}
	items, err := m.store.Items(c, owner, q, 0)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		m.internal(c, "reading items", err)
		return
	}
	b = wire.AppendAttr(b, "node", q)
	b = append(b, '>')
	for _, it := range items {
		b = wire.AppendAttr(append(b, "<item"...), "jid", owner)
		b = wire.AppendAttr(b, "name", it.ID)
		b = append(b, "/>"...)
	}
	c.Reply(append(b, "</query>"...))
}

// queryNode returns the 'node' of the iq's query.
func queryNode(c *router.Context) string {
	var v struct {
		Q struct {
			Node string `xml:"node,attr"`
		} `xml:"query"`
	}
	_ = c.Stanza.Decode(&v)
	return v.Q.Node
}
