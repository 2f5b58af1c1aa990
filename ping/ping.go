// Package ping answers XEP-0199 XMPP Ping addressed to the server. The
// server's own keepalive pings to silent clients live in c2s.
package ping

import "github.com/xmppd/xmppd/router"

// NS is the XEP-0199 namespace.
const NS = "urn:xmpp:ping"

// Register makes the server answer pings.
func Register(r *router.Router) {
	r.AddFeature(router.ToServer, NS)
	r.HandleIQ("get", NS, router.ToServer, func(c *router.Context) { c.Reply(nil) })
}
