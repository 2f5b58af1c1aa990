package echo

import (
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/conf"
)

// Config is the <echo/> module section.
type Config struct {
	conf.ModuleBase
	// JID is the service's address: a subdomain of a host (echo.DOMAIN,
	// served as a router service) or a bare JID on a host (echo@DOMAIN,
	// taken by router hooks; no account needed, one of that name is
	// shadowed). "" = echo. the first host.
	JID string `conf:"jid"`
	// MaxCalls caps simultaneous echo calls; more are answered busy.
	MaxCalls int `conf:"max-calls,min=1"`
	// MaxDuration ends an echo call after this long.
	MaxDuration time.Duration `conf:"max-duration,min=10s"`
	// RelayOnly makes the service's ICE use the embedded TURN server only
	// (the turn module must be on); false also offers host candidates of
	// the server's interfaces.
	RelayOnly bool `conf:"relay-only"`
}

// DefaultConfig returns the defaults: off; when on, echo. the first host,
// 10 calls of at most 10 minutes, relayed by the embedded TURN server.
func DefaultConfig() *Config {
	c := &Config{MaxCalls: 10, MaxDuration: 10 * time.Minute, RelayOnly: true}
	c.SetEnabled(false)
	return c
}

func init() {
	conf.RegisterModule("echo", func() any { return DefaultConfig() })
}

// Validate implements the conf module check.
func (c *Config) Validate() error {
	if c.JID == "" {
		return nil
	}
	j, err := jid.Parse(c.JID)
	if err != nil {
		return conf.AttrError("jid", "%q is not a JID: %v", c.JID, err)
	}
	if j.Resourcepart() != "" {
		return conf.AttrError("jid", "%q: give a domain (echo.example.org) or a bare JID (echo@example.org), without a resource", c.JID)
	}
	if j.String() != c.JID {
		return conf.AttrError("jid", "%q is not canonical: write %q", c.JID, j.String())
	}
	return nil
}
