// Package routertest has test doubles for modules' unit tests: a
// router.Session that records what it is sent, and an adapter that makes a
// storage.Accounts answer router.Accounts. Integration tests use real
// sessions over real sockets instead (server/servertest).
package routertest

import (
	"context"
	"encoding/xml"
	"strings"
	"sync"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

// Session is a router.Session that records what it is sent.
type Session struct {
	router.Values
	j jid.JID

	mu         sync.Mutex
	got        [][]byte
	presence   *wire.Stanza
	priority   int
	interested bool
}

// NewSession returns a session bound to the full JID j (not yet
// registered: call router.Bind).
func NewSession(j jid.JID) *Session { return &Session{j: j} }

func (s *Session) JID() jid.JID { return s.j }

func (s *Session) Send(raw []byte) bool {
	s.mu.Lock()
	s.got = append(s.got, raw)
	s.mu.Unlock()
	return true
}

func (s *Session) Presence() *wire.Stanza {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.presence
}

func (s *Session) Priority() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.priority
}

func (s *Session) SetPresence(p *wire.Stanza, prio int) {
	s.mu.Lock()
	s.presence, s.priority = p, prio
	s.mu.Unlock()
}

func (s *Session) Interested() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.interested
}

func (s *Session) SetInterested() {
	s.mu.Lock()
	s.interested = true
	s.mu.Unlock()
}

func (s *Session) Replace() {}

// Take returns and forgets what the session received, parsed; malformed
// XML fails the test.
func (s *Session) Take(t testing.TB) []*wire.Stanza {
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

// Accounts makes a storage.Accounts answer router.Accounts.
type Accounts struct{ A storage.Accounts }

// Exists reports whether bare is an account.
func (a Accounts) Exists(ctx context.Context, bare string) bool {
	_, err := a.A.Get(ctx, bare)
	return err == nil
}

// Unread puts stanzas back in front of what the session received, for a
// helper that took everything but wants to leave the rest for the test.
func (s *Session) Unread(raws [][]byte) {
	s.mu.Lock()
	s.got = append(append([][]byte(nil), raws...), s.got...)
	s.mu.Unlock()
}

// Answer takes the answer (result or error) to the iq with id from what the
// session received, leaving everything else for later; no answer fails the
// test.
func (s *Session) Answer(t testing.TB, id string) *wire.Stanza {
	t.Helper()
	var answer *wire.Stanza
	var rest [][]byte
	for _, st := range s.Take(t) {
		if answer == nil && st.Kind == wire.KindIQ && st.ID == id && (st.Type == "result" || st.Type == "error") {
			answer = st
			continue
		}
		rest = append(rest, st.Raw)
	}
	s.Unread(rest)
	if answer == nil {
		t.Fatalf("no answer to the iq %s", id)
	}
	return answer
}

// Condition returns the stanza error conditions of st joined with "+"
// ("" if none; <text/> is left out).
func Condition(st *wire.Stanza) string {
	var v struct {
		Error struct {
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
		if c.XMLName.Local != "text" {
			names = append(names, c.XMLName.Local)
		}
	}
	return strings.Join(names, "+")
}

// Describe renders stanzas one per line, for test failure messages.
func Describe(sts []*wire.Stanza) string {
	var b strings.Builder
	for _, st := range sts {
		b.Write(st.Raw)
		b.WriteByte('\n')
	}
	return b.String()
}

// OfKind keeps the stanzas of kind k and type typ.
func OfKind(sts []*wire.Stanza, k wire.Kind, typ string) []*wire.Stanza {
	var out []*wire.Stanza
	for _, st := range sts {
		if st.Kind == k && st.Type == typ {
			out = append(out, st)
		}
	}
	return out
}

// Bind makes a session bound to full on r, as c2s does after resource
// binding (a session already there is replaced).
func Bind(t testing.TB, r *router.Router, full string) *Session {
	t.Helper()
	s := NewSession(jid.MustParse(full))
	if old := r.Bind(s); old != nil {
		old.Replace()
	}
	r.SessionBound(s)
	return s
}

// Send routes raw as if s's client sent it, stamped as c2s does.
func Send(t testing.TB, r *router.Router, s router.Session, raw string) {
	t.Helper()
	st, err := wire.ParseElement([]byte(raw), wire.NSClient)
	if err != nil {
		t.Fatalf("bad test stanza %q: %v", raw, err)
	}
	var to jid.JID
	if st.To != "" {
		to = jid.MustParse(st.To)
	}
	st.SetAddrs(s.JID().String(), st.To)
	r.Route(&router.Context{Context: context.Background(), Router: r, Stanza: st, From: s.JID(), To: to, Origin: s})
}

// Deliver routes raw (with its own from and to) as if it came from
// elsewhere: no origin session.
func Deliver(t testing.TB, r *router.Router, raw string) {
	t.Helper()
	st, err := wire.ParseElement([]byte(raw), wire.NSClient)
	if err != nil {
		t.Fatalf("bad test stanza %q: %v", raw, err)
	}
	r.Route(&router.Context{Context: context.Background(), Router: r, Stanza: st,
		From: jid.MustParse(st.From), To: jid.MustParse(st.To)})
}
