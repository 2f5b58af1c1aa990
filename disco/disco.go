// Package disco answers XEP-0030 service discovery for the server and for
// accounts, computed from what the modules registered on the router, and
// computes the XEP-0115 entity capabilities advertised in stream features.
package disco

import (
	"crypto/sha1"
	"encoding/base64"
	"sort"
	"strings"
	"sync"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/wire"
)

const (
	NSInfo  = "http://jabber.org/protocol/disco#info"
	NSItems = "http://jabber.org/protocol/disco#items"
	NSCaps  = "http://jabber.org/protocol/caps"
	// CapsNode is the node in our XEP-0115 <c/> element.
	CapsNode = "https://github.com/xmppd/xmppd"
)

// Identity is a disco identity.
type Identity struct{ Category, Type, Name string }

// Item is a disco item (a service on another JID, like upload.DOMAIN).
type Item struct{ JID, Name string }

// Module answers disco#info and disco#items.
type Module struct {
	r        *router.Router
	server   Identity
	mu       sync.Mutex
	items    []func(domain string) Item
	caps     []byte
	capsDone bool
}

// New registers disco on r.
func New(r *router.Router, name string) *Module {
	m := &Module{r: r, server: Identity{"server", "im", name}}
	r.AddFeature(router.ToServer|router.ToBare, NSInfo, NSItems)
	r.HandleIQ("get", NSInfo, router.ToServer|router.ToBare, m.info)
	r.HandleIQ("get", NSItems, router.ToServer|router.ToBare, m.itemsHandler)
	return m
}

// AddItem lists a service in the server's disco#items; fn gets the domain
// asked about and returns the item.
func (m *Module) AddItem(fn func(domain string) Item) {
	m.mu.Lock()
	m.items = append(m.items, fn)
	m.mu.Unlock()
}

type query struct {
	Node string `xml:"node,attr"`
}

func (m *Module) info(c *router.Context) {
	var q struct {
		Q query `xml:"query"`
	}
	_ = c.Stanza.Decode(&q)
	node := q.Q.Node
	var ids []Identity
	var feats []string
	if c.To.Localpart() == "" {
		if node != "" && node != CapsNode+"#"+m.ver() {
			c.Error("cancel", "item-not-found", "")
			return
		}
		ids, feats = []Identity{m.server}, m.r.Features(router.ToServer)
	} else {
		if node != "" {
			c.Error("cancel", "item-not-found", "")
			return
		}
		ids, feats = []Identity{{"account", "registered", ""}}, m.r.Features(router.ToBare)
	}
	b := []byte("<query xmlns='" + NSInfo + "'")
	if node != "" {
		b = append(b, " node='"...)
		b = wire.AppendEscapedAttr(b, node)
		b = append(b, '\'')
	}
	b = append(b, '>')
	for _, id := range ids {
		b = append(b, "<identity category='"+id.Category+"' type='"+id.Type+"'"...)
		if id.Name != "" {
			b = append(b, " name='"...)
			b = wire.AppendEscapedAttr(b, id.Name)
			b = append(b, '\'')
		}
		b = append(b, "/>"...)
	}
	for _, f := range feats {
		b = append(b, "<feature var='"...)
		b = wire.AppendEscapedAttr(b, f)
		b = append(b, "'/>"...)
	}
	b = append(b, "</query>"...)
	c.Reply(b)
}

func (m *Module) itemsHandler(c *router.Context) {
	b := []byte("<query xmlns='" + NSItems + "'>")
	if c.To.Localpart() == "" {
		m.mu.Lock()
		fns := append([]func(string) Item(nil), m.items...)
		m.mu.Unlock()
		for _, fn := range fns {
			it := fn(c.To.Domainpart())
			b = append(b, "<item jid='"...)
			b = wire.AppendEscapedAttr(b, it.JID)
			b = append(b, '\'')
			if it.Name != "" {
				b = append(b, " name='"...)
				b = wire.AppendEscapedAttr(b, it.Name)
				b = append(b, '\'')
			}
			b = append(b, "/>"...)
		}
	}
	b = append(b, "</query>"...)
	c.Reply(b)
}

// ver computes the XEP-0115 §5.1 verification string of the server's
// disco#info (identities and features; no extended forms).
func (m *Module) ver() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.capsDone {
		m.computeCaps()
	}
	return string(m.caps)
}

func (m *Module) computeCaps() {
	feats := append([]string(nil), m.r.Features(router.ToServer)...)
	sort.Strings(feats)
	var sb strings.Builder
	sb.WriteString(m.server.Category + "/" + m.server.Type + "//" + m.server.Name + "<")
	for _, f := range feats {
		sb.WriteString(f + "<")
	}
	sum := sha1.Sum([]byte(sb.String()))
	m.caps = []byte(base64.StdEncoding.EncodeToString(sum[:]))
	m.capsDone = true
}

// StreamFeature returns the XEP-0115 <c/> element for stream features. Call
// it after every module has registered its features.
func (m *Module) StreamFeature() []byte {
	v := m.ver()
	return []byte("<c xmlns='" + NSCaps + "' hash='sha-1' node='" + CapsNode + "' ver='" + v + "'/>")
}
