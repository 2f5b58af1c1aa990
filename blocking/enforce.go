package blocking

import (
	"bytes"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/wire"
)

// blockedCondition is the application-specific condition of XEP-0191 §3.3.
const blockedCondition = "<blocked xmlns='" + NSErrors + "'/>"

// exempt reports whether the blocklist of the user at from does not apply
// between from and to: stanzas between one account's own resources (XEP-0191
// §5: never blocked), stanzas without an address, and stanzas to or from a
// local domain itself (the user's own server stays reachable even if she
// blocks its domain, so she can always read and change her list).
func (m *Module) exempt(from, to jid.JID) bool {
	if to.Domainpart() == "" || from.Domainpart() == "" || from.Bare().Equal(to.Bare()) {
		return true
	}
	if to.Localpart() == "" && m.r.IsLocal(to.Domainpart()) {
		return true
	}
	return from.Localpart() == "" && m.r.IsLocal(from.Domainpart())
}

// outbound refuses what a local user sends to a JID she blocked (§3.3):
// <not-acceptable/> with <blocked/>; errors and iq results are dropped
// (errors are never answered with errors).
//
// A message or iq to a local account that blocked the sender is refused
// here too, with the answer the inbound hook gives, so that no module's
// outbound hook acts on it first: a JMI <propose/> would otherwise start a
// call record in the callee's history or be answered "busy", telling a
// blocked user that she is in a call. Presence is left to the inbound hook:
// the sender's own roster must change as if she were not blocked.
func (m *Module) outbound(c *router.Context) bool {
	if m.exempt(c.From, c.To) {
		return false
	}
	owner := c.From.Bare().String()
	l, err := m.list(c, owner)
	if err != nil {
		m.log.Error("reading blocklist failed", "owner", owner, "err", err)
		return false
	}
	if !l.blocks(c.To) {
		if c.Stanza.Kind != wire.KindPresence && c.To.Localpart() != "" && m.r.IsHost(c.To.Domainpart()) {
			return m.refuseBlocked(c)
		}
		return false
	}
	st := c.Stanza
	if st.Type == "error" || (st.Kind == wire.KindIQ && st.Type == "result") {
		return true
	}
	c.Origin.Send(blockedError(c))
	return true
}

// blockedError is the error stanza answering c's stanza: from the blocked
// JID, with the original children of a message or presence, and
// <not-acceptable/> plus <blocked xmlns='urn:xmpp:blocking:errors'/>.
func blockedError(c *router.Context) []byte {
	st := *c.Stanza
	st.From, st.To = c.From.String(), c.To.String()
	raw := wire.ErrorReply(&st, "cancel", "not-acceptable", "")
	i := bytes.LastIndex(raw, []byte("</error>"))
	out := make([]byte, 0, len(raw)+len(blockedCondition))
	out = append(out, raw[:i]...)
	out = append(out, blockedCondition...)
	return append(out, raw[i:]...)
}

// inbound stops stanzas to a local account from a JID she blocked
// (§3.3): presence silently, messages and iq get/set with
// <service-unavailable/> (she appears offline), iq results and errors
// silently. It also drops what the server routes on behalf of a local user
// (no origin session: presence broadcasts, probes, unavailable at logout,
// automatic subscription answers) to a JID that user blocked; what her own
// session sends was already checked by outbound.
func (m *Module) inbound(c *router.Context) bool {
	from, to := c.From, c.To
	if m.exempt(from, to) {
		return false
	}
	if m.refuseBlocked(c) {
		return true
	}
	if c.Origin != nil || from.Localpart() == "" || !m.r.IsLocal(from.Domainpart()) {
		return false
	}
	sender := from.Bare().String()
	sl, err := m.list(c, sender)
	if err != nil {
		m.log.Error("reading blocklist failed", "owner", sender, "err", err)
		return false
	}
	return sl.blocks(to)
}

// refuseBlocked stops c's stanza when its recipient, a local account,
// blocked its sender (§3.3): presence silently, messages and iq get/set
// with <service-unavailable/> (she appears offline), iq results and errors
// silently.
func (m *Module) refuseBlocked(c *router.Context) bool {
	owner := c.To.Bare().String()
	l, err := m.list(c, owner)
	if err != nil {
		m.log.Error("reading blocklist failed", "owner", owner, "err", err)
		return false
	}
	if !l.blocks(c.From) {
		return false
	}
	st := c.Stanza
	switch {
	case st.Type == "error" || st.Kind == wire.KindPresence:
	case st.Kind == wire.KindMessage:
		c.Error("cancel", "service-unavailable", "")
	case st.Type == "get" || st.Type == "set":
		c.Error("cancel", "service-unavailable", "")
	}
	return true
}
