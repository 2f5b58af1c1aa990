package wire

import (
	"errors"
	"io"
)

// Header is a stream opening: <stream:stream …> on TCP, <open …/> on WebSocket.
type Header struct {
	To, From, ID, Version, Lang string
	NS                          string // content namespace (jabber:client, jabber:server)
	Framed                      bool   // RFC 7395 <open/>
}

// ErrStreamEnd is returned by Reader.Next when the peer closed the stream
// (</stream:stream> or the framing <close/>).
var ErrStreamEnd = errors.New("wire: stream closed by peer")

// Error is a violation of the stream's rules. Condition is the RFC 6120 §4.9.3
// stream error to send: "not-well-formed", "restricted-xml",
// "policy-violation" (too big), "invalid-namespace", "bad-format",
// "unsupported-encoding", "invalid-xml", "bad-namespace-prefix".
type Error struct {
	Condition string
	Text      string
}

func (e *Error) Error() string { return "wire: " + e.Condition + ": " + e.Text }

// Reader splits a stream into top-level elements.
type Reader struct {
	_ struct{}
}

// NewReader returns a Reader over r that refuses top-level elements larger
// than maxStanza bytes with a policy-violation Error.
func NewReader(r io.Reader, maxStanza int) *Reader { panic("unimplemented") }

// Reset makes the Reader read a fresh stream from r (after STARTTLS, or a
// SASL success restart) and drops anything buffered.
func (r *Reader) Reset(src io.Reader) { panic("unimplemented") }

// Header reads an optional XML declaration and the stream header.
func (r *Reader) Header() (Header, error) { panic("unimplemented") }

// Next returns the next top-level element. Whitespace between elements is
// skipped (whitespace keepalives). The returned Stanza and its Raw are owned
// by the caller.
func (r *Reader) Next() (*Stanza, error) { panic("unimplemented") }
