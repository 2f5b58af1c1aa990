// Package router knows where every local session is and delivers stanzas by
// the rules of RFC 6121 §8: to the server, to a bare JID, to a full JID, for
// accounts that exist or not, with resources available or not.
//
// It sits between the sessions (c2s/, later s2s/) and the modules: sessions
// hand it stamped stanzas; modules register IQ handlers and hooks on it, and
// disco#info is computed from what they registered. The interface a clustered
// router must provide is Router's exported method set.
package router

import (
	"context"
	"log/slog"
	"slices"
	"sort"
	"sync"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/wire"
)

// Session is what the router needs of a live, bound session.
type Session interface {
	// JID is the bound full JID.
	JID() jid.JID
	// Send queues raw bytes of one complete element for the session's
	// peer. It never blocks; it returns false if the session is gone or its
	// queue is full.
	Send(raw []byte) bool
	// Presence is the session's last broadcast presence (nil until initial
	// presence, and after unavailable).
	Presence() *wire.Stanza
	// Priority of the last broadcast presence.
	Priority() int
	// SetPresence records the broadcast presence (nil: unavailable).
	SetPresence(p *wire.Stanza, priority int)
	// Interested reports whether the client requested the roster (RFC 6121 §2.1.6).
	Interested() bool
	// SetInterested marks that the client requested the roster.
	SetInterested()
	// Replace ends the session because another one bound the same full JID
	// (stream error <conflict/>).
	Replace()
	// Value and SetValue keep module state on the session (carbons on,
	// client state, caps …), keyed by a module's own unexported key type.
	// Embed Values to implement them.
	Value(key any) any
	SetValue(key, value any)
}

// Values implements Session.Value and Session.SetValue; embed it.
//
// A session holds a handful of values (one per module that keeps state
// on it), so they are a short list searched in order: a map would cost a
// few hundred bytes more on every session.
type Values struct {
	vmu sync.Mutex
	vs  []keyValue
}

type keyValue struct{ key, value any }

// Value returns what SetValue stored under key, or nil.
func (v *Values) Value(key any) any {
	v.vmu.Lock()
	defer v.vmu.Unlock()
	for i := range v.vs {
		if v.vs[i].key == key {
			return v.vs[i].value
		}
	}
	return nil
}

// SetValue stores value under key (nil removes it).
func (v *Values) SetValue(key, value any) {
	v.vmu.Lock()
	defer v.vmu.Unlock()
	for i := range v.vs {
		if v.vs[i].key == key {
			if value == nil {
				v.vs = slices.Delete(v.vs, i, i+1)
				if len(v.vs) == 0 {
					v.vs = nil
				}
			} else {
				v.vs[i].value = value
			}
			return
		}
	}
	if value != nil {
		v.vs = append(v.vs, keyValue{key, value})
	}
}

// Accounts tells whether a local account exists.
type Accounts interface {
	Exists(ctx context.Context, bare string) bool
}

// CheckedAccounts is Accounts that can tell a storage failure from a
// missing account; the router uses Check when it is there, so that a
// failing database is answered internal-server-error, never "no such user".
type CheckedAccounts interface {
	Accounts
	// Check reports whether bare is a local account; an error means the
	// question could not be answered.
	Check(ctx context.Context, bare string) (bool, error)
}

// Router is the local session registry and delivery engine.
type Router struct {
	log      *slog.Logger
	accounts Accounts
	isLocal  func(domain string) bool

	mu       sync.RWMutex
	sessions map[string][]Session // bare JID → bound sessions

	handlers
	services
}

// New returns a Router for the local domains isLocal accepts.
func New(log *slog.Logger, isLocal func(string) bool, accounts Accounts) *Router {
	return &Router{
		log:      log,
		accounts: accounts,
		isLocal:  isLocal,
		sessions: make(map[string][]Session),
		handlers: newHandlers(),
	}
}

// IsHost reports whether domain is one of the hosts (domains with accounts).
func (r *Router) IsHost(domain string) bool { return r.isLocal(domain) }

// IsLocal reports whether domain is served here (a host or a service).
func (r *Router) IsLocal(domain string) bool { return r.isLocal(domain) || r.service(domain) != nil }

// Bind registers s under its full JID. A session already bound to the same
// full JID is returned (the caller replaces it).
func (r *Router) Bind(s Session) (old Session) {
	j := s.JID()
	bare, res := j.Bare().String(), j.Resourcepart()
	r.mu.Lock()
	list := r.sessions[bare]
	for i, o := range list {
		if o.JID().Resourcepart() == res {
			old = o
			list[i] = s
			r.mu.Unlock()
			return old
		}
	}
	r.sessions[bare] = append(list, s)
	r.mu.Unlock()
	return nil
}

// Unbind removes s (if it is still the one bound under its JID).
func (r *Router) Unbind(s Session) {
	bare := s.JID().Bare().String()
	r.mu.Lock()
	list := r.sessions[bare]
	for i, o := range list {
		if o == s {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(r.sessions, bare)
	} else {
		r.sessions[bare] = list
	}
	r.mu.Unlock()
}

// Resources returns the sessions bound for a bare JID (a copy).
func (r *Router) Resources(bare string) []Session {
	r.mu.RLock()
	list := r.sessions[bare]
	out := make([]Session, len(list))
	copy(out, list)
	r.mu.RUnlock()
	return out
}

// Resource returns the session bound to a full JID, or nil.
func (r *Router) Resource(bare, resource string) Session {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, s := range r.sessions[bare] {
		if s.JID().Resourcepart() == resource {
			return s
		}
	}
	return nil
}

// Available returns the bound sessions of bare that have sent available presence.
func (r *Router) Available(bare string) []Session {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []Session
	for _, s := range r.sessions[bare] {
		if s.Presence() != nil {
			out = append(out, s)
		}
	}
	return out
}

// Count returns the number of bound sessions.
func (r *Router) Count() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := 0
	for _, l := range r.sessions {
		n += len(l)
	}
	return n
}

// Each calls fn for every bound session (a snapshot).
func (r *Router) Each(fn func(Session)) {
	r.mu.RLock()
	all := make([]Session, 0, len(r.sessions))
	for _, l := range r.sessions {
		all = append(all, l...)
	}
	r.mu.RUnlock()
	for _, s := range all {
		fn(s)
	}
}

// CheckAccount reports whether bare is a local account; an error means
// storage could not answer.
func (r *Router) CheckAccount(ctx context.Context, bare string) (bool, error) {
	if c, ok := r.accounts.(CheckedAccounts); ok {
		return c.Check(ctx, bare)
	}
	return r.accounts.Exists(ctx, bare), nil
}

// sortedKeys is used by disco to keep features ordered.
func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
