package conf

import (
	"crypto/tls"
	"log/slog"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"mellium.im/xmpp/jid"
)

// DefaultDataDir is the data directory used when none is given.
const DefaultDataDir = "xmppd-data"

// Config is the whole server configuration: the root element <xmppd>.
type Config struct {
	// Path is the file the configuration was read from ("" for the
	// embedded default). DataDir is the data directory relative paths were
	// resolved against. Neither is written in the file.
	Path    string
	DataDir string

	// Hosts are the domains served, in canonical form (lowercase, Unicode
	// U-labels): <hosts><host name="example.org"/>…</hosts>.
	Hosts        []string       `conf:"hosts>host@name"`
	TLS          TLS            `conf:"tls"`
	Listeners    Listeners      `conf:"listeners"`
	Storage      Storage        `conf:"storage"`
	Auth         Auth           `conf:"auth"`
	Registration Registration   `conf:"registration"`
	Limits       Limits         `conf:"limits"`
	Log          Log            `conf:"log"`
	Modules      map[string]any `conf:"modules"` // name -> the module's config struct pointer; every registered module is present

	// Warnings are things that are allowed but unwise (auth require-tls="false"),
	// each located like an error. Validate recomputes them; the server logs
	// them at startup.
	Warnings []string

	src       *source         // positions in the file; nil if none
	moduleOff map[string]bool // enabled="false" on modules that do not embed ModuleBase
}

// TLS is <tls>: the certificate used by every TLS listener.
type TLS struct {
	// Cert and Key are PEM files. Both empty means: generate a self-signed
	// certificate for the hosts and keep it in the data directory.
	Cert       Path       `conf:"cert"`
	Key        Path       `conf:"key"`
	MinVersion TLSVersion `conf:"min-version"`
}

// SelfSigned reports whether no certificate is configured, so the server
// should generate (and keep in the data directory) a self-signed one.
func (t TLS) SelfSigned() bool { return t.Cert == "" && t.Key == "" }

// Listeners is <listeners>. When the element is present in the file it lists
// every listener: the default ones are dropped.
type Listeners struct {
	C2S  []C2SListener  `conf:"c2s"`
	HTTP []HTTPListener `conf:"http"`
}

// C2SListener is <c2s address="…" tls="…"/>: a client-to-server TCP port.
type C2SListener struct {
	Address HostPort `conf:"address,required"`
	TLS     TLSMode  `conf:"tls"`
}

// SetDefaults implements Defaulter.
func (l *C2SListener) SetDefaults() { *l = C2SListener{TLS: TLSStartTLS} }

// HTTPListener is <http …/>: WebSocket (RFC 7395), host-meta (XEP-0156) and
// later BOSH, uploads and metrics.
type HTTPListener struct {
	Address HostPort `conf:"address,required"`
	// TLS serves HTTPS with the <tls> certificate; false is for a
	// TLS-terminating reverse proxy in front (list it in TrustedProxies).
	TLS bool `conf:"tls"`
	// WebSocketPath is where the XMPP WebSocket endpoint lives; "" turns it off.
	WebSocketPath string `conf:"websocket-path"`
	// BOSHPath is where XMPP over BOSH (XEP-0124/XEP-0206) lives; "" turns it off.
	BOSHPath string `conf:"bosh-path"`
	// HostMeta serves /.well-known/host-meta and host-meta.json.
	HostMeta bool `conf:"host-meta"`
	// TrustedProxies are the peers whose X-Forwarded-For / X-Forwarded-Proto
	// / Forwarded headers are believed (c2s.BehindProxies). No other peer,
	// loopback included, may claim to be anything but itself.
	TrustedProxies PrefixList `conf:"trusted-proxies"`
}

// SetDefaults implements Defaulter.
func (l *HTTPListener) SetDefaults() {
	*l = HTTPListener{WebSocketPath: "/xmpp-websocket", BOSHPath: "/http-bind", HostMeta: true}
}

// Storage is <storage>.
type Storage struct {
	Driver StorageDriver `conf:"driver"`
	Path   Path          `conf:"path"` // SQLite database file
	// Sync says when a commit is durable: "normal" survives a crash or
	// kill -9 of xmppd, "full" also an operating-system crash or power loss
	// (an fsync per commit).
	Sync StorageSync `conf:"sync"`
}

// Auth is <auth>: SASL and brute-force protection.
type Auth struct {
	// RequireTLS refuses authentication on streams without TLS. "false" is
	// accepted but produces a warning.
	RequireTLS bool `conf:"require-tls"`
	// AllowPlain offers SASL PLAIN (over TLS only, unless RequireTLS is off).
	AllowPlain bool `conf:"allow-plain"`
	// SCRAMIterations is the PBKDF2 iteration count for newly stored SCRAM
	// keys (RFC 7677 asks for at least 4096).
	SCRAMIterations int `conf:"scram-iterations,min=4096,max=10000000"`
	// MaxFailures closes the stream after this many failed attempts on one
	// connection (0 = unlimited).
	MaxFailures int `conf:"max-failures,min=0"`
	// FailureDelay is waited before answering a failed attempt.
	FailureDelay time.Duration `conf:"failure-delay,max=1m"`
	// Failed attempts per minute allowed from one IP address, and from one
	// IP address against one account (0 = unlimited). No limit is kept per
	// account alone: a stranger must not lock the owner out.
	IPFailuresPerMinute      int `conf:"ip-failures-per-minute,min=0"`
	AccountFailuresPerMinute int `conf:"account-failures-per-minute,min=0"`
	// ChannelBinding offers the SCRAM-*-PLUS mechanisms.
	ChannelBinding bool `conf:"channel-binding"`
}

// Registration is <registration>: in-band account registration (XEP-0077).
type Registration struct {
	Enabled             bool `conf:"enabled"` // new accounts may be created in-band
	PerIPPerHour        int  `conf:"per-ip-per-hour,min=0"`
	MinPasswordLength   int  `conf:"min-password-length,min=1,max=1024"`
	AllowPasswordChange bool `conf:"allow-password-change"` // users may change their password in-band
	AllowRemoval        bool `conf:"allow-removal"`         // users may delete their account in-band
}

// Limits is <limits>. 0 means unlimited where noted.
type Limits struct {
	MaxStanzaSize         ByteSize      `conf:"max-stanza-size,min=10000"`      // RFC 6120 §13.12: at least 10000 bytes
	PreAuthStanzaSize     ByteSize      `conf:"pre-auth-stanza-size,min=10000"` // largest element before authentication
	MaxConnectionsPerIP   int           `conf:"max-connections-per-ip,min=0"`
	MaxSessionsPerAccount int           `conf:"max-sessions-per-account,min=0"`
	BytesPerSecond        ByteSize      `conf:"bytes-per-second"`           // per session, inbound; 0 = unlimited
	BytesBurst            ByteSize      `conf:"bytes-burst"`                // inbound bytes a session may send at once above the rate
	StanzasPerSecond      int           `conf:"stanzas-per-second,min=0"`   // per session, inbound; 0 = unlimited
	NegotiationTimeout    time.Duration `conf:"negotiation-timeout,min=1s"` // from TCP accept to a bound resource
	PingInterval          time.Duration `conf:"ping-interval"`              // idle time before the server pings; 0 = never
	PingTimeout           time.Duration `conf:"ping-timeout,min=1s"`        // how long a ping may stay unanswered
	MaxRosterItems        int           `conf:"max-roster-items,min=0"`     // 0 = unlimited
	OutboundQueue         int           `conf:"outbound-queue,min=1"`       // stanzas queued per session before it is dropped
	SessionBuffer         ByteSize      `conf:"session-buffer,min=10000"`   // bytes held for one session (queue, XEP-0198, CSI, BOSH) before it is dropped
	UnackedWrites         int           `conf:"unacked-writes,min=1"`       // stanzas of one session waiting for durable writes before it is no longer read
	GCPercent             int           `conf:"gc-percent,min=10,max=1000"` // Go garbage collector target (GOGC); lower holds less memory per session
	IdleRestack           time.Duration `conf:"idle-restack"`               // silence after which a TCP session's reader moves to a fresh goroutine (small stack); 0 = never
}

// Log is <log>.
type Log struct {
	Level  slog.Level `conf:"level"`
	Format LogFormat  `conf:"format"`
	File   Path       `conf:"file"` // "" = standard error
}

// Default returns the embedded default configuration, the one used when
// there is no configuration file: domain localhost, data in dataDir
// (DefaultDataDir if ""), c2s with STARTTLS on 127.0.0.1:5222 and direct TLS
// on 127.0.0.1:5223, HTTP on 127.0.0.1:5280 and HTTPS on 127.0.0.1:5281 with
// WebSocket at /xmpp-websocket and BOSH at /http-bind, a generated self-signed certificate, and every registered
// module with its defaults.
func Default(dataDir string) *Config {
	c := defaults(dataDir)
	c.resolvePaths()
	_ = c.Validate() // sets Warnings; the defaults are valid (tested)
	return c
}

// defaults is Default before relative paths are resolved.
func defaults(dataDir string) *Config {
	if dataDir == "" {
		dataDir = DefaultDataDir
	}
	c := &Config{
		DataDir: filepath.Clean(dataDir),
		Hosts:   []string{"localhost"},
		TLS:     TLS{MinVersion: tls.VersionTLS12},
		Listeners: Listeners{
			C2S: []C2SListener{
				{Address: "127.0.0.1:5222", TLS: TLSStartTLS},
				{Address: "127.0.0.1:5223", TLS: TLSDirect},
			},
			HTTP: []HTTPListener{
				{Address: "127.0.0.1:5280", WebSocketPath: "/xmpp-websocket", BOSHPath: "/http-bind", HostMeta: true},
				{Address: "127.0.0.1:5281", TLS: true, WebSocketPath: "/xmpp-websocket", BOSHPath: "/http-bind", HostMeta: true},
			},
		},
		Storage: Storage{Driver: DriverSQLite, Path: "xmppd.db", Sync: SyncNormal},
		Auth: Auth{
			RequireTLS:               true,
			AllowPlain:               true,
			SCRAMIterations:          4096,
			MaxFailures:              3,
			FailureDelay:             time.Second,
			IPFailuresPerMinute:      20,
			AccountFailuresPerMinute: 10,
			ChannelBinding:           true,
		},
		Registration: Registration{
			PerIPPerHour:        5,
			MinPasswordLength:   8,
			AllowPasswordChange: true,
			AllowRemoval:        true,
		},
		Limits: Limits{
			MaxStanzaSize:         256 * KiB,
			PreAuthStanzaSize:     10 * KiB,
			BytesPerSecond:        32 * KiB,
			BytesBurst:            1 * MiB,
			SessionBuffer:         4 * MiB,
			MaxConnectionsPerIP:   100,
			MaxSessionsPerAccount: 20,
			NegotiationTimeout:    30 * time.Second,
			PingInterval:          60 * time.Second,
			PingTimeout:           30 * time.Second,
			MaxRosterItems:        1000,
			OutboundQueue:         1000,
			UnackedWrites:         256,
			GCPercent:             50,
			IdleRestack:           10 * time.Second,
		},
		Log:       Log{Level: slog.LevelInfo, Format: LogText},
		Modules:   map[string]any{},
		moduleOff: map[string]bool{},
	}
	for _, m := range registered() {
		c.Modules[m.name] = m.newDefault()
	}
	return c
}

// resolvePaths makes every relative Path (in the core sections and in the
// modules) relative to the data directory.
func (c *Config) resolvePaths() {
	fix := func(f *field, v reflect.Value, key string) {
		if v.Type() == pathType && v.String() != "" && !filepath.IsAbs(v.String()) {
			v.SetString(filepath.Join(c.DataDir, v.String()))
		}
	}
	walkValues(reflect.ValueOf(c).Elem(), infoFor(reflect.TypeFor[Config]()), "xmppd", fix)
	for _, name := range c.moduleNames() {
		if v := reflect.ValueOf(c.Modules[name]); v.Kind() == reflect.Pointer && !v.IsNil() && v.Elem().Kind() == reflect.Struct {
			walkValues(v.Elem(), infoFor(v.Elem().Type()), "xmppd/modules/"+name, fix)
		}
	}
}

func (c *Config) moduleNames() []string {
	names := make([]string, 0, len(c.Modules))
	for n := range c.Modules {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// IsLocal reports whether domain is one of the hosts this server serves.
// domain is compared in canonical form; a non-canonical spelling
// ("Example.ORG.", an A-label) is normalized first.
func (c *Config) IsLocal(domain string) bool {
	for _, h := range c.Hosts {
		if h == domain {
			return true
		}
	}
	if domain == "" {
		return false
	}
	canon, err := canonicalDomain(domain)
	if err != nil || canon == domain {
		return false
	}
	for _, h := range c.Hosts {
		if h == canon {
			return true
		}
	}
	return false
}

// Module returns the configuration of a registered module (the pointer its
// newDefault returned, filled from the file), or nil if no module of that
// name was registered when the configuration was made.
func (c *Config) Module(name string) any { return c.Modules[name] }

// ModuleEnabled reports whether module name is on: registered, and not turned
// off with enabled="false" (nor off by default, for a module whose default
// embeds a disabled ModuleBase).
func (c *Config) ModuleEnabled(name string) bool {
	m, ok := c.Modules[name]
	if !ok || m == nil {
		return false
	}
	if b, ok := m.(interface{ moduleBase() *ModuleBase }); ok {
		return b.moduleBase().Enabled()
	}
	return !c.moduleOff[name]
}

func (c *Config) setModuleEnabled(name string, on bool) {
	if b, ok := c.Modules[name].(interface{ moduleBase() *ModuleBase }); ok {
		b.moduleBase().SetEnabled(on)
		return
	}
	if c.moduleOff == nil {
		c.moduleOff = map[string]bool{}
	}
	c.moduleOff[name] = !on
}

// canonicalDomain returns the canonical form of a domain JID's domainpart.
func canonicalDomain(s string) (string, error) {
	j, err := jid.New("", s, "")
	if err != nil {
		return "", err
	}
	return j.Domainpart(), nil
}

// isAlabelSpelling reports whether s differs from its canonical form only by
// IDNA A-labels ("xn--…"), which are accepted and converted.
func isAlabelSpelling(s string) bool {
	return strings.Contains(s, "xn--") && strings.ToLower(s) == s && !strings.HasSuffix(s, ".")
}
