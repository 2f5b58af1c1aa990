package roster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/router/routertest"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

// memRoster is an in-memory storage.Roster for tests. Like the SQLite one it
// refuses to write the roster of an account that does not exist.
type memRoster struct {
	mu       sync.Mutex
	accounts map[string]bool
	items    map[string]map[string]storage.RosterItem
	ver      map[string]uint64
}

func newMemRoster(accounts ...string) *memRoster {
	m := &memRoster{accounts: map[string]bool{}, items: map[string]map[string]storage.RosterItem{}, ver: map[string]uint64{}}
	for _, a := range accounts {
		m.accounts[a] = true
	}
	return m
}

func (m *memRoster) Exists(_ context.Context, bare string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.accounts[bare]
}

func cloneItem(it storage.RosterItem) storage.RosterItem {
	it.Groups = slices.Clone(it.Groups)
	it.PendingInXML = slices.Clone(it.PendingInXML)
	return it
}

func (m *memRoster) Items(_ context.Context, owner string) ([]storage.RosterItem, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []storage.RosterItem
	for _, it := range m.items[owner] {
		out = append(out, cloneItem(it))
	}
	slices.SortFunc(out, func(a, b storage.RosterItem) int { return strings.Compare(a.JID, b.JID) })
	return out, m.ver[owner], nil
}

func (m *memRoster) Item(_ context.Context, owner, contact string) (storage.RosterItem, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[owner][contact]
	if !ok {
		return storage.RosterItem{}, storage.ErrNotFound
	}
	return cloneItem(it), nil
}

func (m *memRoster) Put(_ context.Context, owner string, it storage.RosterItem) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.accounts[owner] {
		return 0, storage.ErrNotFound
	}
	if it.Subscription == "" {
		it.Subscription = storage.SubNone
	}
	it = cloneItem(it)
	slices.Sort(it.Groups)
	it.Groups = slices.Compact(it.Groups)
	if len(it.Groups) == 0 {
		it.Groups = nil
	}
	if len(it.PendingInXML) == 0 {
		it.PendingInXML = nil
	}
	if m.items[owner] == nil {
		m.items[owner] = map[string]storage.RosterItem{}
	}
	m.items[owner][it.JID] = it
	m.ver[owner]++
	return m.ver[owner], nil
}

func (m *memRoster) Remove(_ context.Context, owner, contact string) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.items[owner][contact]; !ok {
		return 0, storage.ErrNotFound
	}
	delete(m.items[owner], contact)
	m.ver[owner]++
	return m.ver[owner], nil
}

func (m *memRoster) Version(_ context.Context, owner string) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ver[owner], nil
}

// fakeSession records what a session is sent.
type fakeSession = routertest.Session

// spyDomain is a local domain whose traffic a test hook records instead of
// delivering: it stands for a contact's server, so that what the module
// routes to a contact can be observed exactly.
const spyDomain = "spy.example"

type env struct {
	t     *testing.T
	r     *router.Router
	store storage.Roster
	m     *Module

	mu  sync.Mutex
	spy []*wire.Stanza
	// offline counts SessionAvailable callbacks.
	available []router.Session
}

func newEnv(t *testing.T, opts Options, accounts ...string) *env {
	t.Helper()
	mem := newMemRoster(accounts...)
	return newEnvWith(t, opts, mem, mem)
}

// newEnvWith builds the test world over a given roster store.
func newEnvWith(t *testing.T, opts Options, store storage.Roster, accounts router.Accounts) *env {
	t.Helper()
	e := &env{t: t, store: store}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e.r = router.New(log, func(d string) bool { return d == "example.com" || d == spyDomain }, accounts)
	e.r.OnInbound(wire.KindPresence, func(c *router.Context) bool {
		if c.To.Domainpart() != spyDomain {
			return false
		}
		cp := *c.Stanza
		e.mu.Lock()
		e.spy = append(e.spy, &cp)
		e.mu.Unlock()
		return true
	})
	e.r.OnAvailable(func(s router.Session) {
		e.mu.Lock()
		e.available = append(e.available, s)
		e.mu.Unlock()
	})
	e.m = New(e.r, e.store, log, opts)
	return e
}

// spied returns and forgets what was routed to spyDomain.
func (e *env) spied() []*wire.Stanza {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.spy
	e.spy = nil
	return out
}

// bind makes a session as c2s does after resource binding.
func (e *env) bind(full string) *fakeSession {
	e.t.Helper()
	s := routertest.NewSession(jid.MustParse(full))
	if old := e.r.Bind(s); old != nil {
		old.Replace()
	}
	e.r.SessionBound(s)
	return s
}

// unbind ends a session as c2s does.
func (e *env) unbind(s *fakeSession) {
	e.r.Unbind(s)
	e.r.SessionUnbound(s)
}

// send routes raw as if s's client sent it (stamped as c2s does).
func (e *env) send(s *fakeSession, raw string) {
	e.t.Helper()
	st, err := wire.ParseElement([]byte(raw), wire.NSClient)
	if err != nil {
		e.t.Fatalf("bad test stanza %q: %v", raw, err)
	}
	var to jid.JID
	if st.To != "" {
		to, err = jid.Parse(st.To)
		if err != nil {
			e.t.Fatalf("bad to in %q: %v", raw, err)
		}
		st.SetAddrs(s.JID().String(), to.String())
	} else {
		st.SetAddrs(s.JID().String(), "")
	}
	e.r.Route(&router.Context{Context: context.Background(), Router: e.r, Stanza: st, From: s.JID(), To: to, Origin: s})
}

// deliver routes raw as if it came from another server (no origin session).
func (e *env) deliver(raw string) {
	e.t.Helper()
	st, err := wire.ParseElement([]byte(raw), wire.NSClient)
	if err != nil {
		e.t.Fatalf("bad test stanza %q: %v", raw, err)
	}
	e.r.Route(&router.Context{Context: context.Background(), Router: e.r, Stanza: st,
		From: jid.MustParse(st.From), To: jid.MustParse(st.To)})
}

// login binds a session, fetches the roster and sends initial presence.
func (e *env) login(full string) *fakeSession {
	e.t.Helper()
	s := e.bind(full)
	e.send(s, `<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>`)
	e.send(s, `<presence/>`)
	return s
}

func (e *env) put(owner string, it storage.RosterItem) {
	e.t.Helper()
	if _, err := e.store.Put(context.Background(), owner, it); err != nil {
		e.t.Fatal(err)
	}
}

// item returns the stored item (found false if none).
func (e *env) item(owner, contact string) (storage.RosterItem, bool) {
	it, err := e.store.Item(context.Background(), owner, contact)
	return it, err == nil
}

// filter keeps the stanzas of kind and type.
func filter(sts []*wire.Stanza, kind wire.Kind, typ string) []*wire.Stanza {
	var out []*wire.Stanza
	for _, st := range sts {
		if st.Kind == kind && st.Type == typ {
			out = append(out, st)
		}
	}
	return out
}

// pushes returns the roster pushes among sts, decoded.
func pushes(t *testing.T, sts []*wire.Stanza) []pushed {
	t.Helper()
	var out []pushed
	for _, st := range filter(sts, wire.KindIQ, "set") {
		if st.PayloadNS != NS {
			continue
		}
		var q struct {
			Query struct {
				Ver   *string `xml:"ver,attr"`
				Items []struct {
					JID          string   `xml:"jid,attr"`
					Name         string   `xml:"name,attr"`
					Subscription string   `xml:"subscription,attr"`
					Ask          string   `xml:"ask,attr"`
					Approved     string   `xml:"approved,attr"`
					Groups       []string `xml:"group"`
				} `xml:"item"`
			} `xml:"jabber:iq:roster query"`
		}
		if err := st.Decode(&q); err != nil {
			t.Fatalf("bad push %s: %v", st.Raw, err)
		}
		if len(q.Query.Items) != 1 {
			t.Fatalf("push with %d items: %s", len(q.Query.Items), st.Raw)
		}
		x := q.Query.Items[0]
		p := pushed{JID: x.JID, Name: x.Name, Sub: x.Subscription, Ask: x.Ask == "subscribe", Approved: x.Approved == "true", Groups: x.Groups}
		if q.Query.Ver != nil {
			p.Ver = *q.Query.Ver
		}
		out = append(out, p)
	}
	return out
}

type pushed struct {
	JID, Name, Sub string
	Ask, Approved  bool
	Groups         []string
	Ver            string
}

func (p pushed) String() string {
	return fmt.Sprintf("%s sub=%s ask=%v approved=%v groups=%v ver=%q", p.JID, p.Sub, p.Ask, p.Approved, p.Groups, p.Ver)
}
