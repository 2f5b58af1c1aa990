package push

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/dataform"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

const (
	nsDiscoInfo = "http://jabber.org/protocol/disco#info"
	// vendorTimeout bounds one request to a vendor endpoint.
	vendorTimeout = 20 * time.Second
)

// Domain is the built-in app server's JID for a host: push.HOST.
func Domain(host string) string { return "push." + host }

// AppServer is the built-in XEP-0357 app server: it receives the
// notifications published to push.HOST and forwards them to Apple (APNs)
// or Google (FCM), for the device named in the publish-options form.
type AppServer struct {
	r       *router.Router
	log     *slog.Logger
	domains map[string]bool
	apns    *apnsClient
	fcm     *fcmClient
	store   storage.PushRegistrations
	sem     chan struct{} // vendor requests in flight
	refused atomic.Uint64
}

// NewAppServer registers the app server as the service push.HOST of each
// host. It reads the vendor credentials now; a missing or malformed key
// file is an error.
// Notifications reach it only from the push module (deliver), for
// registrations in store.
func NewAppServer(r *router.Router, store storage.PushRegistrations, log *slog.Logger, cfg *AppServerConfig, hosts []string) (*AppServer, error) {
	hc, err := httpClient(string(cfg.CAFile))
	if err != nil {
		return nil, err
	}
	a := &AppServer{r: r, store: store, log: log, domains: map[string]bool{}, sem: make(chan struct{}, max(cfg.Concurrency, 1))}
	if cfg.APNsOn() {
		if a.apns, err = newAPNs(&cfg.APNs, hc, cfg.MessageTTL, cfg.CallTTL); err != nil {
			return nil, fmt.Errorf("push: APNs: %w", err)
		}
	}
	if cfg.FCMOn() {
		if a.fcm, err = newFCM(&cfg.FCM, hc, cfg.MessageTTL, cfg.CallTTL); err != nil {
			return nil, fmt.Errorf("push: FCM: %w", err)
		}
	}
	for _, h := range hosts {
		a.domains[Domain(h)] = true
		r.RegisterService(Domain(h), a.handle)
	}
	return a, nil
}

// Serves reports whether j is one of this app server's JIDs.
func (a *AppServer) Serves(j jid.JID) bool {
	return j.Localpart() == "" && j.Resourcepart() == "" && a.domains[j.Domainpart()]
}

// httpClient is the HTTP/2 client for the vendor endpoints.
func httpClient(caFile string) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("push: ca-file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("push: ca-file %s holds no PEM certificate", caFile)
		}
		tc.RootCAs = pool
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     tc,
		ForceAttemptHTTP2:   true, // APNs speaks HTTP/2 only
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     10 * time.Minute,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: vendorTimeout}, nil
}

// target is the device a notification goes to, from the publish-options
// form the client gave when it enabled push.
type target struct {
	typ       string // "apns" or "fcm"
	token     string // the device token (APNs) or registration token (FCM)
	voipToken string // APNs: the PushKit token for calls ("" = token)
	sandbox   bool   // APNs: the development environment
}

// maxToken bounds a device token.
const maxToken = 4096

func parseTarget(f *dataform.Form) (target, error) {
	t := target{typ: first(f, "type"), token: first(f, "token"), voipToken: first(f, "voip-token")}
	if s := first(f, "sandbox"); s != "" {
		v, ok := dataform.ParseBool(s)
		if !ok {
			return t, errors.New("the sandbox field must be a boolean")
		}
		t.sandbox = v
	}
	if t.token == "" {
		return t, errors.New("the publish-options form has no token field")
	}
	if len(t.token) > maxToken || len(t.voipToken) > maxToken {
		return t, errors.New("the device token is too long")
	}
	switch t.typ {
	case "apns":
		for _, tok := range []string{t.token, t.voipToken} {
			if !isHex(tok) {
				return t, errors.New("an APNs device token is hexadecimal")
			}
		}
	case "fcm":
		if t.voipToken != "" || t.sandbox {
			return t, errors.New("voip-token and sandbox are for APNs only")
		}
	default:
		return t, errors.New("the type field must be apns or fcm")
	}
	return t, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// checkDevice tells a client at enable time whether this app server can
// serve the device its form names.
func (a *AppServer) checkDevice(formXML []byte) error {
	if formXML == nil {
		return errors.New("push.DOMAIN needs a publish-options form with the device's type and token")
	}
	f, err := parseForm(formXML)
	if err != nil {
		return err
	}
	t, err := parseTarget(f)
	if err != nil {
		return err
	}
	return a.vendorFor(t)
}

func (a *AppServer) vendorFor(t target) error {
	if t.typ == "apns" && a.apns == nil {
		return errors.New("APNs is not configured on this server")
	}
	if t.typ == "fcm" && a.fcm == nil {
		return errors.New("FCM is not configured on this server")
	}
	return nil
}

// handle serves every stanza addressed to push.HOST.
func (a *AppServer) handle(c *router.Context) {
	st := c.Stanza
	if st.Kind != wire.KindIQ || st.Type == "result" || st.Type == "error" {
		return // messages, presence and unawaited answers are not served
	}
	if c.To.Localpart() != "" || c.To.Resourcepart() != "" {
		a.fail(c, "cancel", "service-unavailable", "")
		return
	}
	switch {
	case st.Type == "get" && st.PayloadNS == nsDiscoInfo:
		a.answer(c, []byte("<query xmlns='"+nsDiscoInfo+"'><identity category='pubsub' type='push' name='xmppd push'/>"+
			"<feature var='"+nsDiscoInfo+"'/><feature var='"+NS+"'/></query>"))
	case st.Type == "set" && st.PayloadNS == nsPubSub:
		a.refusePublish(c)
	default:
		a.fail(c, "cancel", "service-unavailable", "")
	}
}

// refusePublish answers a pubsub set addressed to push.HOST. Whoever sends
// it (a local account, a remote server, a component), it is refused: the
// app server sends only the notifications this server's push module makes
// for a stored registration, and those never travel as stanzas (deliver).
// Otherwise any account could make the operator's APNs/FCM credentials
// send any text, or a VoIP call push, to any device token.
func (a *AppServer) refusePublish(c *router.Context) {
	a.refused.Add(1)
	a.log.Debug("push: a publish to the app server was refused", "jid", c.From.String())
	a.fail(c, "auth", "forbidden", "This app server sends only the notifications its own server makes for its registrations")
}

// Refused returns how many publishes sent to push.HOST as stanzas were
// refused.
func (a *AppServer) Refused() uint64 { return a.refused.Load() }

// deliver sends the notification n for registration reg to its vendor and
// returns once the vendor answered. It is the app server's only way in:
// the push module calls it in-process for registrations it read from
// storage, and deliver checks again that reg is stored (same id, service
// and node) and takes the device from the stored form, not from reg.
func (a *AppServer) deliver(ctx context.Context, reg storage.PushRegistration, n *notice) error {
	regs, err := a.store.List(ctx, reg.Owner)
	if err != nil {
		return fmt.Errorf("reading the registrations: %w", err)
	}
	var stored *storage.PushRegistration
	for i := range regs {
		if r := &regs[i]; r.ID == reg.ID && r.Service == reg.Service && r.Node == reg.Node {
			stored = r
			break
		}
	}
	if stored == nil {
		return &stanzaErr{"cancel", "item-not-found", "No such registration"}
	}
	if stored.Form == nil {
		return &stanzaErr{"modify", "not-acceptable", "publish-options with the device's type and token are required"}
	}
	f, err := parseForm(stored.Form)
	if err != nil {
		return &stanzaErr{"modify", "not-acceptable", err.Error()}
	}
	t, err := parseTarget(f)
	if err == nil {
		err = a.vendorFor(t)
	}
	if err != nil {
		return &stanzaErr{"modify", "not-acceptable", err.Error()}
	}
	vn := vendorNotice{node: stored.Node, count: n.count, sender: n.sender, body: n.body, call: n.call}
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-a.sem }()
	if t.typ == "apns" {
		err = a.apns.send(ctx, t, vn)
	} else {
		err = a.fcm.send(ctx, t, vn)
	}
	var se *stanzaErr
	switch {
	case err == nil:
	case errors.As(err, &se):
		a.log.Info("push: vendor refused a notification", "jid", reg.Owner, "vendor", t.typ, "error", se.text)
	default:
		a.log.Warn("push: sending to the vendor failed", "jid", reg.Owner, "vendor", t.typ, "err", err)
	}
	return err
}

// stanzaErr is a vendor's answer turned into the iq error for the
// publisher: item-not-found for a device that is gone (the user's server
// then disables the registration), wait errors for what may pass.
type stanzaErr struct{ typ, cond, text string }

func (e *stanzaErr) Error() string { return e.typ + "/" + e.cond + ": " + e.text }

// answer sends an iq result (payload may be nil) back to the requester.
// Answers go through Route, so a waiting router.Query gets them.
func (a *AppServer) answer(c *router.Context, payload []byte) {
	b := []byte("<iq type='result' id='")
	b = wire.AppendEscapedAttr(b, c.Stanza.ID)
	b = append(b, "' from='"...)
	b = wire.AppendEscapedAttr(b, c.To.String())
	b = append(b, "' to='"...)
	b = wire.AppendEscapedAttr(b, c.From.String())
	if payload == nil {
		b = append(b, "'/>"...)
	} else {
		b = append(b, "'>"...)
		b = append(b, payload...)
		b = append(b, "</iq>"...)
	}
	a.route(c, b)
}

func (a *AppServer) fail(c *router.Context, typ, cond, text string) {
	st := *c.Stanza
	st.From, st.To = c.From.String(), c.To.String()
	if raw := wire.ErrorReply(&st, typ, cond, text); raw != nil {
		a.route(c, raw)
	}
}

func (a *AppServer) route(c *router.Context, raw []byte) {
	st, err := wire.ParseElement(raw, wire.NSClient)
	if err != nil {
		a.log.Error("push: building an answer failed", "err", err)
		return
	}
	a.r.Route(a.r.NewContext(context.Background(), st, c.To, c.From, nil))
}
