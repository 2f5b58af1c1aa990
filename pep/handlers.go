package pep

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/beevik/etree"

	"github.com/xmppd/xmppd/dataform"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

// Fixed limits on names.
const (
	maxNodeName = 1023 // bytes of a NodeID
	maxItemID   = 1023 // bytes of an ItemID
)

// request parses c's iq and returns its payload element in namespace ns
// (pubsub or pubsub#owner); nil after answering bad-request.
func request(c *router.Context, ns string) *etree.Element {
	root, err := c.Stanza.Element()
	if err != nil {
		c.Error("modify", "bad-request", "")
		return nil
	}
	ps := child(root, ns, "pubsub")
	if ps == nil {
		c.Error("modify", "bad-request", "")
		return nil
	}
	return ps
}

// isOwner reports whether the requester is the account itself.
func isOwner(c *router.Context) bool {
	return c.From.Localpart() != "" && c.From.Bare().Equal(c.To.Bare())
}

// action returns the one action element of a pubsub request (publish-
// options and configure ride along with publish and create).
func action(ps *etree.Element) *etree.Element {
	for _, e := range ps.ChildElements() {
		switch e.Tag {
		case "publish-options", "configure":
			if e.NamespaceURI() == NSPubSub {
				continue
			}
		}
		return e
	}
	return nil
}

func (m *Module) pubsubGet(c *router.Context) {
	ps := request(c, NSPubSub)
	if ps == nil {
		return
	}
	a := action(ps)
	if a == nil || a.NamespaceURI() != NSPubSub {
		c.Error("modify", "bad-request", "")
		return
	}
	switch a.Tag {
	case "items":
		m.items(c, a)
	case "subscriptions":
		unsupported(c, "retrieve-subscriptions")
	case "affiliations":
		unsupported(c, "retrieve-affiliations")
	case "options":
		unsupported(c, "subscription-options")
	case "default":
		unsupported(c, "retrieve-default-sub")
	default:
		c.Error("modify", "bad-request", "")
	}
}

func (m *Module) pubsubSet(c *router.Context) {
	ps := request(c, NSPubSub)
	if ps == nil {
		return
	}
	a := action(ps)
	if a == nil || a.NamespaceURI() != NSPubSub {
		c.Error("modify", "bad-request", "")
		return
	}
	switch a.Tag {
	case "publish":
		m.publish(c, a, child(ps, NSPubSub, "publish-options"))
	case "retract":
		m.retract(c, a)
	case "create":
		m.create(c, a, child(ps, NSPubSub, "configure"))
	case "subscribe", "unsubscribe":
		unsupported(c, "subscribe")
	case "options":
		unsupported(c, "subscription-options")
	default:
		c.Error("modify", "bad-request", "")
	}
}

// ownerAction returns the action of a pubsub#owner request by the node
// owner; otherwise it answers the error and returns nil.
func ownerAction(c *router.Context) *etree.Element {
	ps := request(c, NSOwner)
	if ps == nil {
		return nil
	}
	a := action(ps)
	if a == nil || a.NamespaceURI() != NSOwner {
		c.Error("modify", "bad-request", "")
		return nil
	}
	if !isOwner(c) {
		c.Error("auth", "forbidden", "")
		return nil
	}
	return a
}

func (m *Module) ownerGet(c *router.Context) {
	a := ownerAction(c)
	if a == nil {
		return
	}
	switch a.Tag {
	case "configure":
		m.configureGet(c, a)
	case "default":
		cfg := defaultConfig()
		b := []byte("<pubsub xmlns='" + NSOwner + "'><default>")
		b = appendForm(b, "form", NSNodeConfig, cfg.formFields())
		b = append(b, "</default></pubsub>"...)
		c.Reply(b)
	case "subscriptions":
		unsupported(c, "manage-subscriptions")
	case "affiliations":
		unsupported(c, "modify-affiliations")
	default:
		c.Error("modify", "bad-request", "")
	}
}

func (m *Module) ownerSet(c *router.Context) {
	a := ownerAction(c)
	if a == nil {
		return
	}
	switch a.Tag {
	case "configure":
		m.configureSet(c, a)
	case "delete":
		m.deleteNode(c, a)
	case "purge":
		m.purge(c, a)
	case "subscriptions":
		unsupported(c, "manage-subscriptions")
	case "affiliations":
		unsupported(c, "modify-affiliations")
	default:
		c.Error("modify", "bad-request", "")
	}
}

// nodeName reads and checks the 'node' attribute; "" after answering.
func nodeName(c *router.Context, e *etree.Element) string {
	n := attr(e, "node")
	if n == "" {
		fail(c, "modify", "bad-request", "nodeid-required", "")
		return ""
	}
	if len(n) > maxNodeName {
		c.Error("modify", "not-acceptable", "NodeID too long")
		return ""
	}
	return n
}

// internal answers internal-server-error and logs err.
func (m *Module) internal(c *router.Context, what string, err error) {
	m.log.Error(what+" failed", "owner", c.To.Bare().String(), "err", err)
	c.Error("wait", "internal-server-error", "")
}

// publish handles <publish/> (XEP-0060 §7.1) with auto-create and
// publish-options (§7.1.5).
func (m *Module) publish(c *router.Context, pub, opts *etree.Element) {
	if !isOwner(c) {
		c.Error("auth", "forbidden", "")
		return
	}
	node := nodeName(c, pub)
	if node == "" {
		return
	}
	items := children(pub, NSPubSub, "item")
	switch {
	case len(items) == 0:
		fail(c, "modify", "bad-request", "item-required", "")
		return
	case len(items) > 1:
		c.Error("modify", "bad-request", "One item per publish request")
		return
	}
	it := items[0]
	payloads := it.ChildElements()
	switch {
	case len(payloads) == 0:
		fail(c, "modify", "bad-request", "payload-required", "")
		return
	case len(payloads) > 1:
		fail(c, "modify", "bad-request", "invalid-payload", "")
		return
	}
	id := attr(it, "id")
	if id == "" {
		id = newID()
	}
	if len(id) > maxItemID {
		c.Error("modify", "not-acceptable", "ItemID too long")
		return
	}
	payload := standalone(payloads[0])
	if len(payload) > m.opts.MaxItemSize {
		fail(c, "modify", "not-acceptable", "payload-too-big", "")
		return
	}
	var preconds []dataform.Field
	if opts != nil {
		x := child(opts, NSData, "x")
		if x != nil {
			f, err := readForm(x)
			if err != nil || f.FormType() != NSPublishOptions || (f.Type != dataform.TypeSubmit && f.Type != "") {
				text := ""
				if fe := (*dataform.Error)(nil); errors.As(err, &fe) {
					text = fe.Text()
				}
				fail(c, "modify", "bad-request", "invalid-options", text)
				return
			}
			preconds = userFields(f)
		}
	}

	owner := c.To.Bare().String()
	unlock := m.lock(owner)
	defer unlock()
	cfg, err := m.nodeForPublish(c, c, owner, node, preconds, nil)
	if err != nil {
		return // answered
	}
	item := storage.PubSubItem{ID: id, Publisher: c.From.String(), Payload: payload}
	if err := m.store.Publish(c, owner, node, item, cfg.effectiveMax(m.opts.MaxItems)); err != nil {
		m.internal(c, "publishing", err)
		return
	}
	b := []byte("<pubsub xmlns='" + NSPubSub + "'><publish")
	b = wire.AppendAttr(b, "node", node)
	b = append(b, "><item"...)
	b = wire.AppendAttr(b, "id", id)
	b = append(b, "/></publish></pubsub>"...)
	c.Reply(b)

	m.notifyItem(c, owner, node, cfg, item, c.From.String())
	m.afterChange(c, owner, node)
}

// errAnswered marks an error already answered to the requester.
var errAnswered = errors.New("answered")

// nodeForPublish returns the configuration of the node to publish to,
// checking preconditions, or creates it with them (auto-create). With c
// nil (internal publishes) errors are returned, not answered. The owner's
// lock is held.
func (m *Module) nodeForPublish(ctx context.Context, c *router.Context, owner, node string, preconds []dataform.Field, base *nodeConfig) (nodeConfig, error) {
	answer := func(errType, cond, app string) error {
		if c != nil {
			fail(c, errType, cond, app, "")
		}
		return errAnswered
	}
	n, err := m.store.Node(ctx, owner, node)
	switch {
	case err == nil:
		cfg := configFromMap(n.Config)
		for _, f := range preconds {
			if !cfg.meets(f.Var, f.Values, m.opts.MaxItems) {
				return cfg, answer("cancel", "conflict", "precondition-not-met")
			}
		}
		return cfg, nil
	case !errors.Is(err, storage.ErrNotFound):
		if c != nil {
			m.internal(c, "reading a node", err)
		}
		return nodeConfig{}, err
	}
	cfg := defaultConfig()
	if base != nil {
		cfg = *base
	}
	for _, f := range preconds {
		if err := cfg.set(f.Var, f.Values, m.opts.MaxItems); err != nil {
			return cfg, answer("cancel", "conflict", "precondition-not-met")
		}
	}
	err = m.store.CreateNode(ctx, owner, storage.PubSubNode{Name: node, Config: cfg.toMap()}, m.opts.MaxNodes)
	switch {
	case errors.Is(err, storage.ErrQuotaExceeded):
		return cfg, answer("cancel", "not-allowed", "max-nodes-exceeded")
	case err != nil:
		if c != nil {
			m.internal(c, "creating a node", err)
		}
		return cfg, err
	}
	return cfg, nil
}

// items handles <items/> (XEP-0060 §6.5): all, the newest max_items, or
// by ItemID, for the owner and whoever the access model allows.
func (m *Module) items(c *router.Context, e *etree.Element) {
	node := nodeName(c, e)
	if node == "" {
		return
	}
	owner := c.To.Bare().String()
	if isOwner(c) && isBookmarkNode(node) {
		m.checkPrivate(owner)
	}
	n, ok := m.nodeOrError(c, owner, node)
	if !ok {
		return
	}
	cfg := configFromMap(n.Config)
	if !m.allowed(c, owner, c.From, &cfg, nil) {
		return
	}
	var ids []string
	for _, it := range children(e, NSPubSub, "item") {
		if id := attr(it, "id"); id != "" {
			ids = append(ids, id)
		}
	}
	var list []storage.PubSubItem
	var err error
	if len(ids) > 0 {
		list, err = m.store.ItemsByID(c, owner, node, ids)
	} else {
		max := 0
		if v := attr(e, "max_items"); v != "" {
			max, err = strconv.Atoi(strings.TrimSpace(v))
			if err != nil || max < 1 {
				c.Error("modify", "bad-request", "max_items must be a positive number")
				return
			}
		}
		list, err = m.store.Items(c, owner, node, max)
	}
	if errors.Is(err, storage.ErrNotFound) {
		c.Error("cancel", "item-not-found", "")
		return
	}
	if err != nil {
		m.internal(c, "reading items", err)
		return
	}
	b := []byte("<pubsub xmlns='" + NSPubSub + "'><items")
	b = wire.AppendAttr(b, "node", node)
	b = append(b, '>')
	for _, it := range list {
		b = appendItem(b, it, true)
	}
	b = append(b, "</items></pubsub>"...)
	c.Reply(b)
}

// appendItem writes <item id='…'>payload</item>.
func appendItem(b []byte, it storage.PubSubItem, payload bool) []byte {
	b = append(b, "<item"...)
	b = wire.AppendAttr(b, "id", it.ID)
	if !payload || len(it.Payload) == 0 {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	b = append(b, it.Payload...)
	return append(b, "</item>"...)
}

// retract handles <retract/> (XEP-0060 §7.2).
func (m *Module) retract(c *router.Context, e *etree.Element) {
	if !isOwner(c) {
		c.Error("auth", "forbidden", "")
		return
	}
	node := nodeName(c, e)
	if node == "" {
		return
	}
	items := children(e, NSPubSub, "item")
	if len(items) != 1 || attr(items[0], "id") == "" {
		fail(c, "modify", "bad-request", "item-required", "")
		return
	}
	id := attr(items[0], "id")
	owner := c.To.Bare().String()
	unlock := m.lock(owner)
	defer unlock()
	n, ok := m.nodeOrError(c, owner, node)
	if !ok {
		return
	}
	cfg := configFromMap(n.Config)
	err := m.store.Retract(c, owner, node, id)
	if errors.Is(err, storage.ErrNotFound) {
		c.Error("cancel", "item-not-found", "")
		return
	}
	if err != nil {
		m.internal(c, "retracting", err)
		return
	}
	c.Reply(nil)
	notify := cfg.NotifyRetract
	if v := attr(e, "notify"); v != "" {
		notify, _ = parseBool(v)
	}
	if notify {
		m.notifyRetract(c, owner, node, cfg, []string{id})
	}
	m.afterChange(c, owner, node)
}

// create handles <create/> with an optional <configure/> (XEP-0060 §8.1).
func (m *Module) create(c *router.Context, e, configure *etree.Element) {
	if !isOwner(c) {
		c.Error("auth", "forbidden", "")
		return
	}
	node := attr(e, "node")
	if node == "" {
		fail(c, "modify", "not-acceptable", "nodeid-required", "") // no instant nodes
		return
	}
	if len(node) > maxNodeName {
		c.Error("modify", "not-acceptable", "NodeID too long")
		return
	}
	cfg := defaultConfig()
	if configure != nil {
		if x := child(configure, NSData, "x"); x != nil {
			f, err := readForm(x)
			if err != nil {
				formError(c, err)
				return
			}
			if !m.applyForm(c, &cfg, f) {
				return
			}
		}
	}
	owner := c.To.Bare().String()
	unlock := m.lock(owner)
	defer unlock()
	err := m.store.CreateNode(c, owner, storage.PubSubNode{Name: node, Config: cfg.toMap()}, m.opts.MaxNodes)
	switch {
	case errors.Is(err, storage.ErrExists):
		c.Error("cancel", "conflict", "")
	case errors.Is(err, storage.ErrQuotaExceeded):
		fail(c, "cancel", "not-allowed", "max-nodes-exceeded", "")
	case err != nil:
		m.internal(c, "creating a node", err)
	default:
		c.Reply(nil)
	}
}

// applyForm applies a submitted node_config form to cfg; false after
// answering an error. Unknown fields are ignored (XEP-0004 leaves them to
// the form processor); values the service cannot hold are not-acceptable.
func (m *Module) applyForm(c *router.Context, cfg *nodeConfig, f *dataform.Form) bool {
	if f.Type != dataform.TypeSubmit || (f.FormType() != "" && f.FormType() != NSNodeConfig) {
		c.Error("modify", "bad-request", "A submitted "+NSNodeConfig+" form is expected")
		return false
	}
	for _, fl := range userFields(f) {
		err := cfg.set(fl.Var, fl.Values, m.opts.MaxItems)
		if err == nil || errors.Is(err, errUnknownField) {
			continue
		}
		if fl.Var == fAccessModel {
			fail(c, "modify", "not-acceptable", "unsupported-access-model", "")
			return false
		}
		c.Error("modify", "not-acceptable", err.Error())
		return false
	}
	return true
}

// configureGet returns the configuration form (XEP-0060 §8.2).
func (m *Module) configureGet(c *router.Context, e *etree.Element) {
	node := nodeName(c, e)
	if node == "" {
		return
	}
	n, ok := m.nodeOrError(c, c.To.Bare().String(), node)
	if !ok {
		return
	}
	cfg := configFromMap(n.Config)
	b := []byte("<pubsub xmlns='" + NSOwner + "'><configure")
	b = wire.AppendAttr(b, "node", node)
	b = append(b, '>')
	b = appendForm(b, "form", NSNodeConfig, cfg.formFields())
	b = append(b, "</configure></pubsub>"...)
	c.Reply(b)
}

// configureSet applies a submitted form (or a cancel).
func (m *Module) configureSet(c *router.Context, e *etree.Element) {
	node := nodeName(c, e)
	if node == "" {
		return
	}
	x := child(e, NSData, "x")
	if x == nil {
		c.Error("modify", "bad-request", "")
		return
	}
	f, err := readForm(x)
	if err != nil {
		formError(c, err)
		return
	}
	owner := c.To.Bare().String()
	unlock := m.lock(owner)
	defer unlock()
	n, ok := m.nodeOrError(c, owner, node)
	if !ok {
		return
	}
	if f.Type == dataform.TypeCancel {
		c.Reply(nil)
		return
	}
	cfg := configFromMap(n.Config)
	if !m.applyForm(c, &cfg, f) {
		return
	}
	if err := m.store.ConfigureNode(c, owner, node, cfg.toMap(), cfg.effectiveMax(m.opts.MaxItems)); err != nil {
		m.internal(c, "configuring a node", err)
		return
	}
	c.Reply(nil)
	m.afterChange(c, owner, node)
}

// deleteNode handles <delete/> (XEP-0060 §8.4), notifying <delete/>.
func (m *Module) deleteNode(c *router.Context, e *etree.Element) {
	node := nodeName(c, e)
	if node == "" {
		return
	}
	owner := c.To.Bare().String()
	unlock := m.lock(owner)
	defer unlock()
	n, ok := m.nodeOrError(c, owner, node)
	if !ok {
		return
	}
	cfg := configFromMap(n.Config)
	var targets []target
	if cfg.NotifyDelete {
		targets = m.recipients(c, owner, node, &cfg)
	}
	if err := m.store.DeleteNode(c, owner, node); err != nil && !errors.Is(err, storage.ErrNotFound) {
		m.internal(c, "deleting a node", err)
		return
	}
	c.Reply(nil)
	inner := wire.AppendAttr([]byte("<delete"), "node", node)
	inner = append(inner, "/>"...)
	m.send(c, owner, targets, inner, nil)
	m.afterChange(c, owner, node)
}

// purge handles <purge/> (XEP-0060 §8.5), notifying <purge/>.
func (m *Module) purge(c *router.Context, e *etree.Element) {
	node := nodeName(c, e)
	if node == "" {
		return
	}
	owner := c.To.Bare().String()
	unlock := m.lock(owner)
	defer unlock()
	n, ok := m.nodeOrError(c, owner, node)
	if !ok {
		return
	}
	cfg := configFromMap(n.Config)
	if err := m.store.Purge(c, owner, node); err != nil {
		m.internal(c, "purging a node", err)
		return
	}
	c.Reply(nil)
	if cfg.DeliverNotifications {
		inner := wire.AppendAttr([]byte("<purge"), "node", node)
		inner = append(inner, "/>"...)
		m.send(c, owner, m.recipients(c, owner, node, &cfg), inner, nil)
	}
	m.afterChange(c, owner, node)
}

// nodeOrError reads a node for a request; when there is none (or storage
// fails) it answers the error and returns false.
func (m *Module) nodeOrError(c *router.Context, owner, node string) (storage.PubSubNode, bool) {
	n, err := m.store.Node(c, owner, node)
	if errors.Is(err, storage.ErrNotFound) {
		c.Error("cancel", "item-not-found", "")
		return n, false
	}
	if err != nil {
		m.internal(c, "reading a node", err)
		return n, false
	}
	return n, true
}
