// Package offline stores messages for accounts with no available resource
// (XEP-0160) and delivers them, oldest first and stamped with XEP-0203
// delay, when the account next sends available presence.
package offline

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

const (
	nsDelay      = "urn:xmpp:delay"
	nsHints      = "urn:xmpp:hints"
	nsChatStates = "http://jabber.org/protocol/chatstates"
	// NSFeature is the XEP-0160 disco feature.
	NSFeature = "msgoffline"
)

// Options configure offline storage.
type Options struct {
	// MaxMessages per user; 0 means no limit.
	MaxMessages int
	// Blocked, if set, reports whether owner blocks from (XEP-0191). A
	// stored message whose sender the owner blocked since it was stored is
	// not delivered at initial presence; it is deleted like a delivered one.
	Blocked func(ctx context.Context, owner string, from jid.JID) bool
}

// SkipKey is the router.Session value key under which another module (mam)
// may store a SkipFunc for a session before its initial presence.
type SkipKey struct{}

// SkipFunc reports whether a stored message need not be sent to the session
// it is installed on, because the session already had the chance to get it
// another way (its message archive, with the same stanza-id). Skipped
// messages are deleted from offline storage like delivered ones.
type SkipFunc func(storage.OfflineMessage) bool

// Module is the offline message store.
type Module struct {
	r     *router.Router
	store storage.Offline
	opts  Options
	log   *slog.Logger
}

// New registers offline storage on r.
func New(r *router.Router, store storage.Offline, log *slog.Logger, opts Options) *Module {
	m := &Module{r: r, store: store, opts: opts, log: log}
	r.AddFeature(router.ToServer, NSFeature)
	r.OnOffline(m.keep)
	r.OnAvailable(m.deliver)
	return m
}

// worthKeeping leaves out what XEP-0334 says not to store and messages that
// carry only a chat state notification.
func worthKeeping(st *wire.Stanza) bool {
	if st.HasChild(nsHints, "no-store") || st.HasChild(nsHints, "no-permanent-store") {
		return false
	}
	if st.PayloadNS == nsChatStates && !st.HasChild(wire.NSClient, "body") && !st.HasChild("", "body") {
		return false
	}
	return st.PayloadName != ""
}

func (m *Module) keep(c *router.Context) bool {
	st := c.Stanza
	if !worthKeeping(st) {
		return true // consumed: dropped silently, as for a headline
	}
	owner := c.To.Bare().String()
	err := m.store.Store(c, owner, storage.OfflineMessage{Stamp: time.Now().UTC(), From: c.From.String(), Stanza: st.Raw}, m.opts.MaxMessages)
	switch {
	case errors.Is(err, storage.ErrQuotaExceeded):
		c.Error("cancel", "service-unavailable", "The recipient's offline storage is full")
	case err != nil:
		m.log.Error("storing offline message failed", "to", owner, "err", err)
		c.Error("wait", "internal-server-error", "")
	}
	return true
}

// deliver sends the stored messages to a session that just became
// available, then removes what was handed over (and what its SkipFunc, if
// any, said it does not need).
func (m *Module) deliver(s router.Session) {
	if s.Priority() < 0 {
		return
	}
	owner := s.JID().Bare().String()
	ctx := context.Background()
	msgs, err := m.store.List(ctx, owner)
	if err != nil {
		m.log.Error("reading offline messages failed", "jid", owner, "err", err)
		return
	}
	if len(msgs) == 0 {
		return
	}
	domain := s.JID().Domainpart()
	skip, _ := s.Value(SkipKey{}).(SkipFunc)
	var last int64
	for _, msg := range msgs {
		if (skip != nil && skip(msg)) || m.blocked(ctx, owner, msg.From) {
			last = msg.Seq
			continue
		}
		if !s.Send(WithDelay(msg.Stanza, domain, msg.Stamp, "Offline Storage")) {
			break
		}
		last = msg.Seq
	}
	if last == 0 {
		return
	}
	if err := m.store.Delete(ctx, owner, last); err != nil {
		m.log.Error("removing delivered offline messages failed", "jid", owner, "err", err)
	}
}

// blocked reports whether owner now blocks the sender of a stored message.
func (m *Module) blocked(ctx context.Context, owner, from string) bool {
	if m.opts.Blocked == nil {
		return false
	}
	j, err := jid.Parse(from)
	return err == nil && m.opts.Blocked(ctx, owner, j)
}

// WithDelay returns raw with an XEP-0203 <delay/> child appended.
func WithDelay(raw []byte, from string, stamp time.Time, reason string) []byte {
	d := make([]byte, 0, 128)
	d = append(d, "<delay xmlns='"+nsDelay+"' from='"...)
	d = wire.AppendEscapedAttr(d, from)
	d = append(d, "' stamp='"+stamp.UTC().Format("2006-01-02T15:04:05.000Z")+"'>"...)
	d = wire.AppendEscapedText(d, reason)
	d = append(d, "</delay>"...)
	return wire.InsertChild(raw, d)
}
