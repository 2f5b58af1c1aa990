package vcard

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/xmppd/xmppd/roster"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/router/routertest"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/sqlite"
	"github.com/xmppd/xmppd/wire"
)

// fakeSession records what a session is sent.
type fakeSession = routertest.Session

type env struct {
	t     *testing.T
	r     *router.Router
	store storage.Store
	m     *Module
}

// newEnv runs vcard then roster (as server/modules.go does) over a
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
	r := router.New(log, func(d string) bool { return d == "example.com" || d == "example.net" }, routertest.Accounts{A: st.Accounts()})
	e := &env{t: t, r: r, store: st}
	e.m = New(r, st.VCards(), log, opts)
	roster.New(r, st.Roster(), log, roster.Options{})
	return e
}

// bind makes a session as c2s does after resource binding.
func (e *env) bind(full string) *fakeSession {
	e.t.Helper()
	return routertest.Bind(e.t, e.r, full)
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
	routertest.Send(e.t, e.r, s, raw)
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
	return s.Answer(e.t, id)
}
