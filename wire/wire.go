// Package wire reads and writes XMPP streams as bytes: it splits an incoming
// stream into top-level elements under a size limit and gives each one a
// parsed envelope (kind, type, id, to, from, first child's namespace) beside
// its raw bytes, so that routing a stanza never builds a tree.
//
// It is the first stage of the pipeline in docs/ARCHITECTURE.md: transports
// (TCP, TLS, WebSocket) hand bytes to a Reader; sessions hand Stanzas to the
// router; writers put Raw bytes back on the wire. StreamHeader, StreamError,
// StreamClose and ErrorReply build what the server says itself, and
// AppendEscapedText / AppendEscapedAttr escape values for it.
//
// The Reader is a hand-written incremental state machine, not encoding/xml.
// It checks well-formedness and accepts the restricted XML of RFC 6120 §11:
// no DTD, no entity declarations, no comments, no processing instructions
// (other than the XML declaration before the stream header). Violations are
// *Error values naming the RFC 6120 §4.9.3 stream error to send. Names are
// held to what encoding/xml accepts, so every Raw can be decoded
// (Stanza.Decode) or turned into a tree (Stanza.Element) on cold paths.
package wire

// Namespaces used on the wire.
const (
	NSStream  = "http://etherx.jabber.org/streams"
	NSClient  = "jabber:client"
	NSServer  = "jabber:server"
	NSFraming = "urn:ietf:params:xml:ns:xmpp-framing" // RFC 7395 WebSocket framing
	NSStreams = "urn:ietf:params:xml:ns:xmpp-streams" // stream error conditions
	NSStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas" // stanza error conditions
)

// Kind tells what a top-level element is.
type Kind uint8

const (
	KindOther    Kind = iota // anything that is not a stanza (starttls, auth, r, a, enable, …)
	KindMessage              // <message/>
	KindPresence             // <presence/>
	KindIQ                   // <iq/>
)

func (k Kind) String() string {
	switch k {
	case KindMessage:
		return "message"
	case KindPresence:
		return "presence"
	case KindIQ:
		return "iq"
	}
	return "other"
}

// Stanza is one top-level element of a stream: its raw bytes and an envelope
// parsed from them. The string fields hold unescaped attribute values.
type Stanza struct {
	Kind Kind
	Name string // local name of the top-level element ("message", "auth", "r", …)
	// NS is the namespace of the top-level element as declared on it or on the
	// stream: for stanzas the stream's content namespace (jabber:client),
	// for others their own (urn:ietf:params:xml:ns:xmpp-sasl, urn:xmpp:sm:3, …).
	NS string

	Type string
	ID   string
	To   string
	From string
	Lang string // xml:lang

	// PayloadName and PayloadNS name the first child element ("" if none).
	// For an iq that is the query; for a message it is whatever child comes
	// first (body, a chat state, …); use HasChild to look further.
	PayloadName string
	PayloadNS   string

	// Raw is the complete element as it came from the wire (or as rewritten
	// by SetAddrs). It carries no xmlns for the stream's default namespace.
	Raw []byte

	// ctx is the namespace context the element was read in (the stream's
	// default namespace and the prefixes declared on the stream header).
	ctx *nsContext
}

// nsContext is what a top-level element inherits from its stream.
type nsContext struct {
	def   string   // default namespace (the content namespace)
	decls []nsDecl // prefixes declared on the stream header (at most MaxStreamPrefixes)
	lang  string   // the header's xml:lang, when it is a plausible language tag
}

type nsDecl struct{ prefix, uri string }

// lookup resolves a prefix declared on the stream header.
func (c *nsContext) lookup(prefix []byte) (string, bool) {
	if c == nil {
		return "", false
	}
	for i := range c.decls {
		if c.decls[i].prefix == string(prefix) {
			return c.decls[i].uri, true
		}
	}
	return "", false
}
