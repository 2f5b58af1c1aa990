package pep

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/beevik/etree"
	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/wire"
)

// XEP-0115 entity capabilities, as far as PEP needs them: which nodes a
// session wants notifications for (NODE+notify features, XEP-0163 §4.4).
//
// A session's caps are read from its last broadcast presence
// (router.Session.Presence) whenever that presence changes. An unknown
// verification string is resolved with a disco#info query to the session
// (router.Query), verified (XEP-0115 §5.4), and cached process-wide by
// hash and ver; one query per ver runs at a time, and sessions showing the
// same ver meanwhile wait for its answer. An answer that does not verify
// (or uses a hash we do not know, or no hash: the legacy format) serves
// only the session that gave it.

// NSCaps is the XEP-0115 namespace.
const NSCaps = "http://jabber.org/protocol/caps"

const (
	nsDiscoInfo  = "http://jabber.org/protocol/disco#info"
	nsDiscoItems = "http://jabber.org/protocol/disco#items"
	notifySuffix = "+notify"
)

// caps is a parsed <c xmlns='http://jabber.org/protocol/caps'/>.
type caps struct {
	Hash string `xml:"hash,attr"`
	Node string `xml:"node,attr"`
	Ver  string `xml:"ver,attr"`
}

// newHash returns the hash function a 'hash' attribute names (IANA names),
// or nil.
func newHash(name string) func() hash.Hash {
	switch name {
	case "sha-1":
		return sha1.New
	case "sha-224":
		return sha256.New224
	case "sha-256":
		return sha256.New
	case "sha-384":
		return sha512.New384
	case "sha-512":
		return sha512.New
	}
	return nil
}

// key identifies what the caps claim: hash and ver when the ver can be
// verified (then it may be cached), else the node as well.
func (c caps) key() string {
	if newHash(c.Hash) != nil {
		return c.Hash + " " + c.Ver
	}
	return "? " + c.Hash + " " + c.Node + " " + c.Ver
}

func (c caps) verifiable() bool { return newHash(c.Hash) != nil }

// parseCaps reads the caps element of a presence; ok is false when there
// is none.
func parseCaps(p *wire.Stanza) (caps, bool) {
	if !bytes.Contains(p.Raw, []byte(NSCaps)) || !p.HasChild(NSCaps, "c") {
		return caps{}, false
	}
	var v struct {
		C caps `xml:"http://jabber.org/protocol/caps c"`
	}
	if err := p.Decode(&v); err != nil || v.C.Ver == "" {
		return caps{}, false
	}
	return v.C, true
}

// capsEntry is what one disco#info answer told.
type capsEntry struct {
	features []string        // sorted
	notify   map[string]bool // nodes with NODE+notify
}

func (e *capsEntry) wants(node string) bool { return e != nil && e.notify[node] }

func newCapsEntry(features []string) *capsEntry {
	e := &capsEntry{features: features, notify: map[string]bool{}}
	for _, f := range features {
		if n, ok := strings.CutSuffix(f, notifySuffix); ok && n != "" {
			e.notify[n] = true
		}
	}
	return e
}

// notifyNodes returns the nodes e wants and old did not, sorted.
func (e *capsEntry) notifyNodes(old *capsEntry) []string {
	var out []string
	for n := range e.notify {
		if !old.wants(n) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// discoInfo is a parsed disco#info answer.
type discoInfo struct {
	identities []string // "category/type/lang/name"
	features   []string
	forms      []discoForm
	illFormed  bool
}

type discoForm struct {
	formType string
	fields   [][]string // var followed by its values
}

// readDiscoInfo parses the <query/> of a disco#info result.
func readDiscoInfo(q *etree.Element) discoInfo {
	var d discoInfo
	seenID, seenF, seenForm := map[string]bool{}, map[string]bool{}, map[string]bool{}
	check := func(s string) {
		if strings.Contains(s, "<") {
			// '<' is the separator of the verification string: a value
			// carrying one makes S ambiguous (XEP-0115 §8.4 poisoning).
			d.illFormed = true
		}
	}
	for _, e := range q.ChildElements() {
		switch {
		case e.Tag == "identity" && e.NamespaceURI() == nsDiscoInfo:
			lang := ""
			for _, a := range e.Attr {
				if a.Space == "xml" && a.Key == "lang" {
					lang = a.Value
				}
			}
			cat, typ, name := attr(e, "category"), attr(e, "type"), attr(e, "name")
			for _, s := range []string{cat, typ, lang, name} {
				check(s)
			}
			if strings.Contains(cat+typ+lang, "/") {
				d.illFormed = true // '/' separates them in S
			}
			id := cat + "/" + typ + "/" + lang + "/" + name
			if seenID[id] {
				d.illFormed = true
			}
			seenID[id] = true
			d.identities = append(d.identities, id)
		case e.Tag == "feature" && e.NamespaceURI() == nsDiscoInfo:
			f := attr(e, "var")
			check(f)
			if seenF[f] {
				d.illFormed = true
			}
			seenF[f] = true
			d.features = append(d.features, f)
		case e.Tag == "x" && e.NamespaceURI() == NSData:
			var form discoForm
			hidden, types := false, 0
			for _, fe := range children(e, NSData, "field") {
				name := attr(fe, "var")
				var values []string
				for _, v := range children(fe, NSData, "value") {
					values = append(values, v.Text())
				}
				if name == "FORM_TYPE" {
					types++
					hidden = attr(fe, "type") == "hidden"
					for _, v := range values[min(1, len(values)):] {
						if v != values[0] {
							d.illFormed = true
						}
					}
					if len(values) > 0 {
						form.formType = values[0]
					}
					continue
				}
				check(name)
				for _, v := range values {
					check(v)
				}
				form.fields = append(form.fields, append([]string{name}, values...))
			}
			if types != 1 || !hidden || form.formType == "" {
				continue // §5.4 3.6: ignored, processing goes on
			}
			check(form.formType)
			if seenForm[form.formType] {
				d.illFormed = true
			}
			seenForm[form.formType] = true
			d.forms = append(d.forms, form)
		}
	}
	return d
}

// verificationString builds S (XEP-0115 §5.1).
func (d *discoInfo) verificationString() string {
	var sb strings.Builder
	ids := slices.Clone(d.identities)
	sort.Strings(ids)
	for _, id := range ids {
		sb.WriteString(id)
		sb.WriteByte('<')
	}
	fs := slices.Clone(d.features)
	sort.Strings(fs)
	for _, f := range fs {
		sb.WriteString(f)
		sb.WriteByte('<')
	}
	forms := slices.Clone(d.forms)
	sort.Slice(forms, func(i, j int) bool { return forms[i].formType < forms[j].formType })
	for _, f := range forms {
		sb.WriteString(f.formType)
		sb.WriteByte('<')
		fields := slices.Clone(f.fields)
		sort.Slice(fields, func(i, j int) bool { return fields[i][0] < fields[j][0] })
		for _, fl := range fields {
			sb.WriteString(fl[0])
			sb.WriteByte('<')
			values := slices.Clone(fl[1:])
			sort.Strings(values)
			for _, v := range values {
				sb.WriteString(v)
				sb.WriteByte('<')
			}
		}
	}
	return sb.String()
}

// verify reports whether the answer hashes to c.Ver.
func (d *discoInfo) verify(c caps) bool {
	h := newHash(c.Hash)
	if h == nil || d.illFormed {
		return false
	}
	sum := h()
	sum.Write([]byte(d.verificationString()))
	return base64.StdEncoding.EncodeToString(sum.Sum(nil)) == c.Ver
}

// capsCache holds verified entries (bounded, least recently used out) and
// the queries in flight.
type capsCache struct {
	mu      sync.Mutex
	max     int
	entries map[string]*list.Element // value: *cached
	lru     list.List
	flights map[string]*flight
}

type cached struct {
	key   string
	entry *capsEntry
}

// flight is a disco#info query under way for one ver, with the sessions
// waiting for its answer.
type flight struct {
	waiters []router.Session
}

func newCapsCache(max int) *capsCache {
	return &capsCache{max: max, entries: map[string]*list.Element{}, flights: map[string]*flight{}}
}

// getLocked returns a cached entry (c.mu held).
func (c *capsCache) getLocked(key string) *capsEntry {
	el, ok := c.entries[key]
	if !ok {
		return nil
	}
	c.lru.MoveToFront(el)
	return el.Value.(*cached).entry
}

func (c *capsCache) putLocked(key string, e *capsEntry) {
	if el, ok := c.entries[key]; ok {
		el.Value.(*cached).entry = e
		c.lru.MoveToFront(el)
		return
	}
	c.entries[key] = c.lru.PushFront(&cached{key, e})
	for c.lru.Len() > c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.entries, old.Value.(*cached).key)
	}
}

// Len returns the number of cached entries.
func (c *capsCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// sessionCaps is the caps state kept on a session (router.Session.Value).
type sessionCaps struct {
	mu    sync.Mutex
	pres  *wire.Stanza // the presence last looked at
	key   string       // caps.key() of the last caps seen ("" none)
	entry *capsEntry   // what the session wants (the previous caps' until new ones resolve)
	// ready is set once the session's initial presence was handled
	// (available): from then on, what it newly wants is sent to it as it
	// is learnt; before, available sends everything at once.
	ready bool
}

type sessionCapsKey struct{}

func (m *Module) sessionCaps(s router.Session) *sessionCaps {
	if v, ok := s.Value(sessionCapsKey{}).(*sessionCaps); ok {
		return v
	}
	m.capsMu.Lock()
	defer m.capsMu.Unlock()
	if v, ok := s.Value(sessionCapsKey{}).(*sessionCaps); ok {
		return v
	}
	v := &sessionCaps{}
	s.SetValue(sessionCapsKey{}, v)
	return v
}

// interest returns what s currently wants notifications for (nil: nothing,
// or not known yet). When the session's presence carries caps not seen
// before, they are looked up or resolved; whenever what a ready session
// wants grows, the last items of the new nodes are sent to it (XEP-0163
// §4.3.3). A presence without caps keeps the caps seen before.
func (m *Module) interest(s router.Session) *capsEntry {
	p := s.Presence()
	if p == nil {
		return nil
	}
	sc := m.sessionCaps(s)
	sc.mu.Lock()
	if sc.pres == p {
		e := sc.entry
		sc.mu.Unlock()
		return e
	}
	sc.pres = p
	c, ok := parseCaps(p)
	if !ok || c.key() == sc.key {
		e := sc.entry
		sc.mu.Unlock()
		return e
	}
	key := c.key()
	sc.key = key
	if c.verifiable() {
		m.caps.mu.Lock()
		if e := m.caps.getLocked(key); e != nil {
			m.caps.mu.Unlock()
			old, ready := sc.entry, sc.ready
			sc.entry = e
			sc.mu.Unlock()
			if ready {
				m.interestChanged(s, e, old)
			}
			return e
		}
		// Unknown: join the query in flight, or start one.
		f, start := m.caps.flights[key], false
		if f != nil {
			f.waiters = append(f.waiters, s)
		} else {
			f, start = &flight{}, true
			m.caps.flights[key] = f
		}
		m.caps.mu.Unlock()
		e := sc.entry
		sc.mu.Unlock()
		if start {
			m.goResolve(func() { m.resolveShared(key, c, s, f) })
		}
		return e
	}
	e := sc.entry
	sc.mu.Unlock()
	m.goResolve(func() { m.resolveOwn(key, c, s) })
	return e
}

// interestChanged sends the last items of the nodes a session newly wants.
func (m *Module) interestChanged(s router.Session, e, old *capsEntry) {
	if nodes := e.notifyNodes(old); len(nodes) > 0 {
		m.goResolve(func() { m.sendLast(s, nodes) })
	}
}

// setEntry records the resolved entry for a session if its caps are still
// key.
func (m *Module) setEntry(s router.Session, key string, e *capsEntry) {
	sc := m.sessionCaps(s)
	sc.mu.Lock()
	if sc.key != key {
		sc.mu.Unlock()
		return
	}
	old, ready := sc.entry, sc.ready
	sc.entry = e
	sc.mu.Unlock()
	if ready {
		m.interestChanged(s, e, old)
	}
}

// initialPresence marks the session ready and sends it the last items of
// everything it wants (the rest follows when its caps resolve).
func (m *Module) initialPresence(s router.Session) {
	m.interest(s)
	sc := m.sessionCaps(s)
	sc.mu.Lock()
	sc.ready = true
	e := sc.entry
	sc.mu.Unlock()
	if e != nil {
		m.interestChanged(s, e, nil)
	}
}

// resolveShared queries first about a verifiable ver; when its answer does
// not verify, the next session waiting on the same ver is asked (three
// tries in all). A verified answer is cached and given to every waiter.
func (m *Module) resolveShared(key string, c caps, first router.Session, f *flight) {
	s := first
	for tries := 1; ; tries++ {
		d, ok := m.discover(s, c)
		if ok && d.verify(c) {
			e := newCapsEntry(sortedUnique(d.features))
			m.caps.mu.Lock()
			m.caps.putLocked(key, e)
			waiters := f.waiters
			delete(m.caps.flights, key)
			m.caps.mu.Unlock()
			m.setEntry(s, key, e)
			for _, w := range waiters {
				m.setEntry(w, key, e)
			}
			return
		}
		if ok {
			// Not verified: good enough for the session that said it.
			m.setEntry(s, key, newCapsEntry(sortedUnique(d.features)))
		}
		m.caps.mu.Lock()
		if len(f.waiters) == 0 || tries >= 3 {
			delete(m.caps.flights, key)
			m.caps.mu.Unlock()
			return
		}
		s = f.waiters[0]
		f.waiters = f.waiters[1:]
		m.caps.mu.Unlock()
	}
}

// resolveOwn queries a session whose caps cannot be verified and keeps the
// answer for that session only.
func (m *Module) resolveOwn(key string, c caps, s router.Session) {
	if d, ok := m.discover(s, c); ok {
		m.setEntry(s, key, newCapsEntry(sortedUnique(d.features)))
	}
}

// discover sends the disco#info query for node#ver to the session.
func (m *Module) discover(s router.Session, c caps) (discoInfo, bool) {
	full := s.JID()
	if m.r.Resource(full.Bare().String(), full.Resourcepart()) != s {
		return discoInfo{}, false
	}
	from, err := jid.New("", full.Domainpart(), "")
	if err != nil {
		return discoInfo{}, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.QueryTimeout)
	defer cancel()
	payload := wire.AppendAttr([]byte("<query xmlns='"+nsDiscoInfo+"'"), "node", c.Node+"#"+c.Ver)
	payload = append(payload, "/>"...)
	ans, err := m.r.Query(ctx, from, full, "get", payload)
	if err != nil || ans.Type != "result" {
		return discoInfo{}, false
	}
	root, err := ans.Element()
	if err != nil {
		return discoInfo{}, false
	}
	q := child(root, nsDiscoInfo, "query")
	if q == nil {
		return discoInfo{}, false
	}
	return readDiscoInfo(q), true
}

func sortedUnique(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return slices.Compact(s)
}
