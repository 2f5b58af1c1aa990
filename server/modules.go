package server

import (
	"context"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/blocking"
	"github.com/xmppd/xmppd/c2s"
	"github.com/xmppd/xmppd/carbons"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/disco"
	"github.com/xmppd/xmppd/entitytime"
	"github.com/xmppd/xmppd/jingle/calls"
	"github.com/xmppd/xmppd/jingle/echo"
	"github.com/xmppd/xmppd/jingle/turn"
	"github.com/xmppd/xmppd/last"
	"github.com/xmppd/xmppd/mam"
	"github.com/xmppd/xmppd/offline"
	"github.com/xmppd/xmppd/pep"
	"github.com/xmppd/xmppd/ping"
	"github.com/xmppd/xmppd/private"
	"github.com/xmppd/xmppd/push"
	"github.com/xmppd/xmppd/register"
	"github.com/xmppd/xmppd/roster"
	"github.com/xmppd/xmppd/upload"
	"github.com/xmppd/xmppd/vcard"
	"github.com/xmppd/xmppd/version"
)

// Module configuration sections, one per module that has settings.
type offlineConfig struct {
	conf.ModuleBase
	MaxMessages int `conf:"max-messages,min=0"` // per user; 0 = unlimited
}

// SetMax sets the per-user limit (tests).
func (c *offlineConfig) SetMax(n int) { c.MaxMessages = n }

type versionConfig struct {
	conf.ModuleBase
	ShowOS bool `conf:"show-os"` // include the operating system in XEP-0092 answers
}

type rosterConfig struct {
	conf.ModuleBase
	Versioning bool `conf:"versioning"` // XEP-0237 roster versioning
}

// Validate refuses enabled="false": the roster module is the RFC 6121 core
// (presence broadcast, subscriptions, probes, and the initial presence that
// triggers offline delivery and PEP last items), so a server without it would
// look up and running while delivering no presence and no offline messages.
// Prosody and ejabberd list their roster and presence modules as the core of
// a working server too; an operator who wants no contact lists needs a
// server that is not an IM server.
func (c *rosterConfig) Validate() error {
	if !c.Enabled() {
		return conf.AttrError("enabled", "the roster is the core of RFC 6121 (presence, subscriptions, offline delivery) and cannot be turned off")
	}
	return nil
}

type plainModule struct{ conf.ModuleBase }

// SetResumeTimeout sets the XEP-0198 resumption timeout (tests).
func (c *smConfig) SetResumeTimeout(d time.Duration) { c.ResumeTimeout = d }

// SetAckEvery sets how many unacknowledged stanzas make the server ask for
// an ack (tests).
func (c *smConfig) SetAckEvery(n int) { c.AckEvery = n }

// smConfig is XEP-0198 stream management (in c2s).
type smConfig struct {
	conf.ModuleBase
	ResumeTimeout    time.Duration `conf:"resume-timeout"`            // how long a lost session waits for its client; 0 = no resumption
	MaxResumeTimeout time.Duration `conf:"max-resume-timeout"`        // the most a client may ask for with max=
	AckEvery         int           `conf:"ack-every,min=1,max=10000"` // unacknowledged stanzas before the server sends <r/>
}

func init() {
	conf.RegisterModule("stream-management", func() any {
		return &smConfig{ResumeTimeout: 300 * time.Second, MaxResumeTimeout: 600 * time.Second, AckEvery: 5}
	})
	conf.RegisterModule("roster", func() any { return &rosterConfig{Versioning: true} })
	conf.RegisterModule("offline", func() any { return &offlineConfig{MaxMessages: 1000} })
	conf.RegisterModule("version", func() any { return &versionConfig{} })
	conf.RegisterModule("ping", func() any { return &plainModule{} })
	conf.RegisterModule("time", func() any { return &plainModule{} })
	conf.RegisterModule("last", func() any { return &plainModule{} })
}

// registerModules is the one list of modules: each registers its handlers,
// hooks and disco features on the router. It returns the extra stream
// features offered after authentication.
func (s *Server) registerModules(opts *c2s.Options) ([]byte, error) {
	cfg, r, log := s.Config, s.Router, s.Log
	d := disco.New(r, "xmppd")

	if cfg.ModuleEnabled("stream-management") {
		sm := cfg.Module("stream-management").(*smConfig)
		opts.SMResumeTimeout, opts.SMMaxResumeTimeout, opts.SMAckEvery = sm.ResumeTimeout, sm.MaxResumeTimeout, sm.AckEvery
	} else {
		opts.SMDisabled = true
	}

	// Order matters: hooks run in registration order. Blocking must see
	// stanzas before the roster and the archive; the archive stamps
	// stanza-ids before carbons copy messages.
	var blocked func(ctx context.Context, owner string, from jid.JID) bool
	if cfg.ModuleEnabled("blocking") {
		bm := blocking.New(r, s.Store.Blocklist(), s.Store.Roster(), log, blocking.Options{MaxItems: cfg.Module("blocking").(*blocking.Config).MaxItems})
		// Offline storage and the archive apply the lists to what they
		// stored before a block (XEP-0191 §3.3).
		blocked = bm.Blocked
	}
	// vcard's presence hook adds the XEP-0153 photo hash before the roster broadcasts.
	if cfg.ModuleEnabled("vcard") {
		vcard.New(r, s.Store.VCards(), log, vcard.Options{MaxSize: int(cfg.Module("vcard").(*vcard.Config).MaxSize)})
	}

	rc := cfg.Module("roster").(*rosterConfig)
	ros := roster.New(r, s.Store.Roster(), log, roster.Options{MaxItems: cfg.Limits.MaxRosterItems, Versioning: rc.Versioning})

	if cfg.ModuleEnabled("mam") {
		mm := mam.New(r, s.Store, log, cfg.Module("mam").(*mam.Config))
		// A page of results fits in a quarter of a session's buffer.
		mm.SetPageBytes(int(cfg.Limits.SessionBuffer) / 4)
		if blocked != nil {
			mm.SetBlocked(blocked)
		}
	}
	if cfg.ModuleEnabled("carbons") {
		carbons.New(r)
	}
	var pm *private.Module
	if cfg.ModuleEnabled("private") {
		pm = private.New(r, s.Store.Private(), log, private.Options{MaxSize: int(cfg.Module("private").(*private.Config).MaxSize)})
	}
	if cfg.ModuleEnabled("pep") {
		po := cfg.Module("pep").(*pep.Config).Options()
		if pm != nil {
			po.Private = s.Store.Private() // XEP-0402 #compat with XEP-0049 bookmarks
		}
		pepMod := pep.New(r, s.Store.PubSub(), s.Store.Roster(), log, po)
		if pm != nil {
			// Bookmarks set through private XML storage reach the PEP node at once.
			pm.Handle(private.NSBookmarks, pepMod)
		}
	}
	if cfg.ModuleEnabled("push") { // before offline: its OnOffline hook only looks
		p, err := push.New(r, s.Store.PushRegistrations(), log, cfg.Module("push").(*push.Config), cfg.Hosts)
		if err != nil {
			return nil, err
		}
		if p.AppServer() != nil {
			d.AddItem(func(domain string) disco.Item {
				return disco.Item{JID: push.Domain(domain), Name: "Push notifications"}
			})
		}
		opts.OnHibernated = p.ChainHibernated(opts.OnHibernated)
		s.onShutdown(p.Close)
	}
	up, err := upload.Register(cfg, r, d, s, log)
	if err != nil {
		return nil, err
	}
	if up != nil {
		s.onShutdown(up.Close)
	}
	// turn: embedded STUN/TURN and XEP-0215 (jingle/turn); turn.Lookup(r) finds it.
	tm, err := turn.Register(cfg, r, s.Certs, log)
	if err != nil {
		return nil, err
	}
	if tm != nil {
		s.onShutdown(func() { _ = tm.Close() })
	}
	// [echo] call test service (jingle/echo): after turn (it takes TURN
	// credentials from it), before calls (its hooks take the stanzas
	// addressed to the service before the calls module sees them).
	em, err := echo.Register(cfg, r, d, log)
	if err != nil {
		return nil, err
	}
	if em != nil {
		s.onShutdown(em.Close)
	}

	if cfg.ModuleEnabled("calls") {
		co := cfg.Module("calls").(*calls.Config).Options()
		co.Roster = s.Store.Roster() // busy is told to contacts only
		s.Calls = calls.New(r, s.Store.Calls(), log, co)
		s.onShutdown(s.Calls.Close)
	}

	if cfg.ModuleEnabled("offline") {
		// Offline messages go out a quarter of a session's buffer at a
		// time, so a flood of large ones never ends the session it is for.
		offline.New(r, s.Store.Offline(), log, offline.Options{MaxMessages: cfg.Module("offline").(*offlineConfig).MaxMessages, Blocked: blocked,
			ChunkBytes: int(cfg.Limits.SessionBuffer) / 4})
	}
	if cfg.ModuleEnabled("ping") {
		ping.Register(r)
	}
	if cfg.ModuleEnabled("version") {
		version.Register(r, cfg.Module("version").(*versionConfig).ShowOS)
	}
	if cfg.ModuleEnabled("time") {
		entitytime.Register(r)
	}
	if cfg.ModuleEnabled("last") {
		last.New(r, s.Store, log)
	}
	reg := register.New(r, s.Store.Accounts(), log, register.Options{
		Enabled:             cfg.Registration.Enabled,
		PerIPPerHour:        cfg.Registration.PerIPPerHour,
		MinPasswordLength:   cfg.Registration.MinPasswordLength,
		AllowPasswordChange: cfg.Registration.AllowPasswordChange,
		AllowRemoval:        cfg.Registration.AllowRemoval,
		Iterations:          cfg.Auth.SCRAMIterations,
	})
	opts.Registrar = reg

	features := append([]byte(nil), ros.StreamFeatures()...)
	features = append(features, d.StreamFeature()...)
	return features, nil
}
