// Package vcard implements XEP-0054 vcard-temp (a user gets and sets her own
// vCard, anyone gets a user's vCard from her bare JID) and the server side
// of XEP-0153 vCard-based avatars: the hash of the vCard photo is put into
// the user's available presence, as XEP-0398 §4 asks of servers.
//
// It is a module in the pipeline of docs/ARCHITECTURE.md. Its outbound
// presence hook must be registered before the roster module's, which
// broadcasts presence: the hash is in the presence the contacts receive.
//
// The presence rule is ejabberd's (mod_vcard_xupdate) and XEP-0398's: a
// client's <x xmlns='vcard-temp:x:update'> holding an empty <photo/> is
// left alone (the client says it has no avatar); any other update element
// the client put is replaced by the server's: <photo>SHA-1</photo> when the
// stored vCard has a photo, <photo/> when it has none, and an empty <x/>
// ("not ready") when no vCard is stored at all. Presence without one gets
// the server's added. This applies to broadcast and directed available
// presence alike.
//
// When a vCard set changes the photo hash, the module broadcasts again the
// current presence of each of the user's available resources, carrying the
// new hash: XEP-0153 leaves that to clients, but clients that upload the
// vCard without managing the hash themselves would otherwise leave contacts
// with the old avatar until their next presence change (ejabberd does the
// same). Directed presence is not repeated (XEP-0398 §5).
package vcard

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

// Namespaces.
const (
	// NS is the XEP-0054 namespace and disco feature.
	NS = "vcard-temp"
	// NSUpdate qualifies the XEP-0153 presence element.
	NSUpdate = "vcard-temp:x:update"
)

// Config is the <modules><vcard …/></modules> section.
type Config struct {
	conf.ModuleBase
	// MaxSize is the largest vCard a user may store (0: only the stanza
	// size limit applies).
	MaxSize conf.ByteSize `conf:"max-size"`
}

func init() {
	conf.RegisterModule("vcard", func() any { return &Config{MaxSize: 128 * conf.KiB} })
}

// Options configure the module.
type Options struct {
	// MaxSize is the largest vCard, in bytes, a user may store (0: no
	// limit of its own); a larger one is refused with <not-acceptable/>.
	MaxSize int
}

// Module is the vCard module.
type Module struct {
	r     *router.Router
	store storage.VCards
	log   *slog.Logger
	opts  Options

	locks [64]sync.Mutex // per owner (by hash): vCard sets

	gen    atomic.Uint64 // bumped by every change of the cache (see photo)
	mu     sync.RWMutex
	hashes map[string]photoState // bare JID → what presence carries, for accounts with sessions
}

// photoState is what the server knows of a user's avatar.
type photoState struct {
	stored bool   // a vCard is stored
	hash   string // its photo hash, "" for none
}

// New registers the module on r.
func New(r *router.Router, store storage.VCards, log *slog.Logger, opts Options) *Module {
	if log == nil {
		log = slog.Default()
	}
	m := &Module{r: r, store: store, log: log.With("module", "vcard"), opts: opts, hashes: make(map[string]photoState)}
	r.AddFeature(router.ToServer|router.ToBare, NS)
	r.HandleIQ("get", NS, router.ToBare, m.handleGet)
	r.HandleIQ("set", NS, router.ToBare, m.handleSet)
	r.OnOutbound(wire.KindPresence, m.outbound)
	r.OnUnbound(m.unbound)
	return m
}

func (m *Module) lock(owner string) func() {
	h := fnv.New32a()
	h.Write([]byte(owner))
	mu := &m.locks[h.Sum32()%uint32(len(m.locks))]
	mu.Lock()
	return mu.Unlock
}

// emptyVCard answers a user asking for her own vCard when none is stored
// (XEP-0054 §3.1 allows it, and clients handle it better than an error).
const emptyVCard = "<vCard xmlns='" + NS + "'/>"

func (m *Module) handleGet(c *router.Context) {
	if c.Stanza.PayloadName != "vCard" {
		c.Error("modify", "bad-request", "")
		return
	}
	owner := c.To.Bare().String()
	v, err := m.store.Get(c, owner)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		if c.From.Bare().Equal(c.To.Bare()) {
			c.Reply([]byte(emptyVCard))
			return
		}
		// §3.3: the same answer as for an account that does not exist.
		c.Error("cancel", "service-unavailable", "")
	case err != nil:
		m.log.Error("reading vCard failed", "owner", owner, "err", err)
		c.Error("wait", "internal-server-error", "")
	default:
		c.Reply(v.XML)
	}
}

func (m *Module) handleSet(c *router.Context) {
	if c.From.Localpart() == "" || !c.From.Bare().Equal(c.To.Bare()) {
		c.Error("auth", "forbidden", "") // §3.2: only her own
		return
	}
	st := c.Stanza
	if st.PayloadName != "vCard" {
		c.Error("modify", "bad-request", "")
		return
	}
	max := m.opts.MaxSize
	if max > 0 && len(st.Raw) > 2*max+1024 {
		// Far too large whatever the markup: not worth parsing.
		c.Error("modify", "not-acceptable", "The vCard is too large")
		return
	}
	parts, err := st.Parts(1)
	if err != nil || len(parts) == 0 {
		c.Error("modify", "bad-request", "")
		return
	}
	card := parts[0].XML
	if max > 0 && len(card) > max {
		c.Error("modify", "not-acceptable", "The vCard is too large")
		return
	}
	hash := PhotoHash(card)
	owner := c.To.Bare().String()
	unlock := m.lock(owner)
	before, err := m.photo(c, owner)
	if err == nil {
		err = m.store.Put(c, owner, storage.VCard{XML: card, PhotoHash: hash})
	}
	if err != nil {
		unlock()
		m.log.Error("storing vCard failed", "owner", owner, "err", err)
		c.Error("wait", "internal-server-error", "")
		return
	}
	after := photoState{stored: true, hash: hash}
	m.setPhoto(owner, after)
	unlock()
	c.Reply(nil)
	if before != after {
		m.rebroadcast(c, owner)
	}
}

// PhotoHash returns the XEP-0153 hash of a vCard's photo: the lowercase
// hex SHA-1 of the base64-decoded PHOTO/BINVAL, "" when there is none (or
// only an EXTVAL, or BINVAL is not base64).
func PhotoHash(card []byte) string {
	var v struct {
		Photo struct {
			BinVal string `xml:"BINVAL"`
		} `xml:"PHOTO"`
	}
	if err := xml.Unmarshal(card, &v); err != nil {
		return ""
	}
	b64 := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, v.Photo.BinVal)
	if b64 == "" {
		return ""
	}
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		if data, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(b64, "=")); err != nil {
			return ""
		}
	}
	sum := sha1.Sum(data)
	return hex.EncodeToString(sum[:])
}

// photo returns what presence should say of owner's avatar, from the
// cache or storage.
func (m *Module) photo(ctx context.Context, owner string) (photoState, error) {
	m.mu.RLock()
	p, ok := m.hashes[owner]
	m.mu.RUnlock()
	if ok {
		return p, nil
	}
	gen := m.gen.Load()
	h, err := m.store.PhotoHash(ctx, owner)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		p = photoState{}
	case err != nil:
		return p, err
	default:
		p = photoState{stored: true, hash: h}
	}
	// Keep it only for accounts with sessions (others are asked rarely),
	// and only if no change raced the read.
	if len(m.r.Resources(owner)) > 0 {
		m.mu.Lock()
		if m.gen.Load() == gen {
			m.hashes[owner] = p
		}
		m.mu.Unlock()
	}
	return p, nil
}

func (m *Module) setPhoto(owner string, p photoState) {
	m.mu.Lock()
	m.gen.Add(1)
	if len(m.r.Resources(owner)) > 0 {
		m.hashes[owner] = p
	} else {
		delete(m.hashes, owner)
	}
	m.mu.Unlock()
}

func (m *Module) unbound(s router.Session) {
	bare := s.JID().Bare().String()
	if len(m.r.Resources(bare)) > 0 {
		return
	}
	m.mu.Lock()
	m.gen.Add(1)
	delete(m.hashes, bare)
	m.mu.Unlock()
}

// rebroadcast routes the current presence of each of owner's available
// resources again, as if the client had sent it: the outbound hooks put the
// new hash in and the roster module broadcasts it.
func (m *Module) rebroadcast(ctx context.Context, owner string) {
	for _, s := range m.r.Available(owner) {
		p := s.Presence()
		if p == nil {
			continue
		}
		cp := *p
		cp.SetAddrs(s.JID().String(), "")
		m.r.Route(&router.Context{Context: ctx, Router: m.r, Stanza: &cp, From: s.JID(), Origin: s})
	}
}

// outbound puts the photo hash into available presence sent by a local
// session.
func (m *Module) outbound(c *router.Context) bool {
	st := c.Stanza
	if st.Type != "" || c.From.Localpart() == "" {
		return false
	}
	owner := c.From.Bare().String()
	p, err := m.photo(c, owner)
	if err != nil {
		m.log.Error("reading the vCard photo hash failed", "owner", owner, "err", err)
		return false
	}
	setUpdate(st, p)
	return false
}

// updateElement is the server's <x xmlns='vcard-temp:x:update'/> for p.
func updateElement(p photoState) []byte {
	switch {
	case !p.stored:
		return []byte("<x xmlns='" + NSUpdate + "'/>")
	case p.hash == "":
		return []byte("<x xmlns='" + NSUpdate + "'><photo/></x>")
	}
	return []byte("<x xmlns='" + NSUpdate + "'><photo>" + p.hash + "</photo></x>")
}

// setUpdate replaces the presence's vcard-temp:x:update elements by the
// server's, unless the client's says "no avatar" with an empty <photo/>.
func setUpdate(st *wire.Stanza, p photoState) {
	ours := updateElement(p)
	n := 0
	for ch := range st.Children() {
		if ch.NS != NSUpdate || ch.Name != "x" {
			continue
		}
		n++
		var x struct {
			Photo *string `xml:"photo"`
		}
		if err := xml.Unmarshal(ch.Raw, &x); err == nil && x.Photo != nil && strings.TrimSpace(*x.Photo) == "" {
			return // the client says it has no avatar (XEP-0398 §4)
		}
	}
	if n == 1 && bytes.Contains(st.Raw, ours) {
		return // already what the server would put
	}
	st.RemoveChildren(func(ch wire.Child) bool { return ch.NS == NSUpdate && ch.Name == "x" })
	st.Raw = wire.InsertChild(st.Raw, ours)
	if st.PayloadName == "" || (st.PayloadNS == NSUpdate && st.PayloadName == "x") {
		// The first child may have changed: keep the envelope true.
		for ch := range st.Children() {
			st.PayloadName, st.PayloadNS = ch.Name, ch.NS
			break
		}
	}
}

// Get returns owner's stored vCard element (for other modules, e.g. a PEP
// avatar conversion); storage.ErrNotFound if none.
func (m *Module) Get(ctx context.Context, owner string) ([]byte, error) {
	v, err := m.store.Get(ctx, owner)
	return v.XML, err
}
