// Package turn is xmppd's TURN/STUN side of calls: an embedded TURN server
// (RFC 5766 over UDP, TCP and TLS, built on pion/turn/v4) that accepts only
// short-lived TURN REST API credentials, and XEP-0215 External Service
// Discovery (urn:xmpp:extdisco:2), which hands those credentials to local
// users for the embedded server and for external ones (coturn with
// use-auth-secret).
//
// Credentials: username "EXPIRY:JID" (unix seconds, the user's bare JID),
// password base64(HMAC-SHA1(secret, username)). Forged, malformed or, for a
// new allocation, expired credentials are answered 401; an allocation made
// while its credentials were valid may still be refreshed with them for
// 12 hours, so a call is not cut when they expire.
//
// Limits: live allocations per JID (486 beyond), and bytes per second per
// allocation and per JID in each direction; packets over a bandwidth limit
// are dropped, never queued.
//
// Peers: relaying to loopback, private (RFC 1918, RFC 4193), CGNAT
// (100.64.0.0/10), link-local, multicast, unspecified and reserved
// addresses, and to the server's own addresses, is refused (403) unless
// the peer is in the allow-list. Two allocations on this server may reach
// each other through the relay address; packets to it go only to live relay
// ports, and are handed from one allocation to the other without the
// kernel. The relay filters packets from peers the allocation holds no
// permission for before pion sees them.
//
// See README.md for the configuration, the XEP-0215 exchange, the tests and
// the benchmark (turnbench).
//
// Stats returns counters (allocations, bytes and packets each way, drops,
// refusals) for metrics.
package turn
