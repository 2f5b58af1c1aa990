package pep

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

// Namespaces.
const (
	NSPubSub         = "http://jabber.org/protocol/pubsub"
	NSOwner          = NSPubSub + "#owner"
	NSEvent          = NSPubSub + "#event"
	NSErrors         = NSPubSub + "#errors"
	NSNodeConfig     = NSPubSub + "#node_config"
	NSPublishOptions = NSPubSub + "#publish-options"
	nsDelay          = "urn:xmpp:delay"
	nsAddress        = "http://jabber.org/protocol/address"
)

// Features lists the disco features the module adds to accounts
// (XEP-0060 §10), only those it implements, and the XEP-0402 #compat ones.
var Features = []string{
	NSPubSub,
	NSPubSub + "#access-open",
	NSPubSub + "#access-presence",
	NSPubSub + "#access-roster",
	NSPubSub + "#access-whitelist",
	NSPubSub + "#auto-create",
	NSPubSub + "#auto-subscribe",
	NSPubSub + "#config-node",
	NSPubSub + "#config-node-max",
	NSPubSub + "#create-and-configure",
	NSPubSub + "#create-nodes",
	NSPubSub + "#delete-items",
	NSPubSub + "#delete-nodes",
	NSPubSub + "#filtered-notifications",
	NSPubSub + "#item-ids",
	NSPubSub + "#last-published",
	NSPubSub + "#multi-items",
	NSPubSub + "#persistent-items",
	NSPubSub + "#presence-notifications",
	NSPubSub + "#publish",
	NSPubSub + "#publish-options",
	NSPubSub + "#purge-nodes",
	NSPubSub + "#retract-items",
	NSPubSub + "#retrieve-default",
	NSPubSub + "#retrieve-items",
	NSBookmarks + "#compat-pep",
}

// Config is the <modules><pep …/></modules> section.
type Config struct {
	conf.ModuleBase
	// MaxItems is the most items one node keeps: the value of
	// pubsub#max_items 'max'.
	MaxItems int `conf:"max-items,min=1,max=100000"`
	// MaxItemSize is the largest item payload accepted.
	MaxItemSize conf.ByteSize `conf:"max-item-size"`
	// MaxNodes is the most nodes one account may have; 0 = no limit.
	MaxNodes int `conf:"max-nodes,min=0"`
}

// Validate implements the conf module validation hook.
func (c *Config) Validate() error {
	if c.MaxItemSize < 1024 {
		return conf.AttrError("max-item-size", "must be at least 1024 bytes")
	}
	return nil
}

// Options returns the module options the section describes.
func (c *Config) Options() Options {
	return Options{MaxItems: c.MaxItems, MaxItemSize: int(c.MaxItemSize), MaxNodes: c.MaxNodes}
}

func init() {
	conf.RegisterModule("pep", func() any {
		return &Config{MaxItems: DefaultMaxItems, MaxItemSize: DefaultMaxItemSize, MaxNodes: DefaultMaxNodes}
	})
}

// Defaults of Options (and of the configuration section).
const (
	DefaultMaxItems     = 1000
	DefaultMaxItemSize  = 128 * 1024
	DefaultMaxNodes     = 256
	DefaultCapsCache    = 4096
	DefaultQueryTimeout = 30 * time.Second
)

// Options configure the module. Zero values take the defaults above
// (MaxNodes 0 means no limit).
type Options struct {
	// MaxItems is the most items a node keeps; pubsub#max_items 'max'
	// means this, and larger numbers are refused.
	MaxItems int
	// MaxItemSize is the largest item payload, in bytes.
	MaxItemSize int
	// MaxNodes is the most nodes one account may have (0: no limit).
	MaxNodes int
	// Private, when set, is the XEP-0049 store whose storage:bookmarks
	// namespace is kept in step with the XEP-0402 bookmarks (#compat).
	Private storage.Private
	// CapsCacheSize bounds the process-wide cache of verified XEP-0115
	// verification strings.
	CapsCacheSize int
	// QueryTimeout bounds a disco#info query for caps.
	QueryTimeout time.Duration
}

// Module is the PEP service of every local account.
type Module struct {
	r       *router.Router
	store   storage.PubSub
	roster  storage.Roster
	private storage.Private
	log     *slog.Logger
	opts    Options

	locks [64]sync.Mutex // per owner (by hash): every change to an owner's nodes

	caps   *capsCache
	capsMu sync.Mutex // creation of sessionCaps values

	idPrefix string
	seq      atomic.Uint64
}

// New registers the PEP module on r: pubsub and pubsub#owner iq handlers
// on accounts' bare JIDs, disco#info and disco#items on bare JIDs (the
// account identity plus pubsub/pep, and the nodes), and an available
// callback that reads caps and sends last published items.
func New(r *router.Router, store storage.PubSub, roster storage.Roster, log *slog.Logger, opts Options) *Module {
	if log == nil {
		log = slog.Default()
	}
	if opts.MaxItems <= 0 {
		opts.MaxItems = DefaultMaxItems
	}
	if opts.MaxItemSize <= 0 {
		opts.MaxItemSize = DefaultMaxItemSize
	}
	if opts.CapsCacheSize <= 0 {
		opts.CapsCacheSize = DefaultCapsCache
	}
	if opts.QueryTimeout <= 0 {
		opts.QueryTimeout = DefaultQueryTimeout
	}
	var rb [6]byte
	_, _ = rand.Read(rb[:])
	m := &Module{
		r:        r,
		store:    store,
		roster:   roster,
		private:  opts.Private,
		log:      log.With("module", "pep"),
		opts:     opts,
		caps:     newCapsCache(opts.CapsCacheSize),
		idPrefix: "pep-" + hex.EncodeToString(rb[:]) + "-",
	}
	r.HandleIQ("get", NSPubSub, router.ToBare, m.pubsubGet)
	r.HandleIQ("set", NSPubSub, router.ToBare, m.pubsubSet)
	r.HandleIQ("get", NSOwner, router.ToBare, m.ownerGet)
	r.HandleIQ("set", NSOwner, router.ToBare, m.ownerSet)
	// The account's disco answers gain the pubsub/pep identity and the
	// nodes (see disco.go).
	r.HandleIQ("get", nsDiscoInfo, router.ToBare, m.discoInfo)
	r.HandleIQ("get", nsDiscoItems, router.ToBare, m.discoItems)
	r.AddFeature(router.ToBare, Features...)
	if m.private != nil {
		r.AddFeature(router.ToBare, NSBookmarks+"#compat")
	}
	r.OnAvailable(m.available)
	r.OnInbound(wire.KindPresence, m.inboundPresence)
	return m
}

// inboundPresence sees the presence a local session broadcasts as it
// reaches each contact (XEP-0163: the contact's PEP service receives it):
// a change of caps is picked up at once. It never consumes the stanza.
func (m *Module) inboundPresence(c *router.Context) bool {
	st := c.Stanza
	if st.Type != "" || c.Origin != nil {
		return false
	}
	from := c.From
	if from.Resourcepart() == "" || !m.r.IsHost(from.Domainpart()) {
		return false // remote contacts: their caps are not tracked yet
	}
	if s := m.r.Resource(from.Bare().String(), from.Resourcepart()); s != nil {
		m.interest(s)
	}
	return false
}

// goResolve runs background work (caps queries, last items): never on a
// session's reader, which may be the one to answer a query.
func (m *Module) goResolve(fn func()) { go fn() }

// lock serializes changes to one owner's nodes. Locks are never nested.
func (m *Module) lock(owner string) func() {
	h := fnv.New32a()
	h.Write([]byte(owner))
	mu := &m.locks[h.Sum32()%uint32(len(m.locks))]
	mu.Lock()
	return mu.Unlock
}

// newID returns a fresh item ID.
func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// msgID returns a fresh notification id (XEP-0060 §12.8: unique per service).
func (m *Module) msgID() string {
	return m.idPrefix + strconv.FormatUint(m.seq.Add(1), 36)
}

// available runs when a session sent its initial presence: its caps are
// read (and resolved), which sends it the last published items it wants;
// the owner's legacy bookmarks are checked against XEP-0402 ones.
func (m *Module) available(s router.Session) {
	m.initialPresence(s)
	if m.private != nil {
		owner := s.JID().Bare().String()
		m.goResolve(func() { m.checkPrivate(owner) })
	}
}

// fail answers c's iq with a stanza error carrying a pubsub#errors
// condition app (and its 'feature' attribute when feature is set).
func fail(c *router.Context, errType, cond, app, feature string) {
	if app == "" {
		c.Error(errType, cond, "")
		return
	}
	st := *c.Stanza
	st.From, st.To = c.From.String(), c.To.String()
	raw := wire.ErrorReply(&st, errType, cond, "")
	if raw == nil {
		return
	}
	extra := []byte("<" + app + " xmlns='" + NSErrors + "'")
	if feature != "" {
		extra = wire.AppendAttr(extra, "feature", feature)
	}
	extra = append(extra, "/>"...)
	i := bytes.LastIndex(raw, []byte("</error>"))
	out := make([]byte, 0, len(raw)+len(extra))
	out = append(out, raw[:i]...)
	out = append(out, extra...)
	out = append(out, raw[i:]...)
	if c.Origin != nil && c.Origin.JID().Equal(c.From) {
		c.Origin.Send(out)
		return
	}
	c.Router.DeliverRaw(c.From, out)
}

// unsupported answers feature-not-implemented with <unsupported feature/>.
func unsupported(c *router.Context, feature string) {
	fail(c, "cancel", "feature-not-implemented", "unsupported", feature)
}
