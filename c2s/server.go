// Package c2s serves client-to-server XMPP streams (RFC 6120) over TCP with
// STARTTLS, direct TLS (XEP-0368) and WebSocket (RFC 7395): stream
// negotiation (TLS, SASL, resource binding), then our own stanza loop that
// stamps every stanza and hands it to the router.
//
// Transports only frame bytes; a Session does not know which one it rides on.
package c2s

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xmppd/xmppd/internal/accept"
	"github.com/xmppd/xmppd/internal/lograte"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

// TLSMode says how a TCP listener secures its connections.
type TLSMode int

const (
	StartTLS  TLSMode = iota // plain TCP, STARTTLS offered (RFC 6120 §5)
	DirectTLS                // TLS from the first byte (XEP-0368)
	NoTLS                    // plain TCP only (loopback benchmarks)
)

// Registrar answers XEP-0077 in-band registration iqs on a stream that has
// not authenticated yet. It returns the reply element.
type Registrar interface {
	PreAuth(ctx context.Context, st *wire.Stanza, domain string, ip net.IP, secure bool) []byte
	Enabled() bool
}

// ExtHandler handles a top-level non-stanza element on a bound session
// (XEP-0198 <enable/>, <r/>, <a/> …).
type ExtHandler func(ctx context.Context, s *Session, st *wire.Stanza) error

// Options configure a Server.
type Options struct {
	Log      *slog.Logger
	Router   *router.Router
	Accounts storage.Accounts
	// TLS serves certificates for every local domain; nil disables TLS.
	// The certificate each handshake presents is recorded for
	// tls-server-end-point.
	TLS *tls.Config

	RequireTLS     bool // no SASL before TLS
	AllowPlain     bool // offer PLAIN (only over TLS unless RequireTLS is false)
	ChannelBinding bool // offer SCRAM-*-PLUS
	// SCRAMIterations is announced for unknown users (as for stored keys).
	SCRAMIterations int
	// SASLSecret keys the fake salts of unknown users (persisted, so they
	// stay stable across restarts).
	SASLSecret []byte

	MaxStanza          int
	MaxStanzaPreAuth   int // before authentication (default min(10 KiB, MaxStanza))
	NegotiationTimeout time.Duration
	PingInterval       time.Duration
	PingTimeout        time.Duration
	WriteTimeout       time.Duration
	OutboundQueue      int
	// SessionBuffer bounds the bytes held for one session: its outbound
	// queue, XEP-0198 unacknowledged (and hibernated) stanzas, the XEP-0352
	// hold and BOSH responses not yet fetched (default 4 MiB).
	SessionBuffer int
	// UnackedWrites bounds the stanzas of one session that were routed
	// but whose durable writes (router.Context.Hold) are not done: past
	// it the session is not read until they are (default 256).
	UnackedWrites int

	MaxAuthFailures          int           // per stream, then policy-violation; 0 = 3, negative = unlimited
	FailureDelay             time.Duration // before answering a failed auth
	IPFailuresPerMinute      int           // failed logins per minute from one address (IPv6: /64)
	AccountFailuresPerMinute int           // … from one address against one account
	MaxConnsPerIP            int
	MaxSessionsPerAccount    int
	StanzasPerSecond         int // per session, inbound; 0 = unlimited
	BytesPerSecond           int // per session, inbound; 0 = unlimited
	BytesBurst               int // above BytesPerSecond, at least MaxStanza

	// XEP-0198: how long a resumable session waits for its client
	// (0 disables resumption), the most a client may ask for, and how many
	// unacknowledged stanzas make the server ask for an ack.
	SMResumeTimeout    time.Duration
	SMMaxResumeTimeout time.Duration
	SMAckEvery         int
	// SMDisabled turns XEP-0198 off: <sm/> is not offered, and <enable/>
	// is answered <failed/> with <feature-not-implemented/>.
	SMDisabled bool
	// IdleRestack is how long a TCP link may be silent before its reading
	// moves to a fresh goroutine, freeing the stack grown by handling
	// stanzas (default 10s; negative: never).
	IdleRestack time.Duration
	// OnHibernated is called for every stanza a hibernating session is
	// sent (push notifications hook in here).
	OnHibernated func(s *Session, raw []byte)

	Registrar Registrar
	// Features returns extra stream features offered after authentication.
	Features func() []byte
	// Extensions handle non-stanza elements after binding, keyed by
	// "namespace localname".
	Extensions map[string]ExtHandler
	// ClientOf tells who sent a WebSocket request: the client's address and
	// whether its connection was TLS (see BehindProxies); nil is
	// DirectClient.
	ClientOf ClientOf
}

// Server owns the c2s listeners and the sessions on them.
type Server struct {
	opts   Options
	router *router.Router
	log    *slog.Logger
	limits *authLimiter
	// authLog logs failed logins, which anyone can cause: at most a few
	// lines a second (internal/lograte).
	authLog *slog.Logger

	tlsCfg *tls.Config // opts.TLS, recording the certificate presented
	// presented maps a connection in its TLS handshake to the certificate
	// GetCertificate chose for it.
	presented sync.Map

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	perIP     map[string]int
	resumable map[string]*Session // XEP-0198 id → session
	// restacked counts idle links whose reading moved to a fresh goroutine.
	restacked atomic.Uint64
	shutdown  bool
	wg        sync.WaitGroup
}

// conn is one connection being served (negotiating or bound).
type conn struct {
	t    transport
	in   *activityReader
	sess *Session
}

// activityReader notes when bytes last arrived, whitespace keepalives
// included, so that the keepalive ping only goes to silent clients.
type activityReader struct {
	t        transport
	lastRead atomic.Int64 // unix nanos
}

func (a *activityReader) Read(p []byte) (int, error) {
	n, err := a.t.Read(p)
	if n > 0 {
		a.lastRead.Store(time.Now().UnixNano())
	}
	return n, err
}

// New returns a Server; fill zero options with defaults.
func New(o Options) *Server {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.MaxStanza <= 0 {
		o.MaxStanza = 256 << 10
	}
	if o.MaxStanzaPreAuth <= 0 || o.MaxStanzaPreAuth > o.MaxStanza {
		o.MaxStanzaPreAuth = min(10<<10, o.MaxStanza)
	}
	if o.SessionBuffer <= 0 {
		o.SessionBuffer = 4 << 20
	}
	o.SessionBuffer = max(o.SessionBuffer, o.MaxStanza)
	o.BytesBurst = max(o.BytesBurst, o.BytesPerSecond, o.MaxStanza)
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.NegotiationTimeout, 30*time.Second)
	def(&o.PingInterval, 60*time.Second)
	def(&o.PingTimeout, 30*time.Second)
	def(&o.WriteTimeout, 30*time.Second)
	def(&o.FailureDelay, 0)
	if o.IdleRestack == 0 {
		o.IdleRestack = 10 * time.Second
	}
	if o.OutboundQueue <= 0 {
		o.OutboundQueue = 1000
	}
	if o.UnackedWrites <= 0 {
		o.UnackedWrites = 256
	}
	if o.SMMaxResumeTimeout < o.SMResumeTimeout {
		o.SMMaxResumeTimeout = o.SMResumeTimeout
	}
	if o.SMAckEvery <= 0 {
		o.SMAckEvery = 5
	}
	if o.MaxAuthFailures == 0 {
		o.MaxAuthFailures = 3
	}
	if o.Extensions == nil {
		o.Extensions = map[string]ExtHandler{}
	}
	srv := &Server{
		opts:      o,
		router:    o.Router,
		log:       o.Log,
		authLog:   lograte.Limit(o.Log, lograte.Window, lograte.Burst),
		limits:    newAuthLimiter(o.IPFailuresPerMinute, o.AccountFailuresPerMinute),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
		perIP:     make(map[string]int),
		resumable: make(map[string]*Session),
	}
	srv.tlsCfg = srv.serverTLS(o.TLS)
	o.Router.HandleIQ("set", nsSession, router.ToServer|router.ToBare, func(c *router.Context) { c.Reply(nil) })
	return srv
}

// Serve accepts connections on l until it is closed or Shutdown is called.
func (srv *Server) Serve(l net.Listener, mode TLSMode) error {
	srv.mu.Lock()
	if srv.shutdown {
		srv.mu.Unlock()
		return net.ErrClosed
	}
	srv.listeners[l] = struct{}{}
	srv.mu.Unlock()
	// Temporary errors (out of file descriptors …) are waited out and
	// retried; only a closed or broken listener ends Serve.
	rl := accept.Retrying(l, srv.log)
	for {
		c, err := rl.Accept()
		if err != nil {
			srv.mu.Lock()
			stopped := srv.shutdown
			srv.mu.Unlock()
			if stopped {
				return nil
			}
			return err
		}
		go srv.serveTCP(c, mode)
	}
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

// admit counts a connection from ip; false if over the per-IP limit.
func (srv *Server) admit(c *conn) bool {
	ip := hostOf(c.t.remoteAddr())
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.shutdown {
		return false
	}
	if srv.opts.MaxConnsPerIP > 0 && srv.perIP[ip] >= srv.opts.MaxConnsPerIP {
		return false
	}
	srv.perIP[ip]++
	srv.conns[c] = struct{}{}
	srv.wg.Add(1)
	return true
}

func (srv *Server) release(c *conn) {
	ip := hostOf(c.t.remoteAddr())
	srv.mu.Lock()
	if srv.perIP[ip]--; srv.perIP[ip] <= 0 {
		delete(srv.perIP, ip)
	}
	delete(srv.conns, c)
	srv.mu.Unlock()
	srv.wg.Done()
}

func (srv *Server) serveTCP(nc net.Conn, mode TLSMode) {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetKeepAlive(true)
	}
	t := &tcpTransport{conn: nc}
	c := &conn{t: t}
	if !srv.admit(c) {
		// RFC 6120 §4.9.3.17: policy-violation, after a stream header.
		_ = nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = nc.Write(append(wire.StreamHeader(wire.Header{Version: "1.0", NS: wire.NSClient}),
			append(wire.StreamError("policy-violation", "Too many connections"), wire.StreamClose(false)...)...))
		nc.Close()
		return
	}
	s, rd, gen := srv.handshakeAndNegotiate(c, t, nc, mode)
	if s == nil {
		srv.release(c)
		return
	}
	// The session's stanza loop runs on a fresh goroutine: the stack this
	// one grew during the TLS handshake and SASL is freed with it, so an
	// idle session keeps only a small stack.
	go s.loopTCP(context.Background(), rd, gen, t, func() { srv.release(c) })
}

func (srv *Server) handshakeAndNegotiate(c *conn, t *tcpTransport, nc net.Conn, mode TLSMode) (*Session, *wire.Reader, uint64) {
	if mode == DirectTLS {
		if srv.opts.TLS == nil {
			nc.Close()
			return nil, nil, 0
		}
		_ = nc.SetDeadline(time.Now().Add(srv.opts.NegotiationTimeout))
		tc, leaf, err := srv.handshake(nc)
		if err != nil {
			srv.log.Debug("TLS handshake failed", "remote", nc.RemoteAddr().String(), "err", err)
			nc.Close()
			return nil, nil, 0
		}
		_ = nc.SetDeadline(time.Time{})
		t.conn, t.tls, t.leaf = tc, tc, leaf
	}
	return srv.negotiate(c, mode != NoTLS)
}

// Shutdown closes the listeners, ends every stream with <system-shutdown/>
// and waits (until ctx ends) for the connections to finish.
func (srv *Server) Shutdown(ctx context.Context) error {
	srv.mu.Lock()
	srv.shutdown = true
	for l := range srv.listeners {
		l.Close()
	}
	conns := make([]*conn, 0, len(srv.conns))
	for c := range srv.conns {
		conns = append(conns, c)
	}
	var hibernating []*Session
	for _, s := range srv.resumable {
		hibernating = append(hibernating, s)
	}
	srv.mu.Unlock()
	// Hibernating sessions end now: what they hold goes to offline storage.
	for _, s := range hibernating {
		if s.Hibernating() {
			s.finish()
		}
	}
	for _, c := range conns {
		if s := c.sessionOf(); s != nil {
			s.Shutdown()
		} else {
			_ = c.t.writeBatch([][]byte{wire.StreamError("system-shutdown", ""), wire.StreamClose(c.t.framed())}, time.Now().Add(time.Second))
			c.t.close()
		}
	}
	done := make(chan struct{})
	go func() { srv.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, c := range conns {
			c.t.close()
		}
		// Closed links end their sessions at once; give them the moment it
		// takes to hand what they hold to offline storage before the
		// caller closes storage.
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		return ctx.Err()
	}
}

var connMu sync.Mutex

func (c *conn) sessionOf() *Session {
	connMu.Lock()
	defer connMu.Unlock()
	return c.sess
}

func (c *conn) setSession(s *Session) {
	connMu.Lock()
	c.sess = s
	connMu.Unlock()
}

// Restacked returns how many times an idle TCP link's reading moved to a
// fresh goroutine (Options.IdleRestack).
func (srv *Server) Restacked() uint64 { return srv.restacked.Load() }

// Sessions returns the number of bound sessions on this server.
func (srv *Server) Sessions() int { return srv.router.Count() }
