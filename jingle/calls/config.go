package calls

import (
	"time"

	"github.com/xmppd/xmppd/conf"
)

// Config is the <calls/> module section.
type Config struct {
	conf.ModuleBase
	Grace         time.Duration `conf:"grace"`          // how long a party that lost its link may take to come back
	ProbeInterval time.Duration `conf:"probe-interval"` // link probes during a call
	ProbeTimeout  time.Duration `conf:"probe-timeout"`  // an unanswered probe means a dead link
	RingTimeout   time.Duration `conf:"ring-timeout"`   // unanswered proposals end after this
	Busy          bool          `conf:"busy"`           // answer proposals to users in a call with reject/busy
}

// Validate implements the conf module check.
func (c *Config) Validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"grace", c.Grace}, {"probe-interval", c.ProbeInterval}, {"probe-timeout", c.ProbeTimeout}, {"ring-timeout", c.RingTimeout}} {
		if d.v < 100*time.Millisecond {
			return conf.AttrError(d.name, "%v is too short (at least 100ms)", d.v)
		}
	}
	return nil
}

// Options returns the module options the section describes.
func (c *Config) Options() Options {
	return Options{Grace: c.Grace, ProbeInterval: c.ProbeInterval, ProbeTimeout: c.ProbeTimeout, RingTimeout: c.RingTimeout, Busy: c.Busy}
}

func init() {
	conf.RegisterModule("calls", func() any {
		return &Config{Grace: 10 * time.Second, ProbeInterval: 3 * time.Second, ProbeTimeout: 5 * time.Second, RingTimeout: 60 * time.Second, Busy: true}
	})
}
