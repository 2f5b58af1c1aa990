package mam

import (
	"context"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

// SetBlocked makes queries leave out the messages an owner received from a
// JID she blocks (XEP-0191 §3.3: nothing from a blocked entity is delivered
// to her, and a client catching up through the archive must not get what
// offline storage withholds). blocked reports whether owner blocks from.
// The archive keeps the messages: unblocking shows them again. What the
// owner sent stays visible. Call it before the server starts serving.
func (m *Module) SetBlocked(blocked func(ctx context.Context, owner string, from jid.JID) bool) {
	m.blocked = blocked
}

// withheld reports whether msg is a message owner received from a JID she
// blocks, or a stored stanza that is not namespace-well-formed standing
// alone (archived before the stream reader checked prefixes at every
// depth: forwarded, it would end the querying client's stream).
func (m *Module) withheld(ctx context.Context, owner string, msg storage.ArchiveMessage) bool {
	if _, err := wire.ParseElement(msg.Stanza, wire.NSClient); err != nil {
		m.log.Warn("mam: an archived stanza is not well-formed; left out of results", "owner", owner, "seq", msg.Seq, "err", err)
		return true
	}
	if m.blocked == nil || msg.Outgoing {
		return false
	}
	j, err := jid.Parse(msg.With)
	return err == nil && m.blocked(ctx, owner, j)
}
