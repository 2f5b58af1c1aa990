package blocking

import (
	"context"
	"encoding/xml"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/roster"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/sqlite"
	"github.com/xmppd/xmppd/wire"
)

// fakeSession is a router.Session that records what it is sent.
type fakeSession struct {
	router.Values
	j jid.JID

	mu         sync.Mutex
	got        [][]byte
	presence   *wire.Stanza
	priority   int
	interested bool
}

func (s *fakeSession) JID() jid.JID { return s.j }
func (s *fakeSession) Send(raw []byte) bool {
	s.mu.Lock()
	s.got = append(s.got, raw)
	s.mu.Unlock()
	return true
}
func (s *fakeSession) Presence() *wire.Stanza {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.presence
}
func (s *fakeSession) Priority() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.priority
}
func (s *fakeSession) SetPresence(p *wire.Stanza, prio int) {
	s.mu.Lock()
	s.presence, s.priority = p, prio
	s.mu.Unlock()
}
func (s *fakeSession) Interested() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.interested
}
func (s *fakeSession) SetInterested() {
	s.mu.Lock()
	s.interested = true
	s.mu.Unlock()
}
func (s *fakeSession) Replace() {}

// take returns and forgets what the session received, parsed.
func (s *fakeSession) take(t *testing.T) []*wire.Stanza {
	t.Helper()
	s.mu.Lock()
	got := s.got
	s.got = nil
	s.mu.Unlock()
	var out []*wire.Stanza
	for _, raw := range got {
		st, err := wire.ParseElement(raw, wire.NSClient)
		if err != nil {
			t.Fatalf("session got malformed XML %q: %v", raw, err)
		}
		out = append(out, st)
	}
	return out
}

type accounts struct{ a storage.Accounts }

func (a accounts) Exists(ctx context.Context, bare string) bool {
	_, err := a.a.Get(ctx, bare)
	return err == nil
}

type env struct {
	t     *testing.T
	r     *router.Router
	store storage.Store
	m     *Module
}

// newEnv runs blocking then roster (as server/modules.go does) over a
// SQLite store holding the given accounts. example.com and example.net are
// local.
func newEnv(t *testing.T, opts Options, users ...string) *env {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, u := range users {
		if err := st.Accounts().Create(t.Context(), storage.Account{JID: u}); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := router.New(log, func(d string) bool { return d == "example.com" || d == "example.net" }, accounts{st.Accounts()})
	e := &env{t: t, r: r, store: st}
	e.m = New(r, st.Blocklist(), st.Roster(), log, opts)
	roster.New(r, st.Roster(), log, roster.Options{})
	return e
}

// bind makes a session as c2s does after resource binding.
func (e *env) bind(full string) *fakeSession {
	e.t.Helper()
	s := &fakeSession{j: jid.MustParse(full)}
	if old := e.r.Bind(s); old != nil {
		old.Replace()
	}
	e.r.SessionBound(s)
	return s
}

// login binds a session and sends initial presence.
func (e *env) login(full string) *fakeSession {
	e.t.Helper()
	s := e.bind(full)
	e.send(s, `<presence/>`)
	return s
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
		to = jid.MustParse(st.To)
	}
	st.SetAddrs(s.j.String(), st.To)
	e.r.Route(&router.Context{Context: context.Background(), Router: e.r, Stanza: st, From: s.j, To: to, Origin: s})
}

// deliver routes raw as if it came from elsewhere (no origin session).
func (e *env) deliver(raw string) {
	e.t.Helper()
	st, err := wire.ParseElement([]byte(raw), wire.NSClient)
	if err != nil {
		e.t.Fatalf("bad test stanza %q: %v", raw, err)
	}
	e.r.Route(&router.Context{Context: context.Background(), Router: e.r, Stanza: st,
		From: jid.MustParse(st.From), To: jid.MustParse(st.To)})
}

// mutual makes a and b contacts with subscription both.
func (e *env) mutual(a, b string) {
	e.t.Helper()
	for _, p := range [][2]string{{a, b}, {b, a}} {
		if _, err := e.store.Roster().Put(context.Background(), p[0], storage.RosterItem{JID: p[1], Subscription: storage.SubBoth}); err != nil {
			e.t.Fatal(err)
		}
	}
}

// iq sends an iq from s and returns the answer with its id.
func (e *env) iq(s *fakeSession, raw, id string) *wire.Stanza {
	e.t.Helper()
	e.send(s, raw)
	var answer *wire.Stanza
	var rest [][]byte
	for _, st := range s.take(e.t) {
		if answer == nil && st.Kind == wire.KindIQ && st.ID == id && (st.Type == "result" || st.Type == "error") {
			answer = st
			continue
		}
		rest = append(rest, st.Raw)
	}
	s.mu.Lock()
	s.got = append(rest, s.got...)
	s.mu.Unlock()
	if answer == nil {
		e.t.Fatalf("no answer to %s", raw)
	}
	return answer
}

// condition returns the stanza error condition of st ("" if none).
func condition(st *wire.Stanza) string {
	var v struct {
		Error struct {
			Type  string `xml:"type,attr"`
			Conds []struct {
				XMLName xml.Name
			} `xml:",any"`
		} `xml:"error"`
	}
	if err := st.Decode(&v); err != nil {
		return "decode: " + err.Error()
	}
	var names []string
	for _, c := range v.Error.Conds {
		if c.XMLName.Local == "text" {
			continue
		}
		names = append(names, c.XMLName.Local)
	}
	return strings.Join(names, "+")
}

func describe(sts []*wire.Stanza) string {
	var b strings.Builder
	for _, st := range sts {
		b.Write(st.Raw)
		b.WriteByte('\n')
	}
	return b.String()
}

func ofKind(sts []*wire.Stanza, k wire.Kind, typ string) []*wire.Stanza {
	var out []*wire.Stanza
	for _, st := range sts {
		if st.Kind == k && st.Type == typ {
			out = append(out, st)
		}
	}
	return out
}
