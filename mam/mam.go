// Package mam is XEP-0313 Message Archive Management (urn:xmpp:mam:2) for
// user archives: it archives one-to-one messages for local accounts, stamps
// every message archived for its recipient with an XEP-0359 <stanza-id/>
// (the archive id, in the store's order: the order of truth), answers
// archive queries with XEP-0059 paging, keeps XEP-0441 preferences, applies
// XEP-0424 retractions as tombstones and deletes messages past the
// configured retention. See README.md.
package mam

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/offline"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

// Namespaces and disco features.
const (
	NS               = "urn:xmpp:mam:2"
	NSExtended       = "urn:xmpp:mam:2#extended"
	NSGroupchatField = "urn:xmpp:mam:2#groupchat-field"
	NSSID            = "urn:xmpp:sid:0"
	NSRetract        = "urn:xmpp:message-retract:1"
	NSTombstone      = NSRetract + "#tombstone"

	nsHints   = "urn:xmpp:hints"
	nsForward = "urn:xmpp:forward:0"
	nsDelay   = "urn:xmpp:delay"
	nsRSM     = "http://jabber.org/protocol/rsm"
	nsData    = "jabber:x:data"
	nsJMI     = "urn:xmpp:jingle-message:0"
	nsOMEMO   = "eu.siacs.conversations.axolotl"
	nsOMEMO2  = "urn:xmpp:omemo:2"
	nsOX      = "urn:xmpp:openpgp:0"
	nsPGP     = "jabber:x:encrypted"
)

// Config is the <modules><mam …/></modules> section.
type Config struct {
	conf.ModuleBase
	// MaxPage is the most results one query returns; a client asking more
	// (or not saying) gets this many.
	MaxPage int `conf:"max-page,min=1,max=10000"`
	// Default is the archiving default for users who set no preferences:
	// always, never or roster.
	Default string `conf:"default"`
	// Retention is how long messages are kept; 0 keeps them forever.
	Retention time.Duration `conf:"retention"`
	// CountLimit bounds the work spent on the RSM <count/> and index of a
	// result: they are given when the query matches at most this many
	// messages (0: never).
	CountLimit int `conf:"count-limit,min=0,max=1000000"`
	// QueueMessages and QueueBytes bound the archive writes waiting for a
	// commit (server-wide): a message that would pass either waits, in the
	// read loop of the session that sent it, so that session's socket is
	// not read meanwhile (backpressure). A single message larger than
	// QueueBytes is taken when nothing else waits.
	QueueMessages int           `conf:"queue-messages,min=1,max=1000000"`
	QueueBytes    conf.ByteSize `conf:"queue-bytes,min=65536"`
}

// Validate implements conf's module validation.
func (c *Config) Validate() error {
	switch c.Default {
	case "always", "never", "roster":
	default:
		return conf.AttrError("default", "%q is not always, never or roster", c.Default)
	}
	if c.Retention != 0 && c.Retention < time.Second {
		return conf.AttrError("retention", "must be 0 (forever) or at least 1s")
	}
	return nil
}

// DefaultConfig returns the defaults.
func DefaultConfig() *Config {
	return &Config{MaxPage: 100, Default: "always", CountLimit: 10000, QueueMessages: 8192, QueueBytes: 64 * conf.MiB}
}

func init() {
	conf.RegisterModule("mam", func() any { return DefaultConfig() })
}

// Module archives messages and serves the archives.
type Module struct {
	r       *router.Router
	archive storage.Archive
	roster  storage.Roster
	log     *slog.Logger
	cfg     Config

	// pageBytes bounds the results of one query in bytes (SetPageBytes).
	pageBytes int

	prefs     prefsCache
	resultID  atomic.Uint64
	lastSweep atomic.Int64 // unix nanoseconds of the last retention sweep

	// blocked, when set, tells whether an owner blocks a JID (SetBlocked).
	blocked func(ctx context.Context, owner string, from jid.JID) bool

	// writes are the archive writes not yet reported (see watch).
	writes struct {
		mu      sync.Mutex
		q       []pendingWrite
		spare   []pendingWrite // the reporter's last batch, for reuse
		running bool
	}
}

// pendingWrite is an archive write whose commit a stanza's routing holds.
type pendingWrite struct {
	res   <-chan error // from Archive.Enqueue
	out   chan error   // given to router.Context.Hold
	owner string
	what  string
}

// New registers the archive on r.
func New(r *router.Router, store storage.Store, log *slog.Logger, cfg *Config) *Module {
	if cfg == nil {
		cfg = DefaultConfig()
	}
	m := &Module{r: r, archive: store.Archive(), roster: store.Roster(), log: log, cfg: *cfg}
	if m.cfg.MaxPage <= 0 {
		m.cfg.MaxPage = 100
	}
	if m.cfg.Default == "" {
		m.cfg.Default = "always"
	}
	if m.cfg.QueueMessages == 0 {
		m.cfg.QueueMessages = DefaultConfig().QueueMessages
	}
	if m.cfg.QueueBytes == 0 {
		m.cfg.QueueBytes = DefaultConfig().QueueBytes
	}
	m.archive.SetQueueLimit(m.cfg.QueueMessages, int64(m.cfg.QueueBytes))
	m.pageBytes = 1 << 20
	r.AddFeature(router.ToBare, NS, NSExtended, NSGroupchatField, NSSID, NSRetract, NSTombstone)
	r.HandleIQ("set", NS, router.ToBare, m.handleSet)
	r.HandleIQ("get", NS, router.ToBare, m.handleGet)
	r.OnOutbound(wire.KindMessage, m.outbound)
	r.OnInbound(wire.KindMessage, m.inbound)
	m.maybeSweep()
	return m
}

type sentKey struct{}

// SentStanzaID returns the archive id under which the outbound hook
// archived the message being routed in ctx (a *router.Context), in the
// sender's own archive (by = the sender's bare JID). Carbons put it in the
// copies sent to the sender's other resources; it is never added to the
// message itself (XEP-0313 §"Communicating the archive ID").
func SentStanzaID(ctx context.Context) (string, bool) {
	s, ok := ctx.Value(sentKey{}).(*sent)
	if !ok {
		return "", false
	}
	return s.id, true
}

// sent is what the outbound hook leaves in the routing context: the
// sender's archive id, and the stored copy with the element it was made
// from, so that the inbound hook for a local recipient stores the same
// slice when the element did not change in between (the writer then
// encodes it once for both rows).
type sent struct {
	id         string
	raw        []byte // the stanza's Raw when it was archived
	standalone []byte // the copy archived
}

// standalone returns st's stored copy, the one the outbound hook made when
// st.Raw is still the slice it was made from (the wire package never edits
// an element in place: every edit makes a new slice).
func standalone(c *router.Context) []byte {
	st := c.Stanza
	if s, ok := c.Context.Value(sentKey{}).(*sent); ok && len(s.raw) == len(st.Raw) && len(st.Raw) > 0 && &s.raw[0] == &st.Raw[0] {
		return s.standalone
	}
	return st.Standalone()
}

// class is what archiving needs to know about a message.
type class struct {
	archive  bool   // worth archiving (content and hints)
	retract  string // XEP-0424 <retract id/> in a chat or normal message
	originID string // XEP-0359 origin-id
}

// classify reads a message's first-level children once. Archived: chat and
// normal messages with a body, an encrypted payload (OMEMO, OpenPGP) or a
// Jingle Message Initiation element, retractions, and anything with an
// XEP-0334 <store/> hint (a headline only then); never errors, groupchat,
// or anything with <no-store/> or <no-permanent-store/>.
func classify(st *wire.Stanza) class {
	var c class
	switch st.Type {
	case "", "normal", "chat", "headline":
	default:
		return c
	}
	var store, noStore, content bool
	for ch := range st.Children() {
		switch ch.NS {
		case wire.NSClient, wire.NSServer:
			content = content || ch.Name == "body"
		case nsHints:
			switch ch.Name {
			case "store":
				store = true
			case "no-store", "no-permanent-store":
				noStore = true
			}
		case nsOMEMO, nsOMEMO2:
			content = content || ch.Name == "encrypted"
		case nsOX:
			content = content || ch.Name == "openpgp"
		case nsPGP:
			content = content || ch.Name == "x"
		case nsJMI:
			switch ch.Name {
			case "propose", "ringing", "proceed", "reject", "retract", "finish", "accept":
				content = true
			}
		case NSRetract:
			if ch.Name == "retract" {
				content = true
				if id, ok := ch.Attr("id"); ok && st.Type != "headline" {
					c.retract = id
				}
			}
		case NSSID:
			if ch.Name == "origin-id" && c.originID == "" {
				c.originID, _ = ch.Attr("id")
			}
		}
	}
	switch {
	case noStore:
	case st.Type == "headline":
		c.archive = store
	default:
		c.archive = content || store
	}
	return c
}

// stripStanzaIDs removes <stanza-id/> elements claiming to be from the
// archive of bare (XEP-0359 §4: nobody else may add one with our 'by').
func stripStanzaIDs(st *wire.Stanza, bare string) {
	if !bytes.Contains(st.Raw, []byte("stanza-id")) {
		return
	}
	st.RemoveChildren(func(ch wire.Child) bool {
		if ch.Name != "stanza-id" || ch.NS != NSSID {
			return false
		}
		by, _ := ch.Attr("by")
		if by == bare {
			return true
		}
		j, err := jid.Parse(by)
		return err == nil && j.Bare().String() == bare
	})
}

// StanzaID is the <stanza-id/> element for an archive id in bare's archive.
func StanzaID(id, bare string) []byte {
	b := make([]byte, 0, 64+len(id)+len(bare))
	b = append(b, "<stanza-id xmlns='"+NSSID+"' by='"...)
	b = wire.AppendEscapedAttr(b, bare)
	b = append(b, "' id='"...)
	b = wire.AppendEscapedAttr(b, id)
	return append(b, "'/>"...)
}

// outbound archives a message in its sender's archive (a local session
// sent it; it may go anywhere).
func (m *Module) outbound(c *router.Context) bool {
	st := c.Stanza
	from := c.From.Bare()
	owner := from.String()
	stripStanzaIDs(st, owner)
	to := c.To
	switch {
	case to.Domainpart() == "", to.Bare().Equal(from):
		return false // to oneself: the inbound hook archives it, once
	case to.Localpart() == "" && m.r.IsLocal(to.Domainpart()):
		return false // to this server
	}
	cl := classify(st)
	ctx := context.WithoutCancel(c.Context)
	if cl.retract != "" {
		m.retract(ctx, owner, to.Bare().String(), true, cl.retract, st.ID)
	}
	if !cl.archive || !m.wants(ctx, owner, to) {
		return false
	}
	stored := st.Standalone()
	msg := []storage.ArchiveMessage{{Owner: owner, With: to.String(), Outgoing: true, MessageID: st.ID, OriginID: cl.originID, Stanza: stored}}
	res := m.archive.Enqueue(ctx, msg)
	if msg[0].Seq == 0 { // rejected at once
		m.log.Error("archiving a sent message failed", "owner", owner, "err", <-res)
		return false
	}
	c.Hold(m.watch(res, owner, "archiving a sent message failed"))
	c.Context = context.WithValue(c.Context, sentKey{}, &sent{id: FormatID(msg[0].Seq), raw: st.Raw, standalone: stored})
	m.maybeSweep()
	return false
}

// inbound archives a message for a local recipient and stamps the
// delivered copy with its <stanza-id/>.
func (m *Module) inbound(c *router.Context) bool {
	st := c.Stanza
	owner := c.To.Bare().String()
	stripStanzaIDs(st, owner)
	if c.From.Domainpart() == "" {
		return false
	}
	cl := classify(st)
	ctx := context.WithoutCancel(c.Context)
	if !cl.archive && cl.retract == "" {
		return false
	}
	if ok, err := m.r.CheckAccount(ctx, owner); !ok || err != nil {
		return false // no such account (or no answer): the router answers
	}
	if cl.retract != "" {
		m.retract(ctx, owner, c.From.Bare().String(), false, cl.retract, st.ID)
	}
	if !cl.archive || !m.wants(ctx, owner, c.From) {
		return false
	}
	msg := []storage.ArchiveMessage{{Owner: owner, With: c.From.String(), MessageID: st.ID, OriginID: cl.originID, Stanza: standalone(c)}}
	res := m.archive.Enqueue(ctx, msg)
	if msg[0].Seq == 0 { // rejected at once
		m.log.Error("archiving a received message failed", "owner", owner, "err", <-res)
		return false
	}
	c.Hold(m.watch(res, owner, "archiving a received message failed"))
	st.Raw = wire.InsertChild(st.Raw, StanzaID(FormatID(msg[0].Seq), owner))
	m.maybeSweep()
	return false
}

// watch returns a channel for router.Context.Hold that yields the result of
// the archive write res once it is committed, after logging a failure. One
// goroutine, running while writes are pending, takes them in order (commits
// are in the order of Enqueue), instead of one goroutine per message.
func (m *Module) watch(res <-chan error, owner, what string) <-chan error {
	out := make(chan error, 1)
	w := &m.writes
	w.mu.Lock()
	w.q = append(w.q, pendingWrite{res: res, out: out, owner: owner, what: what})
	if !w.running {
		w.running = true
		go m.reportWrites()
	}
	w.mu.Unlock()
	return out
}

func (m *Module) reportWrites() {
	w := &m.writes
	for {
		// Take everything queued at once (the two slices are swapped, so
		// neither is reallocated at load).
		w.mu.Lock()
		if len(w.q) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		batch := w.q
		w.q, w.spare = w.spare[:0], nil
		w.mu.Unlock()
		for i := range batch {
			p := &batch[i]
			err := <-p.res
			if err != nil {
				m.log.Error(p.what, "owner", p.owner, "err", err)
			}
			p.out <- err
			close(p.out)
		}
		clear(batch)
		w.mu.Lock()
		if cap(batch) <= maxSpareWrites {
			w.spare = batch[:0]
		}
		w.mu.Unlock()
	}
}

// maxSpareWrites bounds the reporter's spare queue kept for reuse.
const maxSpareWrites = 1 << 16

// retract replaces the message a retraction names with a tombstone: in
// owner's archive, the newest message in the given direction with withBare
// whose id or origin-id is id (so only its sender can retract it).
func (m *Module) retract(ctx context.Context, owner, withBare string, outgoing bool, id, retractionID string) {
	orig, err := m.archive.FindByMessageID(ctx, owner, withBare, outgoing, id)
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			m.log.Error("looking up a retracted message failed", "owner", owner, "err", err)
		}
		return
	}
	if !orig.Retracted.IsZero() {
		return
	}
	now := time.Now()
	if err := m.archive.Retract(ctx, owner, orig.Seq, Tombstone(orig, retractionID, now), now); err != nil && !errors.Is(err, storage.ErrNotFound) {
		m.log.Error("retracting an archived message failed", "owner", owner, "err", err)
	}
}

// Tombstone is what an archive keeps of a retracted message (XEP-0424
// §Tombstones, urn:xmpp:message-retract:1): the original envelope (from,
// to, type, id) and its origin-id, with a <retracted/> naming the
// retraction message's id and when it happened; the content is gone.
func Tombstone(orig storage.ArchiveMessage, retractionID string, at time.Time) []byte {
	b := make([]byte, 0, 256)
	b = append(b, "<message xmlns='jabber:client'"...)
	if st, err := wire.ParseElement(orig.Stanza, wire.NSClient); err == nil {
		for _, a := range [][2]string{{"from", st.From}, {"to", st.To}, {"type", st.Type}, {"id", st.ID}} {
			if a[1] != "" {
				b = append(b, ' ')
				b = append(b, a[0]...)
				b = append(b, "='"...)
				b = wire.AppendEscapedAttr(b, a[1])
				b = append(b, '\'')
			}
		}
	}
	b = append(b, "><retracted xmlns='"+NSRetract+"'"...)
	if retractionID != "" {
		b = append(b, " id='"...)
		b = wire.AppendEscapedAttr(b, retractionID)
		b = append(b, '\'')
	}
	b = append(b, " stamp='"...)
	b = append(b, stamp(at)...)
	b = append(b, "'/>"...)
	if orig.OriginID != "" {
		b = append(b, "<origin-id xmlns='"+NSSID+"' id='"...)
		b = wire.AppendEscapedAttr(b, orig.OriginID)
		b = append(b, "'/>"...)
	}
	return append(b, "</message>"...)
}

// stamp formats an XEP-0082 DateTime in UTC with milliseconds.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// wants applies owner's XEP-0441 preferences to a message to or from
// target: never list, always list, then the default.
func (m *Module) wants(ctx context.Context, owner string, target jid.JID) bool {
	p, err := m.prefs.get(ctx, m.archive, owner)
	if err != nil {
		m.log.Error("reading archiving preferences failed", "owner", owner, "err", err)
		p = storage.ArchivePrefs{}
	}
	if listed(p.Never, target) {
		return false
	}
	if listed(p.Always, target) {
		return true
	}
	def := p.Default
	if def == "" {
		def = m.cfg.Default
	}
	switch def {
	case "always":
		return true
	case "roster":
		it, err := m.roster.Item(ctx, owner, target.Bare().String())
		return err == nil && !it.Hidden
	}
	return false
}

// listed matches target against a preference list (XEP-0441 §JID
// matching): a listed full JID matches exactly, a bare one any resource.
func listed(list []string, target jid.JID) bool {
	if len(list) == 0 {
		return false
	}
	full, bare := target.String(), target.Bare().String()
	for _, j := range list {
		if j == full || j == bare {
			return true
		}
	}
	return false
}

// prefsCache keeps preferences read on the message path. A generation
// counter keeps a read that raced with a change from caching stale data.
type prefsCache struct {
	mu  sync.RWMutex // read-locked on every archived message
	gen uint64
	m   map[string]storage.ArchivePrefs
}

const prefsCacheMax = 10000

func (c *prefsCache) get(ctx context.Context, a storage.Archive, owner string) (storage.ArchivePrefs, error) {
	c.mu.RLock()
	p, ok := c.m[owner]
	gen := c.gen
	c.mu.RUnlock()
	if ok {
		return p, nil
	}
	p, err := a.Prefs(ctx, owner)
	if err != nil {
		return p, err
	}
	c.mu.Lock()
	if c.gen == gen {
		if c.m == nil || len(c.m) >= prefsCacheMax {
			c.m = make(map[string]storage.ArchivePrefs)
		}
		c.m[owner] = p
	}
	c.mu.Unlock()
	return p, nil
}

func (c *prefsCache) forget(owner string) {
	c.mu.Lock()
	delete(c.m, owner)
	c.gen++
	c.mu.Unlock()
}

// maybeSweep starts a retention sweep when the last one is older than the
// sweep interval. Sweeps are started by archive activity (archiving,
// queries) and once at startup; queries never show expired messages
// whether or not they were swept yet.
func (m *Module) maybeSweep() {
	if m.cfg.Retention <= 0 {
		return
	}
	every := min(max(m.cfg.Retention/10, time.Second), time.Hour)
	now := time.Now().UnixNano()
	last := m.lastSweep.Load()
	if now-last < int64(every) || !m.lastSweep.CompareAndSwap(last, now) {
		return
	}
	go func() {
		n, err := m.archive.DeleteBefore(context.Background(), time.Now().Add(-m.cfg.Retention))
		if err != nil {
			m.log.Warn("archive retention sweep failed", "err", err)
			return
		}
		if n > 0 {
			m.log.Info("archive retention sweep", "deleted", n)
		}
	}()
}

// Sweep deletes the messages past the retention now (for tests and
// administration); it returns how many it deleted.
func (m *Module) Sweep(ctx context.Context) (int64, error) {
	if m.cfg.Retention <= 0 {
		return 0, nil
	}
	m.lastSweep.Store(time.Now().UnixNano())
	return m.archive.DeleteBefore(ctx, time.Now().Add(-m.cfg.Retention))
}

// retentionStart is the oldest stamp a query may show (zero: no limit).
func (m *Module) retentionStart() time.Time {
	if m.cfg.Retention <= 0 {
		return time.Time{}
	}
	return time.Now().Add(-m.cfg.Retention)
}

// floodFilter implements the item-6 rule (README.md): installed on a
// session that queried its archive before initial presence, it tells the
// offline module which stored messages that session already had the
// chance to fetch from the archive.
type floodFilter struct {
	owner string
	hw    atomic.Int64 // the newest Seq in the archive at the session's last query
}

func (f *floodFilter) skip(msg storage.OfflineMessage) bool {
	hw := f.hw.Load()
	if hw == 0 {
		return false
	}
	st, err := wire.ParseElement(msg.Stanza, wire.NSClient)
	if err != nil {
		return false
	}
	for ch := range st.Children() {
		if ch.Name != "stanza-id" || ch.NS != NSSID {
			continue
		}
		if by, _ := ch.Attr("by"); by != f.owner {
			continue
		}
		id, _ := ch.Attr("id")
		seq, ok := ParseID(id)
		return ok && seq <= hw
	}
	return false
}

// noteQueryBeforePresence arms the item-6 rule for a session that has
// not sent initial presence: newest is the archive's newest Seq when the
// query began.
func (m *Module) noteQueryBeforePresence(s router.Session, owner string, newest int64) {
	f, _ := s.Value(floodKey{}).(*floodFilter)
	if f == nil {
		f = &floodFilter{owner: owner}
		s.SetValue(floodKey{}, f)
		s.SetValue(offline.SkipKey{}, offline.SkipFunc(f.skip))
	}
	for {
		old := f.hw.Load()
		if newest <= old || f.hw.CompareAndSwap(old, newest) {
			return
		}
	}
}

type floodKey struct{}
