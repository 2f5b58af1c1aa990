// Package jinglecall is a Go Jingle client: audio/video calls between XMPP
// users with pion/webrtc (v4) peer connections, for app developers and for
// xmppd's own tests and echo service.
//
// A Phone rides on one XMPP connection — anything with Send(raw string)
// error, such as client.Client — and is fed the stanzas that arrive
// (Handle, or Run over client.Client.Incoming()). It speaks:
//
//   - XEP-0353 Jingle Message Initiation: <propose/> to the callee's bare
//     JID (every device rings), <ringing/>, <proceed/>, <reject/>,
//     <retract/>, <finish/>, each to the peer's full JID (JMI 0.8), with
//     the store hint; the JMI id is the Jingle sid. A <proceed/> or
//     <reject/> sent by another device of the account (a carbon) stops the
//     ringing here.
//   - XEP-0166 sessions: session-initiate to the full JID that proceeded,
//     session-accept, session-terminate with a reason, session-info
//     (acknowledged), unknown sessions answered <unknown-session/>.
//   - XEP-0167 RTP descriptions, XEP-0176 ICE-UDP with trickle
//     (transport-info; remote candidates are buffered until the remote
//     description is set), XEP-0320 DTLS fingerprints (offer actpass, answer
//     active), XEP-0338 BUNDLE groups, XEP-0339 sources, XEP-0293 rtcp-fb,
//     XEP-0294 header extensions.
//   - XEP-0215: ExternalServices / DiscoverICEServers fetch the server's
//     STUN/TURN entries and turn them into pion ICE servers (stun: URLs
//     without a query, turn:/turns: with ?transport=).
//
// The Jingle ↔ SDP mapping (SDPToJingle, JingleToSDP) follows the rules in
// xmppd's notes: a content's name is the SDP a=mid; creator is who created
// the content (the initiator for every content of a call it started, also
// in the responder's session-accept and transport-info); senders ↔
// a=sendrecv/sendonly/recvonly/inactive relative to the Jingle role of the
// SDP's author; description-level rtcp-fb applies to every payload type;
// fmtp tokens without a value (RED's 111/111) survive; candidates without
// the XEP's id/generation/network or with rel-addr but no rel-port are
// accepted.
//
// Calls end by themselves when their media connection fails, stays
// disconnected longer than Config.DisconnectTimeout, does not come up within
// Config.ConnectTimeout, or when the Jingle negotiation after <proceed/>
// takes longer than Config.SetupTimeout; the peer is then sent a
// session-terminate and a JMI <finish/> with reason connectivity-error
// (or timeout).
//
// Not done: Jingle content-add/modify/remove and transport-replace
// (answered feature-not-implemented), ICE restarts, JMI tie-breaking of two
// simultaneous proposals, data channels (XEP-0343), SDES-SRTP, calls found
// in a MAM catch-up (only live stanzas ring).
package jinglecall
