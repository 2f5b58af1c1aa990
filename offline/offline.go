// Package offline stores messages for accounts with no available resource
// (XEP-0160) and delivers them, oldest first and stamped with XEP-0203
// delay, when the account next sends available presence.
package offline

import (
	"context"
	"errors"
	"log/slog"
	"sync"
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
	// ChunkBytes bounds the stored messages sent to a session at once:
	// the next chunk goes out when the client has the previous one (at
	// least one message per chunk). The server sets a quarter of limits
	// session-buffer; 0 means 1 MiB.
	ChunkBytes int
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
	if opts.ChunkBytes <= 0 {
		opts.ChunkBytes = 1 << 20
	}
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
	case errors.Is(err, storage.ErrNotFound):
		// The account was deleted a moment ago (by another process).
		c.Error("cancel", "service-unavailable", "")
	case err != nil:
		m.log.Error("storing offline message failed", "to", owner, "err", err)
		c.Error("wait", "internal-server-error", "")
	}
	return true
}

// deliver sends the stored messages to a session that just became
// available and removes them once the client has them: acknowledged with
// XEP-0198, or written to its link without (router.Confirmer). Messages its
// SkipFunc, if any, says it does not need are removed too. A message that
// never reached the client stays stored and is delivered again at the next
// initial presence.
//
// The messages go out a chunk at a time (Options.ChunkBytes): the next
// chunk is read from storage and queued when the client has the last
// message of the previous one, so the flood never holds more than a chunk
// of the session's buffer however much is stored (see README.md).
func (m *Module) deliver(s router.Session) {
	if s.Priority() < 0 {
		return
	}
	f := &flood{m: m, s: s, owner: s.JID().Bare().String(), domain: s.JID().Domainpart()}
	f.skip, _ = s.Value(SkipKey{}).(SkipFunc)
	f.cs, _ = s.(router.Confirmer)
	f.d = &deleter{m: m, owner: f.owner}
	f.next()
}

// ackRequester is implemented by sessions that can ask their client to
// acknowledge what it received (XEP-0198 <r/>; false without it).
type ackRequester interface{ RequestAck() bool }

// flood is one session's offline delivery in progress.
type flood struct {
	m             *Module
	s             router.Session
	cs            router.Confirmer // nil: the session cannot confirm
	skip          SkipFunc
	owner, domain string
	d             *deleter
	after         int64 // the last stored message handled (sent or skipped)
}

// next queues the next chunk of stored messages. With confirmations it
// returns once the chunk is queued; the confirmation of the chunk's last
// message calls it again, on a goroutine of its own (a confirmation runs on
// the session's reader or writer, which must not wait for storage). The
// chunks follow each other: at most one is in flight, and when next runs
// every message before f.after has been confirmed.
func (f *flood) next() {
	ctx := context.Background()
	for {
		msgs, err := f.m.store.ListAfter(ctx, f.owner, f.after, f.m.opts.ChunkBytes)
		if err != nil {
			f.m.log.Error("reading offline messages failed", "jid", f.owner, "err", err)
			return
		}
		if len(msgs) == 0 {
			return
		}
		// Decide first, so that the last message to send is known.
		// Delete removes every message up to a seq: skipped messages
		// before the first one sent go now (all before them are
		// confirmed), those after a sent one with the next sent one's
		// confirmation, and those after the last one sent with its
		// confirmation (extend).
		send := make([]storage.OfflineMessage, 0, len(msgs))
		var head, tail int64
		for _, msg := range msgs {
			if (f.skip != nil && f.skip(msg)) || f.m.blocked(ctx, f.owner, msg.From) || !f.m.standalone(f.owner, msg) {
				if len(send) == 0 {
					head = msg.Seq
				} else {
					tail = msg.Seq
				}
				continue
			}
			send = append(send, msg)
			tail = 0
		}
		f.after = msgs[len(msgs)-1].Seq
		if head != 0 {
			f.d.upTo(head)
		}
		if len(send) == 0 {
			continue
		}
		if f.cs == nil {
			// No confirmations: removed once queued, all at once.
			done := int64(0)
			for _, msg := range send {
				if !f.s.Send(WithDelay(msg.Stanza, f.domain, msg.Stamp, "Offline Storage")) {
					break
				}
				done = msg.Seq
			}
			if done != send[len(send)-1].Seq {
				if done != 0 {
					f.d.upTo(done)
				}
				return
			}
			f.d.upTo(max(done, tail))
			continue
		}
		last := send[len(send)-1].Seq
		if tail != 0 {
			f.d.extend(last, tail)
		}
		for _, msg := range send {
			seq := msg.Seq
			confirm := func() { f.d.upTo(seq) }
			if seq == last {
				confirm = func() {
					f.d.upTo(seq)
					go f.next()
				}
			}
			if !f.cs.SendConfirmed(WithDelay(msg.Stanza, f.domain, msg.Stamp, "Offline Storage"), confirm) {
				return // the session is over; the rest stays stored
			}
		}
		// With XEP-0198 the chunk is confirmed by an acknowledgement: ask
		// for it now rather than waiting for the next ack-every stanzas.
		if ar, ok := f.s.(ackRequester); ok {
			ar.RequestAck()
		}
		return
	}
}

// deleter removes a session's delivered offline messages as the
// confirmations come (in order: acknowledgements and writes are).
type deleter struct {
	m     *Module
	owner string
	mu    sync.Mutex
	done  int64
	// tail extends the deletion that confirms last (skipped messages
	// after the last delivered one).
	last, tail int64
}

func (d *deleter) upTo(seq int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.deleteLocked(seq)
}

func (d *deleter) deleteLocked(seq int64) {
	if seq == d.last && d.tail > seq {
		seq = d.tail
	}
	if seq <= d.done {
		return
	}
	if err := d.m.store.Delete(context.Background(), d.owner, seq); err != nil {
		d.m.log.Error("removing delivered offline messages failed", "jid", d.owner, "err", err)
		return
	}
	d.done = seq
}

// extend makes the confirmation of last also remove up to tail (now, if
// last was already confirmed).
func (d *deleter) extend(last, tail int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done >= last {
		d.deleteLocked(tail)
		return
	}
	d.last, d.tail = last, tail
}

// blocked reports whether owner now blocks the sender of a stored message.
func (m *Module) blocked(ctx context.Context, owner, from string) bool {
	if m.opts.Blocked == nil {
		return false
	}
	j, err := jid.Parse(from)
	return err == nil && m.opts.Blocked(ctx, owner, j)
}

// standalone reports whether a stored message is namespace-well-formed
// standing alone. One stored before the stream reader checked prefixes at
// every depth may not be; delivered, it would end the recipient's stream
// at every login, so it is dropped (and removed with its chunk) instead.
func (m *Module) standalone(owner string, msg storage.OfflineMessage) bool {
	if _, err := wire.ParseElement(msg.Stanza, wire.NSClient); err != nil {
		m.log.Warn("offline: a stored message is not well-formed; dropped", "jid", owner, "seq", msg.Seq, "err", err)
		return false
	}
	return true
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
