package pep

import (
	"context"
	"errors"
	"slices"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// Access to a node's items (XEP-0060 §4.5, XEP-0163 §4.2): the owner
// always; others by the access model — open: anyone; presence: contacts
// with a presence subscription to the owner (from or both); roster:
// contacts in one of pubsub#roster_groups_allowed; whitelist: nobody else
// (no affiliations are managed).

// verdict is the outcome of an access check.
type verdict int

const (
	accessOK verdict = iota
	needPresence
	needGroup
	closedNode
)

// contact is the owner's roster item for a requester, read at most once.
type contact struct {
	m      *Module
	owner  string
	bare   string
	loaded bool
	item   storage.RosterItem
	found  bool
}

func (k *contact) get(ctx context.Context) (storage.RosterItem, bool) {
	if !k.loaded {
		k.loaded = true
		it, err := k.m.roster.Item(ctx, k.owner, k.bare)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			k.m.log.Error("reading a roster item failed", "owner", k.owner, "err", err)
		}
		k.item, k.found = it, err == nil
	}
	return k.item, k.found
}

func hasFrom(it storage.RosterItem) bool {
	return it.Subscription == storage.SubFrom || it.Subscription == storage.SubBoth
}

func hasTo(it storage.RosterItem) bool {
	return it.Subscription == storage.SubTo || it.Subscription == storage.SubBoth
}

// check applies cfg's access model to the requester k.
func (k *contact) check(ctx context.Context, cfg *nodeConfig) verdict {
	if k.bare == k.owner {
		return accessOK
	}
	switch cfg.AccessModel {
	case AccessOpen:
		return accessOK
	case AccessPresence:
		if it, ok := k.get(ctx); ok && hasFrom(it) {
			return accessOK
		}
		return needPresence
	case AccessRoster:
		if it, ok := k.get(ctx); ok {
			for _, g := range it.Groups {
				if slices.Contains(cfg.RosterGroups, g) {
					return accessOK
				}
			}
		}
		return needGroup
	}
	return closedNode
}

// allowed checks that requester may read the node, answering the
// XEP-0060 §6.5.9 error when not. k may be nil.
func (m *Module) allowed(c *router.Context, owner string, requester jid.JID, cfg *nodeConfig, k *contact) bool {
	if k == nil {
		k = &contact{m: m, owner: owner, bare: requester.Bare().String()}
	}
	switch k.check(c, cfg) {
	case accessOK:
		return true
	case needPresence:
		fail(c, "auth", "not-authorized", "presence-subscription-required", "")
	case needGroup:
		fail(c, "auth", "not-authorized", "not-in-roster-group", "")
	default:
		fail(c, "cancel", "not-allowed", "closed-node", "")
	}
	return false
}
