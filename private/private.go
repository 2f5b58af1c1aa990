// Package private implements XEP-0049 Private XML Storage
// (jabber:iq:private): a user stores arbitrary XML on the server, one
// fragment per namespace, and gets it back by naming the namespace.
//
// It is a module in the pipeline of docs/ARCHITECTURE.md: New registers get
// and set handlers for iqs addressed to the user's own bare JID (or with no
// 'to'). Data lives in a storage.Private. Elements are stored in a
// standalone form (namespaces declared on each element, no prefixes left
// over from the stanza), one or more per namespace, and a get returns what
// the last set stored for that namespace.
//
// Other modules can read and write the store directly (the XEP-0402
// bookmarks #compat view reads and writes namespace "storage:bookmarks"),
// or take over a namespace entirely with Module.Handle.
package private

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"

	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

// NS is the XEP-0049 namespace.
const NS = "jabber:iq:private"

// NSBookmarks is the XEP-0048 namespace kept in private storage by older
// clients (XEP-0402 §5.3 #compat).
const NSBookmarks = "storage:bookmarks"

// Config is the <modules><private …/></modules> section.
type Config struct {
	conf.ModuleBase
	// MaxSize is the most XML one user may keep, all namespaces together
	// (0: no limit).
	MaxSize conf.ByteSize `conf:"max-size"`
}

func init() {
	conf.RegisterModule("private", func() any { return &Config{MaxSize: conf.MiB} })
}

// Options configure the module.
type Options struct {
	// MaxSize is the most XML, in bytes, one user may keep (0: no limit); a
	// set that would pass it is refused with <not-acceptable/>.
	MaxSize int
}

// Handler serves one namespace instead of the store (see Module.Handle).
type Handler interface {
	// GetPrivate returns the XML owner keeps under the namespace (one or
	// more complete elements); storage.ErrNotFound when there is none.
	GetPrivate(ctx context.Context, owner string) ([]byte, error)
	// SetPrivate replaces it with xml (complete elements qualified by the
	// namespace, written standalone).
	SetPrivate(ctx context.Context, owner string, xml []byte) error
}

// Module is the private XML storage module.
type Module struct {
	r     *router.Router
	store storage.Private
	log   *slog.Logger
	opts  Options

	hmu      sync.RWMutex
	handlers map[string]Handler
}

// New registers the module on r.
func New(r *router.Router, store storage.Private, log *slog.Logger, opts Options) *Module {
	if log == nil {
		log = slog.Default()
	}
	m := &Module{r: r, store: store, log: log.With("module", "private"), opts: opts, handlers: make(map[string]Handler)}
	r.HandleIQ("get", NS, router.ToBare, m.handleGet)
	r.HandleIQ("set", NS, router.ToBare, m.handleSet)
	return m
}

// Handle makes h serve namespace ns: gets and sets of ns go to h instead of
// the store (a PEP module can so keep XEP-0048 bookmarks in one place).
// Handle must be called before the server starts.
func (m *Module) Handle(ns string, h Handler) {
	m.hmu.Lock()
	m.handlers[ns] = h
	m.hmu.Unlock()
}

func (m *Module) handler(ns string) Handler {
	m.hmu.RLock()
	defer m.hmu.RUnlock()
	return m.handlers[ns]
}

// Reserved reports whether ns may not be used for private data: stanza
// and stream namespaces, and this protocol's own (XEP-0049 §2.3).
func Reserved(ns string) bool {
	switch ns {
	case "", "jabber:client", "jabber:server", NS, "http://etherx.jabber.org/streams":
		return true
	}
	return false
}

// request checks an iq and returns the elements inside its query.
func (m *Module) request(c *router.Context) ([]wire.Part, bool) {
	if c.From.Localpart() == "" || !c.From.Bare().Equal(c.To.Bare()) {
		c.Error("auth", "forbidden", "") // §2.3: another user's data
		return nil, false
	}
	if c.Stanza.PayloadName != "query" {
		c.Error("modify", "bad-request", "")
		return nil, false
	}
	parts, err := c.Stanza.Parts(2)
	if err != nil {
		c.Error("modify", "bad-request", "")
		return nil, false
	}
	if len(parts) == 0 {
		c.Error("modify", "not-acceptable", "The query needs a child element with its own namespace")
		return nil, false
	}
	for _, e := range parts {
		if Reserved(e.Name.Space) {
			c.Error("modify", "not-acceptable", "Reserved namespace")
			return nil, false
		}
	}
	return parts, true
}

func (m *Module) handleGet(c *router.Context) {
	els, ok := m.request(c)
	if !ok {
		return
	}
	ns := els[0].Name.Space
	for _, e := range els[1:] {
		if e.Name.Space != ns {
			c.Error("modify", "bad-request", "One namespace per request")
			return
		}
	}
	owner := c.To.Bare().String()
	var data []byte
	var err error
	if h := m.handler(ns); h != nil {
		data, err = h.GetPrivate(c, owner)
	} else {
		data, err = m.store.Get(c, owner, ns)
	}
	switch {
	case errors.Is(err, storage.ErrNotFound):
		data = els[0].XML // nothing stored: the element as asked for
	case err != nil:
		m.log.Error("reading private XML failed", "owner", owner, "ns", ns, "err", err)
		c.Error("wait", "internal-server-error", "")
		return
	}
	b := make([]byte, 0, len(data)+48)
	b = append(b, "<query xmlns='"+NS+"'>"...)
	b = append(b, data...)
	b = append(b, "</query>"...)
	c.Reply(b)
}

func (m *Module) handleSet(c *router.Context) {
	els, ok := m.request(c)
	if !ok {
		return
	}
	// One item per namespace, its elements in the order given.
	var items []storage.PrivateItem
	index := make(map[string]int)
	for _, e := range els {
		i, ok := index[e.Name.Space]
		if !ok {
			i = len(items)
			index[e.Name.Space] = i
			items = append(items, storage.PrivateItem{NS: e.Name.Space})
		}
		items[i].XML = append(items[i].XML, e.XML...)
	}
	owner := c.To.Bare().String()
	stored := items[:0:0]
	for _, it := range items {
		if h := m.handler(it.NS); h != nil {
			if err := h.SetPrivate(c, owner, it.XML); err != nil {
				m.log.Error("storing private XML failed", "owner", owner, "ns", it.NS, "err", err)
				c.Error("wait", "internal-server-error", "")
				return
			}
			continue
		}
		stored = append(stored, it)
	}
	if len(stored) > 0 {
		err := m.store.Put(c, owner, stored, m.opts.MaxSize)
		switch {
		case errors.Is(err, storage.ErrQuotaExceeded):
			c.Error("modify", "not-acceptable", "Private storage is limited to "+strconv.Itoa(m.opts.MaxSize)+" bytes")
			return
		case err != nil:
			m.log.Error("storing private XML failed", "owner", owner, "err", err)
			c.Error("wait", "internal-server-error", "")
			return
		}
	}
	c.Reply(nil)
}
