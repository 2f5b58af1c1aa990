package jinglecall

import (
	"encoding/xml"
	"strings"
)

// Namespaces.
const (
	NSJingle       = "urn:xmpp:jingle:1"                     // XEP-0166
	NSJingleErrors = "urn:xmpp:jingle:errors:1"              // XEP-0166 error conditions
	NSRTP          = "urn:xmpp:jingle:apps:rtp:1"            // XEP-0167
	NSRTPAudio     = "urn:xmpp:jingle:apps:rtp:audio"        // XEP-0167 disco feature
	NSRTPVideo     = "urn:xmpp:jingle:apps:rtp:video"        // XEP-0167 disco feature
	NSRTCPFB       = "urn:xmpp:jingle:apps:rtp:rtcp-fb:0"    // XEP-0293
	NSHdrExt       = "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0" // XEP-0294
	NSSSMA         = "urn:xmpp:jingle:apps:rtp:ssma:0"       // XEP-0339
	NSICEUDP       = "urn:xmpp:jingle:transports:ice-udp:1"  // XEP-0176
	NSDTLS         = "urn:xmpp:jingle:apps:dtls:0"           // XEP-0320
	NSGrouping     = "urn:xmpp:jingle:apps:grouping:0"       // XEP-0338
	NSJMI          = "urn:xmpp:jingle-message:0"             // XEP-0353
	NSExtDisco     = "urn:xmpp:extdisco:2"                   // XEP-0215
	NSHints        = "urn:xmpp:hints"                        // XEP-0334
	NSCarbons      = "urn:xmpp:carbons:2"                    // XEP-0280
	NSForward      = "urn:xmpp:forward:0"                    // XEP-0297
)

// Features are the disco#info features of an endpoint that speaks what this
// package does (for caps and disco answers).
var Features = []string{
	NSJingle, NSRTP, NSRTPAudio, NSRTPVideo, NSRTCPFB, NSHdrExt, NSSSMA,
	NSICEUDP, NSDTLS, NSGrouping, NSJMI,
}

// Jingle is the <jingle xmlns='urn:xmpp:jingle:1'/> element (XEP-0166).
type Jingle struct {
	XMLName   xml.Name  `xml:"urn:xmpp:jingle:1 jingle"`
	Action    string    `xml:"action,attr"`
	SID       string    `xml:"sid,attr"`
	Initiator string    `xml:"initiator,attr,omitempty"`
	Responder string    `xml:"responder,attr,omitempty"`
	Contents  []Content `xml:"content"`
	Groups    []Group   `xml:"urn:xmpp:jingle:apps:grouping:0 group"`
	Reason    *Reason   `xml:"reason"`
}

// Content is a Jingle <content/>: its name is the SDP a=mid.
type Content struct {
	Creator     string       `xml:"creator,attr"` // initiator or responder: who created the content
	Name        string       `xml:"name,attr"`
	Senders     string       `xml:"senders,attr,omitempty"` // both (default), initiator, responder, none
	Description *Description `xml:"urn:xmpp:jingle:apps:rtp:1 description"`
	Transport   *Transport   `xml:"urn:xmpp:jingle:transports:ice-udp:1 transport"`
}

// Description is an XEP-0167 RTP description.
type Description struct {
	Media        string        `xml:"media,attr"`
	SSRC         string        `xml:"ssrc,attr,omitempty"`
	PayloadTypes []PayloadType `xml:"payload-type"`
	// Feedback at description level applies to every payload type (a=rtcp-fb:*).
	Feedback         []Feedback    `xml:"urn:xmpp:jingle:apps:rtp:rtcp-fb:0 rtcp-fb"`
	HeaderExts       []HeaderExt   `xml:"urn:xmpp:jingle:apps:rtp:rtp-hdrext:0 rtp-hdrext"`
	ExtmapAllowMixed *Empty        `xml:"urn:xmpp:jingle:apps:rtp:rtp-hdrext:0 extmap-allow-mixed"`
	RTCPMux          *Empty        `xml:"rtcp-mux"`
	ReducedSize      *Empty        `xml:"rtcp-reduced-size"`
	Sources          []Source      `xml:"urn:xmpp:jingle:apps:rtp:ssma:0 source"`
	SourceGroups     []SourceGroup `xml:"urn:xmpp:jingle:apps:rtp:ssma:0 ssrc-group"`
}

// Empty is a flag element.
type Empty struct{}

// PayloadType is one codec of a description.
type PayloadType struct {
	ID         uint8       `xml:"id,attr"`
	Name       string      `xml:"name,attr,omitempty"`
	ClockRate  uint32      `xml:"clockrate,attr,omitempty"`
	Channels   uint16      `xml:"channels,attr,omitempty"` // 0 or 1: mono
	PTime      uint32      `xml:"ptime,attr,omitempty"`
	MaxPTime   uint32      `xml:"maxptime,attr,omitempty"`
	Parameters []Parameter `xml:"parameter"` // a=fmtp
	Feedback   []Feedback  `xml:"urn:xmpp:jingle:apps:rtp:rtcp-fb:0 rtcp-fb"`
}

// Parameter is a name/value pair (fmtp, SSMA). A parameter without a value
// is a bare fmtp token (RED's "111/111").
type Parameter struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr,omitempty"`
}

// Feedback is an XEP-0293 <rtcp-fb/> (a=rtcp-fb).
type Feedback struct {
	Type    string `xml:"type,attr"`
	Subtype string `xml:"subtype,attr,omitempty"`
}

// HeaderExt is an XEP-0294 <rtp-hdrext/> (a=extmap).
type HeaderExt struct {
	ID      int    `xml:"id,attr"`
	URI     string `xml:"uri,attr"`
	Senders string `xml:"senders,attr,omitempty"`
}

// Source is an XEP-0339 <source/> (a=ssrc lines of one SSRC).
type Source struct {
	SSRC       uint32      `xml:"ssrc,attr"`
	Parameters []Parameter `xml:"parameter"`
}

// SourceGroup is an XEP-0339 <ssrc-group/> (a=ssrc-group).
type SourceGroup struct {
	Semantics string `xml:"semantics,attr"`
	Sources   []struct {
		SSRC uint32 `xml:"ssrc,attr"`
	} `xml:"source"`
}

// Transport is an XEP-0176 ICE-UDP transport with XEP-0320 fingerprints.
type Transport struct {
	Ufrag        string        `xml:"ufrag,attr,omitempty"`
	Pwd          string        `xml:"pwd,attr,omitempty"`
	Fingerprints []Fingerprint `xml:"urn:xmpp:jingle:apps:dtls:0 fingerprint"`
	Candidates   []Candidate   `xml:"candidate"`
}

// Fingerprint is an XEP-0320 DTLS fingerprint (a=fingerprint, a=setup).
type Fingerprint struct {
	Hash  string `xml:"hash,attr"`
	Setup string `xml:"setup,attr,omitempty"` // actpass, active, passive
	Value string `xml:",chardata"`
}

// Candidate is an XEP-0176 <candidate/>. Generation, ID and Network are
// required by the XEP but left out by some clients; they are strings so
// that nothing fails on them.
type Candidate struct {
	Component  uint16 `xml:"component,attr"`
	Foundation string `xml:"foundation,attr"`
	Generation string `xml:"generation,attr,omitempty"`
	ID         string `xml:"id,attr,omitempty"`
	IP         string `xml:"ip,attr"`
	Network    string `xml:"network,attr,omitempty"`
	Port       uint16 `xml:"port,attr"`
	Priority   uint32 `xml:"priority,attr"`
	Protocol   string `xml:"protocol,attr"`
	Type       string `xml:"type,attr"` // host, srflx, prflx, relay
	RelAddr    string `xml:"rel-addr,attr,omitempty"`
	RelPort    uint16 `xml:"rel-port,attr,omitempty"`
	TCPType    string `xml:"tcptype,attr,omitempty"`
}

// Group is an XEP-0338 <group/> (a=group).
type Group struct {
	Semantics string `xml:"semantics,attr"`
	Contents  []struct {
		Name string `xml:"name,attr"`
	} `xml:"content"`
}

// NewGroup returns a group of the named contents.
func NewGroup(semantics string, names ...string) Group {
	g := Group{Semantics: semantics}
	for _, n := range names {
		g.Contents = append(g.Contents, struct {
			Name string `xml:"name,attr"`
		}{n})
	}
	return g
}

// Reason is a Jingle <reason/> (also inside JMI elements): a condition
// (success, busy, decline, cancel, connectivity-error, expired, timeout,
// general-error, …) and an optional text.
type Reason struct {
	Condition string
	Text      string
}

// MarshalXML writes <reason><CONDITION/><text>…</text></reason>.
func (r Reason) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	start.Name = xml.Name{Local: "reason"}
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	cond := r.Condition
	if cond == "" {
		cond = "success"
	}
	if err := e.EncodeElement(struct{}{}, xml.StartElement{Name: xml.Name{Local: cond}}); err != nil {
		return err
	}
	if r.Text != "" {
		if err := e.EncodeElement(r.Text, xml.StartElement{Name: xml.Name{Local: "text"}}); err != nil {
			return err
		}
	}
	return e.EncodeToken(start.End())
}

// UnmarshalXML reads the first child other than <text/> as the condition.
func (r *Reason) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	var v struct {
		Any []struct {
			XMLName xml.Name
			Text    string `xml:",chardata"`
		} `xml:",any"`
	}
	if err := d.DecodeElement(&v, &start); err != nil {
		return err
	}
	for _, a := range v.Any {
		switch a.XMLName.Local {
		case "text":
			r.Text = strings.TrimSpace(a.Text)
		default:
			if r.Condition == "" {
				r.Condition = a.XMLName.Local
			}
		}
	}
	return nil
}

// Reason conditions used by calls.
const (
	ReasonSuccess           = "success"
	ReasonBusy              = "busy"
	ReasonDecline           = "decline"
	ReasonCancel            = "cancel"
	ReasonConnectivityError = "connectivity-error"
	ReasonExpired           = "expired"
	ReasonTimeout           = "timeout"
	ReasonGeneralError      = "general-error"
	ReasonFailedApplication = "failed-application"
	ReasonFailedTransport   = "failed-transport"
	ReasonGone              = "gone"
)

// jmiElem is a JMI element (propose, ringing, proceed, reject, retract,
// finish) as received.
type jmiElem struct {
	XMLName xml.Name
	ID      string        `xml:"id,attr"`
	Desc    []Description `xml:"urn:xmpp:jingle:apps:rtp:1 description"`
	Reason  *Reason       `xml:"reason"`
}

type jmiMessage struct {
	Any []jmiElem `xml:",any"`
}

// jmi returns the JMI element of a message, if any.
func (m *jmiMessage) jmi() *jmiElem {
	for i := range m.Any {
		if m.Any[i].XMLName.Space == NSJMI {
			return &m.Any[i]
		}
	}
	return nil
}

// carbonMessage is a message carrying an XEP-0280 copy.
type carbonMessage struct {
	Sent *struct {
		Forwarded struct {
			Message struct {
				From string `xml:"from,attr"`
				To   string `xml:"to,attr"`
				jmiMessage
			} `xml:"message"`
		} `xml:"urn:xmpp:forward:0 forwarded"`
	} `xml:"urn:xmpp:carbons:2 sent"`
	Received *struct{} `xml:"urn:xmpp:carbons:2 received"`
}

type jingleIQ struct {
	Jingle *Jingle `xml:"urn:xmpp:jingle:1 jingle"`
}
