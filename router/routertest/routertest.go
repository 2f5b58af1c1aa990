// Package routertest has test doubles for modules' unit tests: a
// router.Session that records what it is sent, and an adapter that makes a
// storage.Accounts answer router.Accounts. Integration tests use real
// sessions over real sockets instead (server/servertest).
package routertest

import (
	"context"
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
