// Package sasl implements the SASL mechanisms xmppd offers to clients, and
// the matching client side used by tests and by the load tool.
//
// Mechanisms:
//
//   - SCRAM-SHA-1, SCRAM-SHA-256 and SCRAM-SHA-512, each also as -PLUS with
//     channel binding: RFC 5802 (SCRAM), RFC 7677 (SCRAM-SHA-256), the
//     SCRAM-SHA-512 construction of draft-melnikov-scram-sha-512 (identical to
//     RFC 7677 with SHA-512), GS2 header of RFC 5801.
//   - PLAIN: RFC 4616, verified against the stored SCRAM keys.
//
// Channel binding types: tls-exporter (RFC 9266, TLS 1.3 only) and
// tls-server-end-point (RFC 5929); advertised per XEP-0440.
//
// Strings are prepared with PRECIS (RFC 8264): usernames with the
// UsernameCaseMapped profile and passwords with OpaqueString (RFC 8265),
// which replace SASLprep (RFC 4013).
//
// Errors returned by [Server.Next] wrap one of [ErrNotAuthorized],
// [ErrMalformed], [ErrInvalidMechanism] or [ErrTemporary], which the caller
// maps to the RFC 6120 §6.5 failure conditions.
package sasl
