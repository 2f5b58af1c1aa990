package c2s

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/sasl"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

const (
	nsTLS     = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL    = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind    = "urn:ietf:params:xml:ns:xmpp-bind"
	nsSession = "urn:ietf:params:xml:ns:xmpp-session"
	nsSASLCB  = "urn:xmpp:sasl-cb:0" // XEP-0440
	nsRegFeat = "http://jabber.org/features/iq-register"
)

// streamError is a fatal stream error (RFC 6120 §4.9).
type streamError struct{ cond, text, extra string }

// streamErrorBytes renders a stream error, with extra application-specific
// content (XEP-0198 handled-count-too-high) when there is some.
func streamErrorBytes(e *streamError) []byte {
	b := wire.StreamError(e.cond, e.text)
	if e.extra == "" {
		return b
	}
	return wire.InsertChild(b, []byte(e.extra))
}

func (e *streamError) Error() string { return "stream error: " + e.cond + " " + e.text }

func streamErr(cond, text string) error { return &streamError{cond: cond, text: text} }

// negotiation is one connection's walk from stream header to bound session.
type negotiation struct {
	srv      *Server
	c        *conn
	t        transport
	rd       *wire.Reader
	header   wire.Header
	sentHead bool
	domain   string
	user     string // authenticated localpart
	failures int
	// cbRefused counts -PLUS attempts refused on this stream because they
	// named a channel-binding type the link does not provide.
	cbRefused int
	cb        sasl.ChannelBindings
	cbDone    bool
	gen       uint64 // link generation of the session bound or resumed
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// negotiate takes a connection from its first byte to a bound session; it
// returns nil when the stream ended before that.
func (srv *Server) negotiate(c *conn, tlsAvailable bool) (*Session, *wire.Reader, uint64) {
	c.in = &activityReader{t: c.t}
	n := &negotiation{srv: srv, c: c, t: c.t, rd: wire.NewReader(c.in, srv.opts.MaxStanzaPreAuth)}
	c.t.setReadDeadline(time.Now().Add(srv.opts.NegotiationTimeout))
	s, err := n.run(context.Background(), tlsAvailable && srv.opts.TLS != nil)
	if err != nil {
		n.fail(err)
		return nil, nil, 0
	}
	c.t.setReadDeadline(time.Time{})
	c.setSession(s)
	return s, n.rd, n.gen
}

// fail ends a stream that did not get bound.
func (n *negotiation) fail(err error) {
	var se *streamError
	var we *wire.Error
	var ne net.Error
	switch {
	case errors.As(err, &se):
	case errors.As(err, &we):
		se = &streamError{cond: we.Condition}
	case errors.As(err, &ne) && ne.Timeout():
		se = &streamError{cond: "connection-timeout"}
	case errors.Is(err, wire.ErrStreamEnd):
		_ = n.t.writeBatch([][]byte{n.headerIfNeeded(), wire.StreamClose(n.t.framed())}, time.Now().Add(5*time.Second))
		n.t.close()
		return
	default:
		n.srv.log.Debug("negotiation ended", "remote", n.t.remoteAddr().String(), "err", err)
		n.t.close()
		return
	}
	n.srv.log.Debug("negotiation failed", "remote", n.t.remoteAddr().String(), "condition", se.cond)
	_ = n.t.writeBatch([][]byte{n.headerIfNeeded(), streamErrorBytes(se), wire.StreamClose(n.t.framed())}, time.Now().Add(5*time.Second))
	n.t.close()
}

// headerIfNeeded returns our stream header if none was sent yet (RFC 6120
// §4.9.1.1: a stream error still needs an opened stream).
func (n *negotiation) headerIfNeeded() []byte {
	if n.sentHead {
		return nil
	}
	n.sentHead = true
	return wire.StreamHeader(wire.Header{From: n.domain, ID: newID(), Version: "1.0", NS: wire.NSClient, Framed: n.t.framed()})
}

func (n *negotiation) write(b ...[]byte) error {
	return n.t.writeBatch(b, time.Now().Add(n.srv.opts.WriteTimeout))
}

func (n *negotiation) run(ctx context.Context, tlsAvailable bool) (*Session, error) {
	for {
		h, err := n.rd.Header()
		if err != nil {
			return nil, err
		}
		n.header = h
		if h.NS != wire.NSClient {
			return nil, streamErr("invalid-namespace", "")
		}
		dom, err := jid.Parse(h.To)
		if h.To == "" || err != nil || dom.Localpart() != "" || dom.Resourcepart() != "" || !n.srv.router.IsHost(dom.Domainpart()) {
			return nil, streamErr("host-unknown", "")
		}
		if n.domain != "" && n.domain != dom.Domainpart() {
			return nil, streamErr("host-unknown", "the domain changed on restart")
		}
		n.domain = dom.Domainpart()
		if h.Version != "" && !strings.HasPrefix(h.Version, "1.") {
			return nil, streamErr("unsupported-version", "")
		}
		resp := wire.Header{From: n.domain, To: "", ID: newID(), Version: "1.0", Lang: "en", NS: wire.NSClient, Framed: n.t.framed()}
		n.sentHead = true
		if err := n.write(wire.StreamHeader(resp), n.features(tlsAvailable)); err != nil {
			return nil, err
		}
		restart, s, err := n.exchange(ctx, tlsAvailable)
		if err != nil || s != nil {
			return s, err
		}
		if !restart {
			return nil, io.ErrUnexpectedEOF
		}
	}
}

func (n *negotiation) features(tlsAvailable bool) []byte {
	b := []byte("<stream:features>")
	if n.t.framed() {
		b = []byte("<stream:features xmlns:stream='" + wire.NSStream + "'>")
	}
	secure := n.t.secure()
	if n.user == "" {
		if !secure && tlsAvailable && !n.t.framed() {
			b = append(b, "<starttls xmlns='"+nsTLS+"'>"...)
			if n.srv.opts.RequireTLS {
				b = append(b, "<required/>"...)
			}
			b = append(b, "</starttls>"...)
		}
		if secure || !n.srv.opts.RequireTLS {
			mechs := n.mechanisms()
			if len(mechs) > 0 {
				b = append(b, "<mechanisms xmlns='"+nsSASL+"'>"...)
				for _, m := range mechs {
					b = append(b, "<mechanism>"+m+"</mechanism>"...)
				}
				b = append(b, "</mechanisms>"...)
			}
			if cbs := n.bindingTypes(); len(cbs) > 0 {
				b = append(b, "<sasl-channel-binding xmlns='"+nsSASLCB+"'>"...)
				for _, t := range cbs {
					b = append(b, "<channel-binding type='"+t+"'/>"...)
				}
				b = append(b, "</sasl-channel-binding>"...)
			}
			if r := n.srv.opts.Registrar; r != nil && r.Enabled() {
				b = append(b, "<register xmlns='"+nsRegFeat+"'/>"...)
			}
		}
	} else {
		b = append(b, "<bind xmlns='"+nsBind+"'/><session xmlns='"+nsSession+"'><optional/></session>"...)
		if !n.srv.opts.SMDisabled {
			b = append(b, "<sm xmlns='"+nsSM+"'/>"...)
		}
		b = append(b, "<csi xmlns='"+nsCSI+"'/>"...)
		if f := n.srv.opts.Features; f != nil {
			b = append(b, f()...)
		}
	}
	return append(b, "</stream:features>"...)
}

// bindings returns the channel-binding data of this link (zero without TLS
// or with channel binding switched off).
func (n *negotiation) bindings() sasl.ChannelBindings {
	if !n.cbDone {
		n.cbDone = true
		if cs := n.t.tlsState(); cs != nil && n.srv.opts.ChannelBinding {
			// Only a TCP link knows the certificate its handshake presented;
			// WebSocket and BOSH get tls-exporter alone.
			var leaf *x509.Certificate
			if tt, ok := n.t.(*tcpTransport); ok {
				leaf = tt.leaf
			}
			n.cb = sasl.BindingsFromTLS(*cs, leaf)
		}
	}
	return n.cb
}

// plus reports whether SCRAM-*-PLUS is offered on this link.
func (n *negotiation) plus() bool { return n.bindings().Available() }

func (n *negotiation) mechanisms() []string {
	all := sasl.Mechanisms(n.t.secure(), n.plus(), !n.srv.opts.RequireTLS)
	if n.srv.opts.AllowPlain || len(all) == 0 || all[len(all)-1] != "PLAIN" {
		return all
	}
	return all[:len(all)-1]
}

func (n *negotiation) bindingTypes() []string { return n.bindings().Types() }

// exchange reads elements until the stream restarts (restart=true) or a
// session is bound.
func (n *negotiation) exchange(ctx context.Context, tlsAvailable bool) (restart bool, s *Session, err error) {
	for {
		st, err := n.rd.Next()
		if err != nil {
			return false, nil, err
		}
		switch {
		case st.NS == nsTLS && st.Name == "starttls":
			if n.t.secure() || !tlsAvailable || n.t.framed() || n.user != "" {
				_ = n.write([]byte("<failure xmlns='" + nsTLS + "'/>"))
				return false, nil, streamErr("policy-violation", "STARTTLS not available here")
			}
			n.cbDone = false
			if err := n.startTLS(); err != nil {
				return false, nil, err
			}
			return true, nil, nil
		case st.NS == nsSASL && st.Name == "auth":
			if n.user != "" {
				return false, nil, streamErr("policy-violation", "already authenticated")
			}
			ok, err := n.authenticate(ctx, st)
			if err != nil {
				return false, nil, err
			}
			if ok {
				n.rd.Reset(n.c.in)
				// Authenticated: the full stanza size limit applies.
				n.rd.SetMaxStanza(n.srv.opts.MaxStanza)
				return true, nil, nil
			}
		case st.Kind == wire.KindIQ && n.user == "":
			r := n.srv.opts.Registrar
			if r == nil || !r.Enabled() || st.PayloadNS != "jabber:iq:register" {
				return false, nil, streamErr("not-authorized", "")
			}
			ip := net.ParseIP(hostOf(n.t.remoteAddr()))
			if err := n.write(r.PreAuth(ctx, st, n.domain, ip, n.t.secure() || !n.srv.opts.RequireTLS)); err != nil {
				return false, nil, err
			}
		case st.NS == nsSM && st.Name == "resume" && n.user != "":
			s, reply := n.resume(st)
			if err := n.write(reply); err != nil {
				return false, nil, err
			}
			if s != nil {
				return false, s, nil
			}
		case st.NS == nsSM && n.user != "":
			// <enable/> before binding, or <r/>, <a/>: not yet.
			if err := n.write(smFailed("unexpected-request", nil)); err != nil {
				return false, nil, err
			}
		case st.Kind == wire.KindIQ && st.PayloadNS == nsBind && st.Type == "set":
			s, reply := n.bind(ctx, st)
			if s != nil {
				return false, s, nil // the result is the session's first output
			}
			if err := n.write(reply); err != nil {
				return false, nil, err
			}
		default:
			return false, nil, streamErr("not-authorized", "")
		}
	}
}

func (n *negotiation) startTLS() error {
	tt, ok := n.t.(*tcpTransport)
	if !ok {
		return streamErr("policy-violation", "")
	}
	if err := n.write([]byte("<proceed xmlns='" + nsTLS + "'/>")); err != nil {
		return err
	}
	_ = tt.conn.SetDeadline(time.Now().Add(n.srv.opts.NegotiationTimeout))
	tc, leaf, err := n.srv.handshake(tt.conn)
	if err != nil {
		return err
	}
	_ = tt.conn.SetWriteDeadline(time.Time{})
	tt.conn, tt.tls, tt.leaf = tc, tc, leaf
	n.rd.Reset(n.c.in)
	return nil
}

func saslFailure(cond, text string) []byte {
	b := []byte("<failure xmlns='" + nsSASL + "'><" + cond + "/>")
	if text != "" {
		b = append(b, "<text xml:lang='en'>"...)
		b = wire.AppendEscapedText(b, text)
		b = append(b, "</text>"...)
	}
	return append(b, "</failure>"...)
}

type saslPayload struct {
	Mechanism string `xml:"mechanism,attr"`
	Data      string `xml:",chardata"`
}

func decodeSASLData(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "=" || s == "" {
		return nil, nil
	}
	return base64.StdEncoding.DecodeString(s)
}

// authenticate runs one SASL exchange (RFC 6120 §6.4). ok=false with a nil
// error means the client may retry.
func (n *negotiation) authenticate(ctx context.Context, st *wire.Stanza) (ok bool, err error) {
	secure := n.t.secure()
	if !secure && n.srv.opts.RequireTLS {
		_ = n.write(saslFailure("encryption-required", ""))
		return false, streamErr("policy-violation", "TLS is required before authentication")
	}
	var auth saslPayload
	if err := st.Decode(&auth); err != nil {
		return false, n.saslFailed("malformed-request", "", "")
	}
	ip := hostOf(n.t.remoteAddr())
	allowed := false
	for _, m := range n.mechanisms() {
		if m == auth.Mechanism {
			allowed = true
		}
	}
	if !allowed {
		return false, n.saslFailed("invalid-mechanism", "", "")
	}
	if n.srv.limits.blockedIP(ip) {
		return false, n.saslFailed("temporary-auth-failure", "Too many failed attempts; try later", "")
	}
	mech, err := sasl.NewServer(auth.Mechanism, sasl.Options{
		Lookup: func(ctx context.Context, username, hash string) (storage.SCRAMKeys, error) {
			a, err := n.srv.opts.Accounts.Get(ctx, username+"@"+n.domain)
			if err != nil {
				return storage.SCRAMKeys{}, err
			}
			k, ok := a.Keys[hash]
			if !ok {
				return storage.SCRAMKeys{}, storage.ErrNotFound
			}
			return k, nil
		},
		Bindings: n.bindings(),
		// A client refused a -PLUS attempt on this stream for its binding
		// type has learnt that the server cannot bind with it: its "y"
		// flag is then the truth, not a sign of a downgrade (README.md).
		PlusAdvertised: n.plus() && n.cbRefused == 0,
		Domain:         n.domain,
		Secret:         n.srv.opts.SASLSecret,
		FakeIterations: n.srv.opts.SCRAMIterations,
	})
	if err != nil {
		return false, n.saslFailed("invalid-mechanism", "", "")
	}
	data, derr := decodeSASLData(auth.Data)
	if derr != nil {
		return false, n.saslFailed("incorrect-encoding", "", "")
	}
	for {
		chal, done, err := mech.Next(ctx, data)
		if errors.Is(err, sasl.ErrBindingType) {
			return false, n.bindingRefused()
		}
		if err != nil {
			return false, n.saslFailed(saslCondition(err), "", mech.Username())
		}
		if done {
			user := mech.Username()
			if az := mech.Authzid(); az != "" && az != user+"@"+n.domain {
				return false, n.saslFailed("invalid-authzid", "", user)
			}
			if n.srv.limits.blockedFrom(ip, user+"@"+n.domain) {
				return false, n.saslFailed("temporary-auth-failure", "Too many failed attempts; try later", "")
			}
			n.user = user
			b := []byte("<success xmlns='" + nsSASL + "'>")
			if len(chal) > 0 {
				b = append(b, base64.StdEncoding.EncodeToString(chal)...)
			}
			b = append(b, "</success>"...)
			n.srv.log.Info("authenticated", "jid", user+"@"+n.domain, "mechanism", auth.Mechanism, "remote", ip)
			return true, n.write(b)
		}
		b := []byte("<challenge xmlns='" + nsSASL + "'>")
		b = append(b, base64.StdEncoding.EncodeToString(chal)...)
		b = append(b, "</challenge>"...)
		if err := n.write(b); err != nil {
			return false, err
		}
		next, err := n.rd.Next()
		if err != nil {
			return false, err
		}
		if next.NS != nsSASL {
			return false, streamErr("policy-violation", "SASL exchange interrupted")
		}
		switch next.Name {
		case "abort":
			return false, n.saslFailed("aborted", "", "")
		case "response":
			var r saslPayload
			if err := next.Decode(&r); err != nil {
				return false, n.saslFailed("malformed-request", "", "")
			}
			if data, err = decodeSASLData(r.Data); err != nil {
				return false, n.saslFailed("incorrect-encoding", "", "")
			}
		default:
			return false, streamErr("policy-violation", "SASL exchange interrupted")
		}
	}
}

func saslCondition(err error) string {
	switch {
	case errors.Is(err, sasl.ErrMalformed):
		return "malformed-request"
	case errors.Is(err, sasl.ErrTemporary):
		return "temporary-auth-failure"
	case errors.Is(err, sasl.ErrInvalidMechanism):
		return "invalid-mechanism"
	}
	return "not-authorized"
}

// maxBindingRefusals is how many -PLUS attempts with an unusable
// channel-binding type a stream may make without them counting as failed
// attempts: one per -PLUS mechanism offered, which is what a client that
// walks down the offered list (slixmpp) needs.
const maxBindingRefusals = 3

// bindingRefused answers a -PLUS attempt whose channel-binding type this
// link cannot provide. It is not a password guess: it is neither counted
// against the address nor delayed, and the client may go on with another
// mechanism.
func (n *negotiation) bindingRefused() error {
	n.cbRefused++
	text := "Channel-binding type not available on this connection; available: " + strings.Join(n.bindingTypes(), " ")
	if n.cbRefused > maxBindingRefusals {
		return n.saslFailed("invalid-mechanism", text, "")
	}
	return n.write(saslFailure("invalid-mechanism", text))
}

// saslFailed answers a failed attempt, counts it and ends the stream when the
// client used up its retries (RFC 6120 §6.4.5).
func (n *negotiation) saslFailed(cond, text, user string) error {
	ip := hostOf(n.t.remoteAddr())
	if cond == "not-authorized" || cond == "invalid-authzid" {
		account := ""
		if user != "" {
			account = user + "@" + n.domain
		}
		n.srv.limits.fail(ip, account)
		n.srv.authLog.Info("authentication failed", "remote", ip, "user", user)
		if d := n.srv.opts.FailureDelay; d > 0 {
			time.Sleep(d)
		}
	}
	n.failures++
	if err := n.write(saslFailure(cond, text)); err != nil {
		return err
	}
	if max := n.srv.opts.MaxAuthFailures; max > 0 && n.failures >= max {
		return streamErr("policy-violation", "Too many failed authentication attempts")
	}
	return nil
}

type bindPayload struct {
	Resource string `xml:"bind>resource"`
}

// bind answers a resource binding request (RFC 6120 §7). On success the
// result is already queued on the new session; otherwise the error reply
// is returned.
func (n *negotiation) bind(ctx context.Context, st *wire.Stanza) (*Session, []byte) {
	var p bindPayload
	if err := st.Decode(&p); err != nil {
		return nil, wire.ErrorReply(st, "modify", "bad-request", "")
	}
	res := strings.TrimSpace(p.Resource)
	if res == "" {
		res = newID()[:16]
	}
	j, err := jid.New(n.user, n.domain, res)
	if err != nil {
		return nil, wire.ErrorReply(st, "modify", "bad-request", "resource is not valid")
	}
	srv := n.srv
	bare := j.Bare().String()
	if max := srv.opts.MaxSessionsPerAccount; max > 0 {
		count := 0
		for _, o := range srv.router.Resources(bare) {
			if o.JID().Resourcepart() != j.Resourcepart() {
				count++
			}
		}
		if count >= max {
			return nil, wire.ErrorReply(st, "cancel", "resource-constraint", "Too many sessions for this account")
		}
	}
	s := &Session{srv: srv, t: n.t, in: n.c.in, j: j, jstr: j.String(), done: make(chan struct{})}
	n.gen = s.gen
	s.touch()
	b := make([]byte, 0, 128)
	b = append(b, "<iq type='result' id='"...)
	b = wire.AppendEscapedAttr(b, st.ID)
	b = append(b, "'><bind xmlns='"+nsBind+"'><jid>"...)
	b = wire.AppendEscapedText(b, s.jstr)
	b = append(b, "</jid></bind></iq>"...)
	// The result is queued before the session can be found, so whatever is
	// routed to it from then on is written after its bind result; and it is
	// written only once the session can be found, so a client that has its
	// full JID is reachable at it. A write failure closes the link and the
	// session ends from its reader.
	s.mu.Lock()
	s.queue = append(s.queue, b)
	s.mu.Unlock()
	if old := srv.router.Bind(s); old != nil {
		old.Replace()
	}
	s.mu.Lock()
	s.startWriterLocked()
	s.mu.Unlock()
	srv.router.SessionBound(s)
	return s, nil
}

// resume answers <resume/> (XEP-0198 §5): the session is found by its id,
// must belong to the authenticated account, and moves onto this link.
func (n *negotiation) resume(st *wire.Stanza) (*Session, []byte) {
	var v struct {
		PrevID string `xml:"previd,attr"`
	}
	if err := st.Decode(&v); err != nil || v.PrevID == "" {
		return nil, smFailed("bad-request", nil)
	}
	h, ok := attrUint32(st, "h")
	if !ok {
		return nil, smFailed("bad-request", nil)
	}
	s := n.srv.smLookup(v.PrevID)
	if s == nil || s.j.Localpart() != n.user || s.j.Domainpart() != n.domain {
		return nil, smFailed("item-not-found", nil)
	}
	gen, ok, failure := s.resume(n.t, n.c.in, h)
	if !ok {
		return nil, failure
	}
	n.gen = gen
	s.logger().Info("stream management: session resumed")
	return s, nil
}
