// Package last answers XEP-0012 Last Activity: the server's uptime, and for
// an account the time since its last logout (only to contacts subscribed to
// its presence, and to the account itself).
package last

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

// NS is the XEP-0012 namespace.
const NS = "jabber:iq:last"

// Module answers last-activity queries and records logouts.
type Module struct {
	r       *router.Router
	store   storage.Store
	started time.Time
	log     *slog.Logger
}

// New registers the module on r.
func New(r *router.Router, store storage.Store, log *slog.Logger) *Module {
	m := &Module{r: r, store: store, started: time.Now(), log: log}
	r.AddFeature(router.ToServer|router.ToBare, NS)
	r.HandleIQ("get", NS, router.ToServer|router.ToBare, m.get)
	r.OnUnbound(m.unbound)
	return m
}

func (m *Module) unbound(s router.Session) {
	bare := s.JID().Bare().String()
	if len(m.r.Resources(bare)) > 0 {
		return
	}
	status := ""
	if err := m.store.Accounts().SetLast(context.Background(), bare, time.Now(), status); err != nil && err != storage.ErrNotFound {
		m.log.Warn("recording last activity failed", "jid", bare, "err", err)
	}
}

func reply(c *router.Context, seconds int64, status string) {
	b := []byte("<query xmlns='" + NS + "' seconds='" + strconv.FormatInt(seconds, 10) + "'")
	if status == "" {
		c.Reply(append(b, "/>"...))
		return
	}
	b = append(b, '>')
	b = wire.AppendEscapedText(b, status)
	c.Reply(append(b, "</query>"...))
}

func (m *Module) get(c *router.Context) {
	if c.To.Localpart() == "" {
		reply(c, int64(time.Since(m.started).Seconds()), "")
		return
	}
	owner := c.To.Bare().String()
	if c.From.Bare().String() != owner {
		item, err := m.store.Roster().Item(c, owner, c.From.Bare().String())
		if err != nil || (item.Subscription != storage.SubFrom && item.Subscription != storage.SubBoth) {
			c.Error("auth", "forbidden", "")
			return
		}
	}
	if len(m.r.Available(owner)) > 0 {
		reply(c, 0, "")
		return
	}
	a, err := m.store.Accounts().Get(c, owner)
	if err != nil {
		c.Error("cancel", "service-unavailable", "")
		return
	}
	if a.LastLogout.IsZero() {
		c.Error("cancel", "service-unavailable", "")
		return
	}
	reply(c, int64(time.Since(a.LastLogout).Seconds()), a.LastStatus)
}
