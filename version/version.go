// Package version answers XEP-0092 Software Version queries to the server.
package version

import (
	"runtime"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/wire"
)

// NS is the XEP-0092 namespace.
const NS = "jabber:iq:version"

// Version of xmppd, set at build time with -ldflags "-X".
var Version = "0.1.0-dev"

// Register answers version queries; showOS adds the operating system.
func Register(r *router.Router, showOS bool) {
	b := []byte("<query xmlns='" + NS + "'><name>xmppd</name><version>")
	b = wire.AppendEscapedText(b, Version)
	b = append(b, "</version>"...)
	if showOS {
		b = append(b, "<os>"+runtime.GOOS+"/"+runtime.GOARCH+"</os>"...)
	}
	b = append(b, "</query>"...)
	r.AddFeature(router.ToServer, NS)
	r.HandleIQ("get", NS, router.ToServer, func(c *router.Context) { c.Reply(b) })
}
