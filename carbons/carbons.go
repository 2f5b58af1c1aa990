// Package carbons implements XEP-0280 Message Carbons (urn:xmpp:carbons:2):
// a client enables carbons for its session, and then receives a copy of
// the messages its account's other resources send (<sent/>) and of the
// messages addressed to them (<received/>), each wrapped in an XEP-0297
// <forwarded/>, so that every device sees both sides of every conversation.
//
// It is a module in the pipeline of docs/ARCHITECTURE.md. Its outbound
// message hook makes the <sent/> copies, its inbound message hook the
// <received/> copies; it must be registered after the archive, so that
// copies carry the XEP-0359 stanza-id the archive stamped, and after
// blocking, so that refused messages are not copied. The flag lives on the
// session (router.Session.Value).
//
// Which messages are copied (XEP-0280 §6.1): type chat; type normal with a
// body; messages with XEP-0184 receipts, XEP-0085 chat states, XEP-0333
// chat markers or XEP-0353 Jingle Message Initiation payloads (calls ring
// on every device, and stop ringing when one answers); errors carrying such
// content. Not copied: groupchat and headline messages, messages with
// <private xmlns='urn:xmpp:carbons:2'/> or the XEP-0334 <no-copy/> hint,
// private messages from a MUC occupant (they carry muc#user and come from a
// full JID; the MUC copies them to every joined client itself), and
// carbons themselves. The <private/> element is left in the delivered
// message: XEP-0280 no longer asks servers to strip it (§7, interoperability
// note), since a sender could otherwise hide a message from the
// recipient's other devices without a trace.
//
// A <received/> copy goes to each carbons-enabled session of the recipient
// that does not get the original by the RFC 6121 rules: a message to a bare
// JID reaches every available resource with non-negative priority, and none
// of those gets a copy as well (no doubles). When no resource gets it (it
// goes to offline storage), sessions that have not sent initial presence
// get no copy either: offline delivery hands them the original. Messages between resources of
// one account are not copied as <sent/>, only as <received/> to the
// resources that get neither the original nor sent it.
package carbons

import (
	"bytes"

	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/mam"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/wire"
)

// Namespaces.
const (
	// NS is the XEP-0280 namespace and disco feature.
	NS = "urn:xmpp:carbons:2"
	// NSForward is the XEP-0297 namespace of the wrapper.
	NSForward = "urn:xmpp:forward:0"

	nsHints      = "urn:xmpp:hints"
	nsReceipts   = "urn:xmpp:receipts"
	nsChatStates = "http://jabber.org/protocol/chatstates"
	nsMarkers    = "urn:xmpp:chat-markers:0"
	nsJMI        = "urn:xmpp:jingle-message:0"
	nsMUCUser    = "http://jabber.org/protocol/muc#user"
)

// Config is the <modules><carbons/></modules> section (no settings besides
// enabled).
type Config struct {
	conf.ModuleBase
}

func init() {
	conf.RegisterModule("carbons", func() any { return &Config{} })
}

// Module is the carbons module.
type Module struct {
	r *router.Router
}

// enabledKey marks a session that enabled carbons.
type enabledKey struct{}

// New registers the module on r.
func New(r *router.Router) *Module {
	m := &Module{r: r}
	r.AddFeature(router.ToServer, NS)
	r.HandleIQ("set", NS, router.ToBare, m.handleSet)
	r.OnOutbound(wire.KindMessage, m.outbound)
	r.OnInbound(wire.KindMessage, m.inbound)
	return m
}

// Enabled reports whether s enabled carbons.
func Enabled(s router.Session) bool { return s.Value(enabledKey{}) != nil }

// handleSet enables or disables carbons for the sending session (§4, §5);
// repeating either is not an error (§8).
func (m *Module) handleSet(c *router.Context) {
	if c.Origin == nil || !c.From.Bare().Equal(c.To.Bare()) {
		c.Error("cancel", "not-allowed", "")
		return
	}
	switch c.Stanza.PayloadName {
	case "enable":
		c.Origin.SetValue(enabledKey{}, true)
	case "disable":
		c.Origin.SetValue(enabledKey{}, nil)
	default:
		c.Error("modify", "bad-request", "")
		return
	}
	c.Reply(nil)
}

// eligible applies the rules of §6.1 to a message (the MUC rule about
// private messages from occupants is the caller's: it depends on the
// direction).
func eligible(st *wire.Stanza) bool {
	switch st.Type {
	case "groupchat", "headline":
		return false
	}
	if st.HasChild(NS, "private") || st.HasChild(nsHints, "no-copy") ||
		st.HasChild(NS, "sent") || st.HasChild(NS, "received") {
		return false
	}
	if st.Type == "chat" {
		return true
	}
	// normal (or no type), and errors: IM content only.
	if st.HasChild(wire.NSClient, "body") || st.HasChild("", "body") {
		return true
	}
	for _, ns := range []string{nsReceipts, nsChatStates, nsMarkers, nsJMI} {
		if hasChildNS(st, ns) {
			return true
		}
	}
	return false
}

// hasChildNS reports whether the message has a first-level child in ns.
func hasChildNS(st *wire.Stanza, ns string) bool {
	if st.PayloadNS == ns {
		return true
	}
	if !bytes.Contains(st.Raw, []byte(ns)) {
		return false
	}
	switch ns {
	case nsReceipts:
		return st.HasChild(ns, "request") || st.HasChild(ns, "received")
	case nsChatStates:
		for _, n := range []string{"active", "composing", "paused", "inactive", "gone"} {
			if st.HasChild(ns, n) {
				return true
			}
		}
	case nsMarkers:
		for _, n := range []string{"markable", "received", "displayed", "acknowledged"} {
			if st.HasChild(ns, n) {
				return true
			}
		}
	case nsJMI:
		for _, n := range []string{"propose", "retract", "accept", "proceed", "reject", "ringing", "finish"} {
			if st.HasChild(ns, n) {
				return true
			}
		}
	}
	return false
}

// outbound sends <sent/> copies of a message a local session sends to the
// account's other carbons-enabled sessions (§7.2).
func (m *Module) outbound(c *router.Context) bool {
	st := c.Stanza
	if c.To.Domainpart() == "" || c.From.Bare().Equal(c.To.Bare()) || !eligible(st) {
		return false
	}
	var wrapped []byte
	user := c.From.Bare()
	for _, s := range m.r.Resources(user.String()) {
		if s == c.Origin || !Enabled(s) {
			continue
		}
		if wrapped == nil {
			wrapped = st.Standalone()
			// XEP-0313 §4.2: the sent copy carries its id in the sender's
			// own archive, so the other devices can dedupe against MAM.
			if id, ok := mam.SentStanzaID(c); ok {
				wrapped = wire.InsertChild(wrapped, mam.StanzaID(id, user.String()))
			}
		}
		s.Send(wrap("sent", st.Type, user.String(), s.JID().String(), wrapped))
	}
	return false
}

// inbound sends <received/> copies of a message for a local account to its
// carbons-enabled sessions that do not get the original (§7.1).
func (m *Module) inbound(c *router.Context) bool {
	st := c.Stanza
	to := c.To
	if !eligible(st) {
		return false
	}
	// A private message from a MUC occupant: the MUC copies it itself.
	if c.From.Resourcepart() != "" && to.Resourcepart() != "" && st.HasChild(nsMUCUser, "x") {
		return false
	}
	bare := to.Bare().String()
	sessions := m.r.Resources(bare)
	var target router.Session // the one full JID the original goes to, if any
	if res := to.Resourcepart(); res != "" {
		for _, s := range sessions {
			if s.JID().Resourcepart() == res {
				target = s
			}
		}
	}
	if target == nil && st.Type == "error" {
		return false // errors go to full JIDs only: nothing is delivered, nothing to copy
	}
	// Under the bare JID rules the available resources with non-negative
	// priority get the original; when there is none, the message goes to
	// offline storage, and sessions that have not sent initial presence
	// yet will get it from there.
	live := target != nil
	for _, s := range sessions {
		if target == nil && s.Presence() != nil && s.Priority() >= 0 {
			live = true
		}
	}
	self := c.From.Bare().Equal(to.Bare())
	var wrapped []byte
	for _, s := range sessions {
		if !Enabled(s) || s == target || (self && s == c.Origin) {
			continue
		}
		if target == nil && s.Presence() != nil && s.Priority() >= 0 {
			continue // the bare JID rules deliver the original to it
		}
		if !live && s.Presence() == nil {
			continue // offline storage will deliver it at initial presence
		}
		if wrapped == nil {
			wrapped = st.Standalone()
		}
		s.Send(wrap("received", st.Type, bare, s.JID().String(), wrapped))
	}
	return false
}

// wrap builds the carbon: <message from=user to=full type=…><kind
// xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>
// original</forwarded></kind></message>.
func wrap(kind, typ, from, to string, original []byte) []byte {
	b := make([]byte, 0, len(original)+192+len(from)+len(to))
	b = append(b, "<message from='"...)
	b = wire.AppendEscapedAttr(b, from)
	b = append(b, "' to='"...)
	b = wire.AppendEscapedAttr(b, to)
	b = append(b, '\'')
	if typ != "" {
		b = append(b, " type='"...)
		b = wire.AppendEscapedAttr(b, typ)
		b = append(b, '\'')
	}
	b = append(b, "><"...)
	b = append(b, kind...)
	b = append(b, " xmlns='"+NS+"'><forwarded xmlns='"+NSForward+"'>"...)
	b = append(b, original...)
	b = append(b, "</forwarded></"...)
	b = append(b, kind...)
	b = append(b, "></message>"...)
	return b
}
