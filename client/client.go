// Package client is a small XMPP client: it dials a server over TCP with
// STARTTLS, direct TLS or WebSocket, authenticates with SCRAM (or PLAIN),
// binds a resource and then sends and receives raw stanzas. xmppd's
// integration tests and its load tool use it; app developers can too.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/xmppd/xmppd/sasl"
	"github.com/xmppd/xmppd/wire"
)

// Mode is how the client reaches the server.
type Mode int

const (
	StartTLS  Mode = iota // TCP, then STARTTLS
	DirectTLS             // TLS from the first byte (XEP-0368)
	Plain                 // TCP without TLS
	WebSocket             // RFC 7395; Addr is a ws:// or wss:// URL
)

// Config describes one login.
type Config struct {
	Addr      string // host:port, or the WebSocket URL
	Mode      Mode
	Domain    string
	Username  string
	Password  string
	Resource  string // "" lets the server choose
	Mechanism string // "" = SCRAM-SHA-256
	TLS       *tls.Config
	Cache     *sasl.SaltedPasswordCache
	// NoBind stops after authentication (for tests of negotiation).
	NoBind bool
	// Silent stops the client from answering XEP-0199 pings by itself, as
	// real clients do (tests of dead-client detection set it).
	Silent bool
	// HeaderAttrs is written into every stream header (or <open/>) as is,
	// e.g. " xml:lang='de'" (tests of what a header may carry).
	HeaderAttrs string
	// Dial, if set, opens the TCP connection (StartTLS and Plain modes):
	// tests use it to shape the socket.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// LocalIP, if set, is the source address to connect from (tests use
	// 127.0.0.2 as a second client host).
	LocalIP net.IP
	// Header is sent with the WebSocket upgrade request (a reverse proxy's
	// X-Forwarded-For / X-Forwarded-Proto, in tests).
	Header http.Header
	// MaxStanza is the largest element the client reads (default 1 MiB).
	MaxStanza int
}

// Client is one bound session.
type Client struct {
	JID      string
	Features []byte // the last stream features received

	conn    net.Conn
	ws      *websocket.Conn
	rd      *wire.Reader
	wmu     sync.Mutex
	in      chan *wire.Stanza
	pending []*wire.Stanza
	errMu   sync.Mutex
	err     error
	done    chan struct{}

	// XEP-0198, when enabled: h counts the stanzas handed to the reader
	// of Incoming/Expect; a server <r/> is answered automatically.
	silent  bool
	smOn    atomic.Bool
	smID    string
	smH     atomic.Uint32
	smSent  atomic.Uint32 // stanzas sent with SendStanza since enabling
	smAcked atomic.Uint32 // the server's last h
}

// Dial connects, negotiates and binds.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	c := &Client{done: make(chan struct{}), silent: cfg.Silent}
	if cfg.Mechanism == "" {
		cfg.Mechanism = "SCRAM-SHA-256"
	}
	if err := c.connect(ctx, cfg); err != nil {
		c.closeConn()
		return nil, err
	}
	if err := c.negotiate(ctx, cfg); err != nil {
		c.closeConn()
		return nil, err
	}
	c.in = make(chan *wire.Stanza, 256)
	go c.readLoop()
	return c, nil
}

func (c *Client) connect(ctx context.Context, cfg Config) error {
	tcfg := cfg.TLS
	if tcfg == nil {
		tcfg = &tls.Config{ServerName: cfg.Domain}
	}
	switch cfg.Mode {
	case WebSocket:
		opts := &websocket.DialOptions{Subprotocols: []string{"xmpp"}, HTTPHeader: cfg.Header}
		if cfg.LocalIP != nil {
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: cfg.LocalIP}}
			opts.HTTPClient = &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
		}
		ws, _, err := websocket.Dial(ctx, cfg.Addr, opts)
		if err != nil {
			return err
		}
		ws.SetReadLimit(1 << 20)
		c.ws = ws
		c.conn = websocket.NetConn(context.Background(), ws, websocket.MessageText)
	case DirectTLS:
		nc, err := dialTCP(ctx, cfg)
		if err != nil {
			return err
		}
		tc := tls.Client(nc, withALPN(tcfg))
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return err
		}
		c.conn = tc
	default:
		nc, err := dialTCP(ctx, cfg)
		if err != nil {
			return err
		}
		c.conn = nc
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.conn.SetDeadline(dl)
	}
	limit := cfg.MaxStanza
	if limit <= 0 {
		limit = 1 << 20
	}
	c.rd = wire.NewReader(c.conn, limit)
	return nil
}

func dialTCP(ctx context.Context, cfg Config) (net.Conn, error) {
	if cfg.Dial != nil {
		return cfg.Dial(ctx, "tcp", cfg.Addr)
	}
	d := &net.Dialer{}
	if cfg.LocalIP != nil {
		d.LocalAddr = &net.TCPAddr{IP: cfg.LocalIP}
	}
	return d.DialContext(ctx, "tcp", cfg.Addr)
}

func withALPN(t *tls.Config) *tls.Config {
	t = t.Clone()
	t.NextProtos = []string{"xmpp-client"}
	return t
}

func (c *Client) open(cfg Config) error {
	if c.ws != nil {
		return c.Send("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='" + cfg.Domain + "' version='1.0'" + cfg.HeaderAttrs + "/>")
	}
	return c.Send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" + cfg.Domain + "' version='1.0'" + cfg.HeaderAttrs + ">")
}

// features opens a stream and returns the features element.
func (c *Client) features(cfg Config) (*wire.Stanza, error) {
	if err := c.open(cfg); err != nil {
		return nil, err
	}
	if _, err := c.rd.Header(); err != nil {
		return nil, err
	}
	f, err := c.rd.Next()
	if err != nil {
		return nil, err
	}
	if f.Name == "error" {
		return nil, fmt.Errorf("client: stream error: %s", f.Raw)
	}
	if f.Name != "features" {
		return nil, fmt.Errorf("client: expected stream features, got %s", f.Raw)
	}
	c.Features = f.Raw
	return f, nil
}

// secure opens the stream and upgrades it with STARTTLS when asked.
func (c *Client) secure(ctx context.Context, cfg Config) error {
	f, err := c.features(cfg)
	if err != nil {
		return err
	}
	if cfg.Mode == StartTLS {
		if !f.HasChild("urn:ietf:params:xml:ns:xmpp-tls", "starttls") {
			return errors.New("client: server offers no STARTTLS")
		}
		if err := c.Send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"); err != nil {
			return err
		}
		p, err := c.rd.Next()
		if err != nil {
			return err
		}
		if p.Name != "proceed" {
			return fmt.Errorf("client: STARTTLS refused: %s", p.Raw)
		}
		tcfg := cfg.TLS
		if tcfg == nil {
			tcfg = &tls.Config{ServerName: cfg.Domain}
		}
		tc := tls.Client(c.conn, tcfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return err
		}
		c.conn = tc
		c.rd.Reset(tc)
		if _, err = c.features(cfg); err != nil {
			return err
		}
	}
	return nil
}

func (c *Client) negotiate(ctx context.Context, cfg Config) error {
	if err := c.secure(ctx, cfg); err != nil {
		return err
	}
	if err := c.auth(cfg); err != nil {
		return err
	}
	c.rd.Reset(c.conn)
	if _, err := c.features(cfg); err != nil {
		return err
	}
	if cfg.NoBind {
		return nil
	}
	bind := "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
	if cfg.Resource != "" {
		bind += "<resource>" + escape(cfg.Resource) + "</resource>"
	}
	if err := c.Send(bind + "</bind></iq>"); err != nil {
		return err
	}
	r, err := c.rd.Next()
	if err != nil {
		return err
	}
	if r.Type != "result" {
		return fmt.Errorf("client: bind failed: %s", r.Raw)
	}
	var res struct {
		JID string `xml:"bind>jid"`
	}
	if err := r.Decode(&res); err != nil {
		return err
	}
	c.JID = res.JID
	_ = c.conn.SetDeadline(time.Time{})
	return nil
}

// AuthError is a SASL <failure/>.
type AuthError struct{ Raw string }

func (e *AuthError) Error() string { return "client: authentication failed: " + e.Raw }

func (c *Client) auth(cfg Config) error {
	opts := sasl.ClientOptions{Cache: cfg.Cache}
	if tc, ok := c.conn.(*tls.Conn); ok && strings.HasSuffix(cfg.Mechanism, "-PLUS") {
		cs := tc.ConnectionState()
		opts.Bindings = sasl.BindingsFromTLS(cs, cs.PeerCertificates[0])
	}
	m, err := sasl.NewClient(cfg.Mechanism, cfg.Username, cfg.Password, opts)
	if err != nil {
		return err
	}
	resp, _, err := m.Step(nil)
	if err != nil {
		return err
	}
	if err := c.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='" + cfg.Mechanism + "'>" + b64(resp) + "</auth>"); err != nil {
		return err
	}
	for {
		st, err := c.rd.Next()
		if err != nil {
			return err
		}
		var body struct {
			Data string `xml:",chardata"`
		}
		_ = st.Decode(&body)
		data, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(body.Data))
		switch st.Name {
		case "challenge":
			resp, _, err := m.Step(data)
			if err != nil {
				return err
			}
			if err := c.Send("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + b64(resp) + "</response>"); err != nil {
				return err
			}
		case "success":
			if len(data) > 0 {
				if _, _, err := m.Step(data); err != nil {
					return err
				}
			}
			return nil
		default:
			return &AuthError{string(st.Raw)}
		}
	}
}

func b64(b []byte) string {
	if len(b) == 0 {
		return "="
	}
	return base64.StdEncoding.EncodeToString(b)
}

func escape(s string) string {
	var b []byte
	return string(wire.AppendEscapedText(b, s))
}

// Send writes raw XML.
func (c *Client) Send(raw string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := io.WriteString(c.conn, raw)
	return err
}

func (c *Client) readLoop() {
	defer close(c.in)
	for {
		st, err := c.rd.Next()
		if err != nil {
			c.errMu.Lock()
			c.err = err
			c.errMu.Unlock()
			return
		}
		if !c.silent && st.Kind == wire.KindIQ && st.Type == "get" && st.PayloadNS == "urn:xmpp:ping" {
			b := []byte("<iq type='result' id='")
			b = wire.AppendEscapedAttr(b, st.ID)
			b = append(b, "' to='"...)
			b = wire.AppendEscapedAttr(b, st.From)
			_ = c.Send(string(append(b, "'/>"...)))
			continue
		}
		if st.NS == NSSM {
			switch st.Name {
			case "r":
				_ = c.Send("<a xmlns='" + NSSM + "' h='" + strconv.FormatUint(uint64(c.smH.Load()), 10) + "'/>")
				continue
			case "enabled":
				c.smOn.Store(true)
			case "a":
				var v struct {
					H string `xml:"h,attr"`
				}
				if st.Decode(&v) == nil {
					if h, err := strconv.ParseUint(v.H, 10, 32); err == nil {
						c.smAcked.Store(uint32(h))
					}
				}
			}
		}
		// h counts only what was handed over: a stanza dropped because the
		// client is closing must be resent after a resumption.
		select {
		case c.in <- st:
			if st.Kind != wire.KindOther && c.smOn.Load() {
				c.smH.Add(1)
			}
		case <-c.done:
			return
		}
	}
}

// Err returns what ended the stream (wire.ErrStreamEnd on a clean close).
func (c *Client) Err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

// Incoming returns the channel of received elements, for callers that
// read everything themselves instead of using Expect (the load tool). It
// is closed when the stream ends.
func (c *Client) Incoming() <-chan *wire.Stanza { return c.in }

// ErrTimeout is returned by Expect when nothing matching arrived in time.
var ErrTimeout = errors.New("client: timed out waiting for a stanza")

// Expect returns the first received element that match accepts, waiting up
// to d. Elements it skips are kept for later calls.
func (c *Client) Expect(d time.Duration, match func(*wire.Stanza) bool) (*wire.Stanza, error) {
	for i, st := range c.pending {
		if match(st) {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return st, nil
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case st, ok := <-c.in:
			if !ok {
				if err := c.Err(); err != nil {
					return nil, err
				}
				return nil, io.EOF
			}
			if match(st) {
				return st, nil
			}
			c.pending = append(c.pending, st)
		case <-t.C:
			return nil, ErrTimeout
		}
	}
}

// Next returns the next received element (pending ones first).
func (c *Client) Next(d time.Duration) (*wire.Stanza, error) {
	return c.Expect(d, func(*wire.Stanza) bool { return true })
}

// ID matches an element by id.
func ID(id string) func(*wire.Stanza) bool {
	return func(st *wire.Stanza) bool { return st.ID == id }
}

// Kind matches stanzas of a kind.
func Kind(k wire.Kind) func(*wire.Stanza) bool {
	return func(st *wire.Stanza) bool { return st.Kind == k }
}

// IQ sends an iq and waits for its answer.
func (c *Client) IQ(d time.Duration, raw string, id string) (*wire.Stanza, error) {
	if err := c.Send(raw); err != nil {
		return nil, err
	}
	return c.Expect(d, ID(id))
}

// Contains reports whether the raw element contains s (a test helper).
func Contains(st *wire.Stanza, s string) bool { return bytes.Contains(st.Raw, []byte(s)) }

// Close ends the stream politely and closes the connection.
func (c *Client) Close() error {
	if c.ws != nil {
		_ = c.Send("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>")
	} else {
		_ = c.Send("</stream:stream>")
	}
	select {
	case <-c.done:
	default:
		close(c.done)
	}
	return c.closeConn()
}

// Abort drops the connection without closing the stream (a lost network).
func (c *Client) Abort() error {
	select {
	case <-c.done:
	default:
		close(c.done)
	}
	if tc, ok := c.conn.(*tls.Conn); ok {
		return tc.NetConn().Close()
	}
	return c.closeConn()
}

func (c *Client) closeConn() error {
	if c.conn == nil {
		return nil
	}
	return c.conn.Close()
}

// NSSM is the XEP-0198 namespace.
const NSSM = "urn:xmpp:sm:3"

// EnableSM turns on XEP-0198 stream management (with resumption when
// resume is true) and returns the session id the server gave.
func (c *Client) EnableSM(d time.Duration, resume bool) (string, error) {
	req := "<enable xmlns='" + NSSM + "'/>"
	if resume {
		req = "<enable xmlns='" + NSSM + "' resume='true'/>"
	}
	if err := c.Send(req); err != nil {
		return "", err
	}
	st, err := c.Expect(d, func(s *wire.Stanza) bool { return s.NS == NSSM && (s.Name == "enabled" || s.Name == "failed") })
	if err != nil {
		return "", err
	}
	if st.Name == "failed" {
		return "", fmt.Errorf("client: enabling stream management failed: %s", st.Raw)
	}
	var v struct {
		ID string `xml:"id,attr"`
	}
	_ = st.Decode(&v)
	c.smID = v.ID
	return v.ID, nil
}

// SendStanza sends one stanza and returns its XEP-0198 sequence number
// (1 for the first stanza after enabling), to compare with Acked.
func (c *Client) SendStanza(raw string) (uint32, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := io.WriteString(c.conn, raw); err != nil {
		return 0, err
	}
	return c.smSent.Add(1), nil
}

// Acked is the server's last acknowledgement: stanzas 1..Acked() sent with
// SendStanza are safe with the server.
func (c *Client) Acked() uint32 { return c.smAcked.Load() }

// H is the number of stanzas received since stream management was enabled
// (what this client acknowledges).
func (c *Client) H() uint32 { return c.smH.Load() }

// SMID is the stream management id (for Resume).
func (c *Client) SMID() string { return c.smID }

// ResumeError is a <failed/> answer to <resume/>.
type ResumeError struct{ Raw string }

func (e *ResumeError) Error() string { return "client: resumption failed: " + e.Raw }

// Resume logs in again with cfg and resumes the stream-managed session id,
// acknowledging h stanzas (XEP-0198 §5). The server's h (what it received
// from the old stream) is returned.
func Resume(ctx context.Context, cfg Config, id string, h uint32) (*Client, uint32, error) {
	if cfg.Mechanism == "" {
		cfg.Mechanism = "SCRAM-SHA-256"
	}
	c := &Client{done: make(chan struct{}), silent: cfg.Silent}
	fail := func(err error) (*Client, uint32, error) { c.closeConn(); return nil, 0, err }
	if err := c.connect(ctx, cfg); err != nil {
		return fail(err)
	}
	if err := c.secure(ctx, cfg); err != nil {
		return fail(err)
	}
	if err := c.auth(cfg); err != nil {
		return fail(err)
	}
	c.rd.Reset(c.conn)
	if _, err := c.features(cfg); err != nil {
		return fail(err)
	}
	if err := c.Send("<resume xmlns='" + NSSM + "' previd='" + id + "' h='" + strconv.FormatUint(uint64(h), 10) + "'/>"); err != nil {
		return fail(err)
	}
	st, err := c.rd.Next()
	if err != nil {
		return fail(err)
	}
	if st.Name != "resumed" {
		return fail(&ResumeError{string(st.Raw)})
	}
	var v struct {
		H string `xml:"h,attr"`
	}
	_ = st.Decode(&v)
	serverH, _ := strconv.ParseUint(v.H, 10, 32)
	c.JID = cfg.Username + "@" + cfg.Domain + "/" + cfg.Resource
	c.smID = id
	c.smOn.Store(true)
	c.smH.Store(h)
	_ = c.conn.SetDeadline(time.Time{})
	c.in = make(chan *wire.Stanza, 256)
	go c.readLoop()
	return c, uint32(serverH), nil
}

// Register creates cfg's account by XEP-0077 in-band registration.
func Register(ctx context.Context, cfg Config) error {
	c := &Client{done: make(chan struct{})}
	defer c.closeConn()
	if err := c.connect(ctx, cfg); err != nil {
		return err
	}
	if err := c.secure(ctx, cfg); err != nil {
		return err
	}
	if err := c.Send("<iq type='set' id='reg1'><query xmlns='jabber:iq:register'><username>" + escape(cfg.Username) +
		"</username><password>" + escape(cfg.Password) + "</password></query></iq>"); err != nil {
		return err
	}
	st, err := c.rd.Next()
	if err != nil {
		return err
	}
	if st.Type != "result" {
		return fmt.Errorf("client: registration refused: %s", st.Raw)
	}
	_ = c.Send("</stream:stream>")
	return nil
}
