package push

import (
	"hash/fnv"
	"strings"
	"unicode/utf8"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/wire"
)

const (
	nsJMI     = "urn:xmpp:jingle-message:0"
	nsAxolotl = "eu.siacs.conversations.axolotl" // OMEMO (legacy namespace, what clients deploy)
	nsOMEMO2  = "urn:xmpp:omemo:2"
	nsOX      = "urn:xmpp:openpgp:0"
	nsPGP     = "jabber:x:encrypted"
)

// event is one message worth a notification.
type event struct {
	owner  string // the recipient's bare JID
	sender string // the sender's bare JID
	body   string // the text, when bodies are included and the message is plain
	call   *call  // a Jingle Message Initiation proposal
	digest uint64 // of the raw stanza: the same message is counted once per device
}

// call is a JMI <propose/>.
type call struct {
	id    string   // the proposal id (the Jingle sid)
	from  string   // the caller's full JID
	media []string // from the <description media='…'/> children
}

// msgView is what inspect reads of a message.
type msgView struct {
	Body []string `xml:"jabber:client body"`
	// Encrypted payloads. An OMEMO element without <payload/> only carries
	// keys (no message for the user).
	Axolotl *struct {
		Payload *struct{} `xml:"payload"`
	} `xml:"eu.siacs.conversations.axolotl encrypted"`
	OMEMO2 *struct {
		Payload *struct{} `xml:"payload"`
	} `xml:"urn:xmpp:omemo:2 encrypted"`
	OX      *struct{} `xml:"urn:xmpp:openpgp:0 openpgp"`
	PGP     *struct{} `xml:"jabber:x:encrypted x"`
	Propose *struct {
		ID    string `xml:"id,attr"`
		Descs []struct {
			Media string `xml:"media,attr"`
		} `xml:"description"`
	} `xml:"urn:xmpp:jingle-message:0 propose"`
}

// maxBody bounds the text put in a summary (vendor payloads are small).
const maxBody = 512

// inspect tells whether a message deserves a notification: a body, an
// encrypted payload or a JMI proposal, in a chat or normal message.
func inspect(st *wire.Stanza, includeBody bool) (event, bool) {
	if st.Kind != wire.KindMessage {
		return event{}, false
	}
	switch st.Type {
	case "", "normal", "chat":
	default:
		return event{}, false
	}
	var ev event
	hasBody := st.HasChild(wire.NSClient, "body")
	encrypted := st.HasChild(nsAxolotl, "encrypted") || st.HasChild(nsOMEMO2, "encrypted") ||
		st.HasChild(nsOX, "openpgp") || st.HasChild(nsPGP, "x")
	propose := st.HasChild(nsJMI, "propose")
	if !hasBody && !encrypted && !propose {
		return event{}, false
	}
	var v msgView
	if err := st.Decode(&v); err != nil {
		return event{}, false
	}
	switch {
	case v.Propose != nil && v.Propose.ID != "":
		c := &call{id: v.Propose.ID, from: st.From}
		for _, d := range v.Propose.Descs {
			if d.Media != "" {
				c.media = append(c.media, d.Media)
			}
		}
		ev.call = c
	case (v.Axolotl != nil && v.Axolotl.Payload != nil) || (v.OMEMO2 != nil && v.OMEMO2.Payload != nil) || v.OX != nil || v.PGP != nil:
		// Encrypted: a body beside it is only a fallback text.
	case len(v.Body) > 0 && strings.TrimSpace(strings.Join(v.Body, "")) != "":
		if includeBody {
			ev.body = truncate(strings.TrimSpace(v.Body[0]), maxBody)
		}
	default:
		return event{}, false
	}
	if from, err := jid.Parse(st.From); err == nil {
		ev.sender = from.Bare().String()
	}
	h := fnv.New64a()
	h.Write(st.Raw)
	ev.digest = h.Sum64()
	return ev, true
}

// truncate cuts s to at most n bytes on a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
