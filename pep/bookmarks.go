package pep

import (
	"bytes"
	"context"
	"errors"

	"github.com/beevik/etree"
	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

// XEP-0402 bookmarks and their compatibility views (§5.3):
//
//   - urn:xmpp:bookmarks:1, one item per room (ItemID = room JID), is the
//     reference;
//   - #compat-pep: the XEP-0048 node storage:bookmarks (XEP-0223 profile,
//     one item 'current' holding <storage xmlns='storage:bookmarks'/>);
//   - #compat: XEP-0049 private XML storage, namespace storage:bookmarks
//     (storage.Private, when Options.Private is set).
//
// A change to the :1 node rewrites both legacy views from its items,
// keeping what else they hold (<url/> bookmarks). A new legacy list
// (published to storage:bookmarks, or found in private storage) updates
// the :1 node item by item — publishing changed and new rooms, retracting
// the others, with notifications for those only (§5.3.2) — and is copied
// as it is to the other legacy view.
//
// Private storage is written by the private XML module too. Its changes
// are picked up when the owner reads bookmarks, when one of the owner's
// resources comes online, and at once when that module hands the
// storage:bookmarks namespace to this one (GetPrivate and SetPrivate
// implement private.Handler).

// Bookmark namespaces and the legacy item.
const (
	NSBookmarks       = "urn:xmpp:bookmarks:1"
	NSLegacyBookmarks = "storage:bookmarks"
	legacyItemID      = "current"
)

func isBookmarkNode(node string) bool { return node == NSBookmarks || node == NSLegacyBookmarks }

// bookmarksConfig is the :1 node's configuration when the server creates
// it (what XEP-0402 §3.2 asks clients to require).
func bookmarksConfig() nodeConfig {
	c := defaultConfig()
	c.AccessModel, c.MaxItems, c.SendLast = AccessWhitelist, 0, SendLastNever
	return c
}

// legacyConfig is the storage:bookmarks node's (XEP-0048 §3.3, XEP-0223).
func legacyConfig() nodeConfig {
	c := defaultConfig()
	c.AccessModel = AccessWhitelist
	return c
}

// bookmark is one room, in the fields both formats share.
type bookmark struct {
	jid, name, nick, password string
	autojoin                  bool
	extensions                *etree.Element // :1 only; kept across legacy edits
}

func (b *bookmark) same(o *bookmark) bool {
	return b.jid == o.jid && b.name == o.name && b.nick == o.nick && b.password == o.password && b.autojoin == o.autojoin
}

// readConference reads a <conference/> of either namespace.
func readConference(e *etree.Element, ns string) bookmark {
	b := bookmark{name: attr(e, "name")}
	b.autojoin, _ = parseBool(attr(e, "autojoin"))
	if n := child(e, ns, "nick"); n != nil {
		b.nick = n.Text()
	}
	if p := child(e, ns, "password"); p != nil {
		b.password = p.Text()
	}
	return b
}

// fromV1 reads a :1 item.
func fromV1(it storage.PubSubItem) (bookmark, bool) {
	e := parsePayload(it.Payload)
	if e == nil || e.Tag != "conference" || e.NamespaceURI() != NSBookmarks {
		return bookmark{}, false
	}
	b := readConference(e, NSBookmarks)
	b.jid = it.ID
	if x := child(e, NSBookmarks, "extensions"); x != nil {
		b.extensions = x
	}
	return b, true
}

// v1Payload writes a :1 item's payload.
func (b *bookmark) v1Payload() []byte {
	out := []byte("<conference xmlns='" + NSBookmarks + "'")
	if b.name != "" {
		out = wire.AppendAttr(out, "name", b.name)
	}
	if b.autojoin {
		out = append(out, " autojoin='true'"...)
	}
	out = append(out, '>')
	if b.nick != "" {
		out = appendText(append(out, "<nick>"...), b.nick)
		out = append(out, "</nick>"...)
	}
	if b.password != "" {
		out = appendText(append(out, "<password>"...), b.password)
		out = append(out, "</password>"...)
	}
	if b.extensions != nil {
		out = append(out, standalone(b.extensions)...)
	}
	return append(out, "</conference>"...)
}

// legacy is a parsed <storage xmlns='storage:bookmarks'/>.
type legacy struct {
	confs  []bookmark
	others [][]byte // other children (<url/>), standalone
	raw    []byte   // the <storage/> element as read, standalone
}

// parseLegacy reads XEP-0048 storage from one or more elements (private
// storage may hold several); ok is false when there is no <storage/>.
func parseLegacy(x []byte) (legacy, bool) {
	var l legacy
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(append(append([]byte("<w>"), x...), "</w>"...)); err != nil {
		return l, false
	}
	st := child(doc.Root(), NSLegacyBookmarks, "storage")
	if st == nil {
		return l, false
	}
	l.raw = standalone(st)
	for _, e := range st.ChildElements() {
		if e.Tag == "conference" && e.NamespaceURI() == NSLegacyBookmarks {
			b := readConference(e, NSLegacyBookmarks)
			j, err := jid.Parse(attr(e, "jid"))
			if err != nil || j.Localpart() == "" || j.Resourcepart() != "" {
				continue
			}
			b.jid = j.String()
			l.confs = append(l.confs, b)
			continue
		}
		l.others = append(l.others, standalone(e))
	}
	return l, true
}

// xml writes the XEP-0048 storage element.
func (l *legacy) xml() []byte {
	out := []byte("<storage xmlns='" + NSLegacyBookmarks + "'>")
	for _, b := range l.confs {
		out = wire.AppendAttr(append(out, "<conference"...), "jid", b.jid)
		if b.name != "" {
			out = wire.AppendAttr(out, "name", b.name)
		}
		out = wire.AppendAttr(out, "autojoin", map[bool]string{true: "true", false: "false"}[b.autojoin])
		if b.nick == "" && b.password == "" {
			out = append(out, "/>"...)
			continue
		}
		out = append(out, '>')
		if b.nick != "" {
			out = appendText(append(out, "<nick>"...), b.nick)
			out = append(out, "</nick>"...)
		}
		if b.password != "" {
			out = appendText(append(out, "<password>"...), b.password)
			out = append(out, "</password>"...)
		}
		out = append(out, "</conference>"...)
	}
	for _, o := range l.others {
		out = append(out, o...)
	}
	return append(out, "</storage>"...)
}

// v1Bookmarks reads the :1 node (empty when it does not exist).
func (m *Module) v1Bookmarks(ctx context.Context, owner string) ([]bookmark, error) {
	items, err := m.store.Items(ctx, owner, NSBookmarks, 0)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]bookmark, 0, len(items))
	for _, it := range items {
		if b, ok := fromV1(it); ok {
			out = append(out, b)
		}
	}
	return out, nil
}

// sameSet reports whether two lists hold the same rooms with the same
// fields (order aside; a room listed twice counts with its last entry).
func sameSet(a, b []bookmark) bool {
	ma, mb := index(a), index(b)
	if len(ma) != len(mb) {
		return false
	}
	for j, x := range ma {
		y, ok := mb[j]
		if !ok || !x.same(y) {
			return false
		}
	}
	return true
}

func index(l []bookmark) map[string]*bookmark {
	m := make(map[string]*bookmark, len(l))
	for i := range l {
		m[l[i].jid] = &l[i]
	}
	return m
}

// afterChange keeps the bookmark views in step after node changed through
// a request (the owner's lock is held).
func (m *Module) afterChange(ctx context.Context, owner, node string) {
	switch node {
	case NSBookmarks:
		m.exportV1(ctx, owner)
	case NSLegacyBookmarks:
		items, err := m.store.Items(ctx, owner, NSLegacyBookmarks, 1)
		if err != nil || len(items) == 0 {
			return // retracted, purged or deleted: the :1 bookmarks stay
		}
		l, ok := parseLegacy(items[0].Payload)
		if !ok {
			return
		}
		m.importLegacy(ctx, owner, l)
		m.putPrivate(ctx, owner, items[0].Payload)
	}
}

// exportV1 rewrites both legacy views from the :1 node, where they differ.
func (m *Module) exportV1(ctx context.Context, owner string) {
	confs, err := m.v1Bookmarks(ctx, owner)
	if err != nil {
		m.log.Error("reading bookmarks failed", "owner", owner, "err", err)
		return
	}
	if m.private != nil {
		cur, err := m.private.Get(ctx, owner, NSLegacyBookmarks)
		if err == nil || errors.Is(err, storage.ErrNotFound) {
			l, _ := parseLegacy(cur)
			if !sameSet(l.confs, confs) || (cur == nil && len(confs) > 0) {
				l.confs = confs
				m.putPrivate(ctx, owner, l.xml())
			}
		} else {
			m.log.Error("reading private bookmarks failed", "owner", owner, "err", err)
		}
	}
	items, err := m.store.Items(ctx, owner, NSLegacyBookmarks, 1)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		m.log.Error("reading legacy bookmarks failed", "owner", owner, "err", err)
		return
	}
	var l legacy
	if len(items) > 0 {
		l, _ = parseLegacy(items[0].Payload)
		if sameSet(l.confs, confs) {
			return
		}
	} else if len(confs) == 0 {
		return // nothing to show, and no legacy node to update
	}
	l.confs = confs
	m.publishLegacy(ctx, owner, l.xml())
}

// putPrivate stores the XEP-0048 list in private storage; when that fails
// (its quota), the stale copy is removed so that it is never imported back.
func (m *Module) putPrivate(ctx context.Context, owner string, x []byte) {
	if m.private == nil {
		return
	}
	if cur, err := m.private.Get(ctx, owner, NSLegacyBookmarks); err == nil && bytes.Equal(cur, x) {
		return
	}
	err := m.private.Put(ctx, owner, []storage.PrivateItem{{NS: NSLegacyBookmarks, XML: x}}, 0)
	if err == nil {
		return
	}
	m.log.Error("storing private bookmarks failed", "owner", owner, "err", err)
	if err := m.private.Delete(ctx, owner, NSLegacyBookmarks); err != nil && !errors.Is(err, storage.ErrNotFound) {
		m.log.Error("removing stale private bookmarks failed", "owner", owner, "err", err)
	}
}

// publishLegacy publishes x as the storage:bookmarks item, with
// notifications.
func (m *Module) publishLegacy(ctx context.Context, owner string, x []byte) {
	base := legacyConfig()
	cfg, err := m.nodeForPublish(ctx, nil, owner, NSLegacyBookmarks, nil, &base)
	if err != nil {
		m.log.Error("creating the legacy bookmarks node failed", "owner", owner, "err", err)
		return
	}
	it := storage.PubSubItem{ID: legacyItemID, Publisher: owner, Payload: x}
	if err := m.store.Publish(ctx, owner, NSLegacyBookmarks, it, cfg.effectiveMax(m.opts.MaxItems)); err != nil {
		m.log.Error("publishing legacy bookmarks failed", "owner", owner, "err", err)
		return
	}
	m.notifyItem(ctx, owner, NSLegacyBookmarks, cfg, it, "")
}

// importLegacy makes the :1 node hold the rooms of l: changed and new ones
// are published, missing ones retracted, each with its notification;
// unchanged ones are left alone.
func (m *Module) importLegacy(ctx context.Context, owner string, l legacy) {
	cur, err := m.v1Bookmarks(ctx, owner)
	if err != nil {
		m.log.Error("reading bookmarks failed", "owner", owner, "err", err)
		return
	}
	have, want := index(cur), index(l.confs)
	var cfg nodeConfig
	created := false
	for i := range l.confs {
		b := l.confs[i]
		if want[b.jid] != &l.confs[i] {
			continue // listed twice: the last entry counts
		}
		old, ok := have[b.jid]
		if ok && old.same(&b) {
			continue
		}
		if ok {
			b.extensions = old.extensions
		}
		if !created {
			base := bookmarksConfig()
			if cfg, err = m.nodeForPublish(ctx, nil, owner, NSBookmarks, nil, &base); err != nil {
				m.log.Error("creating the bookmarks node failed", "owner", owner, "err", err)
				return
			}
			created = true
		}
		it := storage.PubSubItem{ID: b.jid, Publisher: owner, Payload: b.v1Payload()}
		if err := m.store.Publish(ctx, owner, NSBookmarks, it, cfg.effectiveMax(m.opts.MaxItems)); err != nil {
			m.log.Error("publishing a bookmark failed", "owner", owner, "err", err)
			return
		}
		m.notifyItem(ctx, owner, NSBookmarks, cfg, it, "")
		have[b.jid] = &b
	}
	var gone []string
	for _, b := range cur {
		if _, ok := want[b.jid]; !ok {
			gone = append(gone, b.jid)
		}
	}
	if len(gone) == 0 {
		return
	}
	n, err := m.store.Node(ctx, owner, NSBookmarks)
	if err != nil {
		return
	}
	cfg = configFromMap(n.Config)
	for _, id := range gone {
		if err := m.store.Retract(ctx, owner, NSBookmarks, id); err != nil && !errors.Is(err, storage.ErrNotFound) {
			m.log.Error("retracting a bookmark failed", "owner", owner, "err", err)
			return
		}
	}
	if cfg.NotifyRetract {
		m.notifyRetract(ctx, owner, NSBookmarks, cfg, gone)
	}
}

// checkPrivate imports the private-storage bookmarks when they no longer
// match the :1 node (the private XML module changed them), and copies
// them to the storage:bookmarks node.
func (m *Module) checkPrivate(owner string) {
	if m.private == nil {
		return
	}
	ctx := context.Background()
	unlock := m.lock(owner)
	defer unlock()
	m.syncPrivateLocked(ctx, owner)
}

func (m *Module) syncPrivateLocked(ctx context.Context, owner string) {
	x, err := m.private.Get(ctx, owner, NSLegacyBookmarks)
	if errors.Is(err, storage.ErrNotFound) {
		return
	}
	if err != nil {
		m.log.Error("reading private bookmarks failed", "owner", owner, "err", err)
		return
	}
	l, ok := parseLegacy(x)
	if !ok {
		return
	}
	cur, err := m.v1Bookmarks(ctx, owner)
	if err != nil || sameSet(cur, l.confs) {
		return
	}
	m.importLegacy(ctx, owner, l)
	items, err := m.store.Items(ctx, owner, NSLegacyBookmarks, 1)
	if err == nil && len(items) > 0 && bytes.Equal(items[0].Payload, l.raw) {
		return
	}
	m.publishLegacy(ctx, owner, l.raw)
}

// GetPrivate returns owner's XEP-0048 bookmarks for private XML storage
// (private.Handler): the stored list, or one made from the :1 node.
func (m *Module) GetPrivate(ctx context.Context, owner string) ([]byte, error) {
	unlock := m.lock(owner)
	defer unlock()
	if m.private != nil {
		m.syncPrivateLocked(ctx, owner)
		x, err := m.private.Get(ctx, owner, NSLegacyBookmarks)
		if !errors.Is(err, storage.ErrNotFound) {
			return x, err
		}
	}
	confs, err := m.v1Bookmarks(ctx, owner)
	if err != nil {
		return nil, err
	}
	if len(confs) == 0 {
		return nil, storage.ErrNotFound
	}
	l := legacy{confs: confs}
	return l.xml(), nil
}

// SetPrivate stores owner's XEP-0048 bookmarks set through private XML
// storage (private.Handler) and updates the :1 and storage:bookmarks nodes.
func (m *Module) SetPrivate(ctx context.Context, owner string, x []byte) error {
	unlock := m.lock(owner)
	defer unlock()
	if m.private != nil {
		if err := m.private.Put(ctx, owner, []storage.PrivateItem{{NS: NSLegacyBookmarks, XML: x}}, 0); err != nil {
			return err
		}
	}
	l, ok := parseLegacy(x)
	if !ok {
		return nil
	}
	m.importLegacy(ctx, owner, l)
	m.publishLegacy(ctx, owner, l.raw)
	return nil
}
