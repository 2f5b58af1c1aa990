// Package entitytime answers XEP-0202 Entity Time queries to the server.
package entitytime

import (
	"time"

	"github.com/xmppd/xmppd/router"
)

// NS is the XEP-0202 namespace.
const NS = "urn:xmpp:time"

// Register answers time queries with the server's clock.
func Register(r *router.Router) {
	r.AddFeature(router.ToServer, NS)
	r.HandleIQ("get", NS, router.ToServer, func(c *router.Context) {
		now := time.Now()
		c.Reply([]byte("<time xmlns='" + NS + "'><tzo>" + now.Format("-07:00") + "</tzo><utc>" +
			now.UTC().Format("2006-01-02T15:04:05.000Z") + "</utc></time>"))
	})
}
