package pep

import (
	"context"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

// Event notifications (XEP-0163 §4.3): headline messages from the owner's
// bare JID to the full JID of every available resource that wants the
// node (NODE+notify in its caps) and is allowed to see it — the owner's own
// resources and those of contacts with a presence subscription to the
// owner. They are routed (router.Route), so the inbound hooks apply:
// blocking keeps them from JIDs the owner blocked (XEP-0163 §4.3.2).
//
// Only local contacts are reached so far: their sessions' presence, and so
// their caps, are known here. Remote contacts need federation and the caps
// of their inbound presence.

// target is one session to notify.
type target struct {
	s       router.Session
	contact bool // not one of the owner's own resources
}

// recipients returns the sessions to notify about node.
func (m *Module) recipients(ctx context.Context, owner, node string, cfg *nodeConfig) []target {
	var out []target
	for _, s := range m.r.Available(owner) {
		if m.interest(s).wants(node) {
			out = append(out, target{s: s})
		}
	}
	if cfg.AccessModel == AccessWhitelist {
		return out
	}
	items, _, err := m.roster.Items(ctx, owner)
	if err != nil {
		m.log.Error("reading a roster failed", "owner", owner, "err", err)
		return out
	}
	for _, it := range items {
		if !hasFrom(it) || it.JID == owner {
			continue
		}
		sessions := m.r.Available(it.JID) // local, available contacts only
		if len(sessions) == 0 {
			continue
		}
		k := &contact{m: m, owner: owner, bare: it.JID, loaded: true, item: it, found: true}
		if k.check(ctx, cfg) != accessOK {
			continue
		}
		for _, s := range sessions {
			if m.interest(s).wants(node) {
				out = append(out, target{s: s, contact: true})
			}
		}
	}
	return out
}

// send routes <message type='headline'><event>inner</event>extra</message>
// from owner to each target. extra (may be nil) adds children per target.
func (m *Module) send(ctx context.Context, owner string, targets []target, inner []byte, extra func(target) []byte) {
	if len(targets) == 0 {
		return
	}
	from, err := jid.Parse(owner)
	if err != nil {
		return
	}
	for _, t := range targets {
		var x []byte
		if extra != nil {
			x = extra(t)
		}
		m.route(ctx, from, t.s.JID(), inner, x)
	}
}

// route builds and routes one notification.
func (m *Module) route(ctx context.Context, from, to jid.JID, inner, extra []byte) {
	id := m.msgID()
	fs, ts := from.String(), to.String()
	b := make([]byte, 0, 128+len(inner)+len(extra)+len(fs)+len(ts))
	b = append(b, "<message type='headline'"...)
	b = wire.AppendAttr(b, "from", fs)
	b = wire.AppendAttr(b, "to", ts)
	b = wire.AppendAttr(b, "id", id)
	b = append(b, "><event xmlns='"+NSEvent+"'>"...)
	b = append(b, inner...)
	b = append(b, "</event>"...)
	b = append(b, extra...)
	b = append(b, "</message>"...)
	st := &wire.Stanza{
		Kind: wire.KindMessage, Name: "message", NS: wire.NSClient, Type: "headline", ID: id,
		From: fs, To: ts, PayloadName: "event", PayloadNS: NSEvent, Raw: b,
	}
	m.r.Route(&router.Context{Context: ctx, Router: m.r, Stanza: st, From: from, To: to})
}

// itemsEvent is <items node='…'>…</items> around the given items.
func itemsEvent(node string, items []storage.PubSubItem, payloads bool) []byte {
	b := wire.AppendAttr([]byte("<items"), "node", node)
	b = append(b, '>')
	for _, it := range items {
		b = appendItem(b, it, payloads)
	}
	return append(b, "</items>"...)
}

// notifyItem sends a published item to the node's recipients; contacts
// also learn the publishing resource (XEP-0163 §4.3.1, XEP-0033 replyto).
func (m *Module) notifyItem(ctx context.Context, owner, node string, cfg nodeConfig, it storage.PubSubItem, publisher string) {
	if !cfg.DeliverNotifications {
		return
	}
	inner := itemsEvent(node, []storage.PubSubItem{it}, cfg.DeliverPayloads)
	var replyTo []byte
	if publisher != "" {
		replyTo = wire.AppendAttr([]byte("<addresses xmlns='"+nsAddress+"'><address type='replyto'"), "jid", publisher)
		replyTo = append(replyTo, "/></addresses>"...)
	}
	m.send(ctx, owner, m.recipients(ctx, owner, node, &cfg), inner, func(t target) []byte {
		if t.contact {
			return replyTo
		}
		return nil
	})
}

// notifyRetract sends <retract/> notifications (XEP-0060 §7.2.2.1).
func (m *Module) notifyRetract(ctx context.Context, owner, node string, cfg nodeConfig, ids []string) {
	if !cfg.DeliverNotifications || len(ids) == 0 {
		return
	}
	b := wire.AppendAttr([]byte("<items"), "node", node)
	b = append(b, '>')
	for _, id := range ids {
		b = wire.AppendAttr(append(b, "<retract"...), "id", id)
		b = append(b, "/>"...)
	}
	b = append(b, "</items>"...)
	m.send(ctx, owner, m.recipients(ctx, owner, node, &cfg), b, nil)
}

// sendLast sends session s the last published item of each node in nodes
// (which it wants) of its own account and of the local contacts it is
// subscribed to, where the node sends its last item on presence and s may
// see it (XEP-0163 §4.3.3, XEP-0060 "last-published"). Each item carries
// an XEP-0203 delay with its publication time.
func (m *Module) sendLast(s router.Session, nodes []string) {
	ctx := context.Background()
	full := s.JID()
	user := full.Bare().String()
	owners := []string{user}
	items, _, err := m.roster.Items(ctx, user)
	if err != nil {
		m.log.Error("reading a roster failed", "owner", user, "err", err)
	}
	for _, it := range items {
		if !hasTo(it) || it.JID == user {
			continue
		}
		if cj, err := jid.Parse(it.JID); err == nil && cj.Localpart() != "" && m.r.IsHost(cj.Domainpart()) {
			owners = append(owners, it.JID)
		}
	}
	for _, owner := range owners {
		if s.Presence() == nil {
			return // gone meanwhile
		}
		lasts, err := m.store.LastItems(ctx, owner, nodes)
		if err != nil {
			m.log.Error("reading last items failed", "owner", owner, "err", err)
			continue
		}
		from, err := jid.Parse(owner)
		if err != nil {
			continue
		}
		k := &contact{m: m, owner: owner, bare: user}
		for _, l := range lasts {
			cfg := configFromMap(l.Node.Config)
			if cfg.SendLast != SendLastOnSubAndPre || !cfg.DeliverNotifications {
				continue
			}
			if k.check(ctx, &cfg) != accessOK || (owner != user && !contactSubscribed(ctx, k)) {
				continue
			}
			inner := itemsEvent(l.Node.Name, []storage.PubSubItem{l.Item}, cfg.DeliverPayloads)
			delay := wire.AppendAttr([]byte("<delay xmlns='"+nsDelay+"'"), "stamp", l.Item.Published.UTC().Format(time.RFC3339Nano))
			delay = wire.AppendAttr(delay, "from", owner)
			delay = append(delay, "/>"...)
			m.route(ctx, from, full, inner, delay)
		}
	}
}

// contactSubscribed reports whether the contact has a presence
// subscription to the owner (PEP's implicit subscription).
func contactSubscribed(ctx context.Context, k *contact) bool {
	it, ok := k.get(ctx)
	return ok && hasFrom(it)
}
