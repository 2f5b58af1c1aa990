// Package upload is XEP-0363 HTTP File Upload: a service on upload.DOMAIN
// for every host hands local users slots (a PUT and a GET URL), and the
// server's HTTP listeners store and serve the files under /upload/.
//
// Slot requests are checked against the file size limit, the allowed and
// denied content types, a per-user quota and a per-user request rate; the
// refusals are the XEP's errors (file-too-large with max-file-size,
// resource-constraint with <retry stamp/>, not-allowed, forbidden). The PUT
// is authorized by an HMAC-SHA256 token carried in the slot as an
// Authorization header and expires after put-expiry; it streams the body to
// a temporary file that is synced and renamed into place only when complete
// and of the announced size, so a partial file is never served and a slot
// is used at most once. GET and HEAD serve stored files with ranges,
// validators, a restrictive Content-Security-Policy, nosniff, attachment
// disposition for anything but images, audio and video, and CORS for web
// clients. Files expire after expire-after and are removed by a sweeper.
//
// The upload directory is the module's own index (see store.go): no table in
// storage/ is needed.
package upload

import (
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/dataform"
	"github.com/xmppd/xmppd/disco"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/wire"
)

const (
	// NS is the XEP-0363 namespace (also the disco feature).
	NS = "urn:xmpp:http:upload:0"
	// Path is where the HTTP handler is mounted on every HTTP listener.
	Path = "/upload/"
	// Name is the service's disco name.
	Name = "HTTP File Upload"

	nsStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsPing    = "urn:xmpp:ping"

	octetStream = "application/octet-stream"
	maxNameLen  = 255 // bytes of a file name
)

// HTTP is what the module needs of the server's HTTP side (*server.Server
// provides it).
type HTTP interface {
	// HandleHTTP mounts h on every HTTP listener.
	HandleHTTP(pattern string, h http.Handler)
	// HTTPAddrs returns the bound listener addresses, in configuration
	// order (empty before the server starts).
	HTTPAddrs() []net.Addr
}

// Module is the upload service.
type Module struct {
	cfg      *Config
	r        *router.Router
	log      *slog.Logger
	st       *store
	secret   []byte
	http     HTTP
	listener *conf.HTTPListener // the first HTTP listener (nil: base-url must be set)
	base     *url.URL           // configured base-url (nil: from the listener)
	now      func() time.Time

	rmu     sync.Mutex
	buckets map[string]*bucket // bare JID → slot requests rate

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// Register starts the upload service for every host in cfg if the module is
// enabled: upload.HOST on the router, listed in each host's disco#items, and
// the HTTP handler on Path. It returns nil (and logs why) when the module is
// off or there is no HTTP listener and no base-url to put in slots.
func Register(cfg *conf.Config, r *router.Router, d *disco.Module, h HTTP, log *slog.Logger) (*Module, error) {
	if !cfg.ModuleEnabled("upload") {
		return nil, nil
	}
	uc := cfg.Module("upload").(*Config)
	m := &Module{cfg: uc, r: r, log: log, http: h, now: time.Now, buckets: map[string]*bucket{}}
	if uc.BaseURL != "" {
		u, err := parseBaseURL(uc.BaseURL)
		if err != nil {
			return nil, fmt.Errorf("upload: base-url: %w", err)
		}
		m.base = u
	}
	if len(cfg.Listeners.HTTP) > 0 {
		l := cfg.Listeners.HTTP[0]
		m.listener = &l
	}
	if m.base == nil && m.listener == nil {
		log.Warn("upload: no HTTP listener and no base-url; HTTP File Upload is off")
		return nil, nil
	}
	st, err := openStore(string(uc.Dir), log)
	if err != nil {
		return nil, err
	}
	m.st = st
	if m.secret, err = loadSecret(filepath.Join(cfg.DataDir, "upload-secret")); err != nil {
		return nil, fmt.Errorf("upload: secret: %w", err)
	}
	for _, host := range cfg.Hosts {
		r.RegisterService("upload."+host, m.serve)
	}
	d.AddItem(func(domain string) disco.Item { return disco.Item{JID: "upload." + domain, Name: Name} })
	h.HandleHTTP(Path, m)
	if m.base != nil && m.base.Scheme == "http" || m.base == nil && !m.listener.TLS && !isLoopback(m.listener.Address.Host()) {
		log.Warn("upload: slot URLs are plain http; XEP-0363 asks for https (set base-url to the https URL of a TLS proxy, or use a TLS listener)")
	}
	log.Info("upload: HTTP File Upload", "services", "upload."+strings.Join(cfg.Hosts, ", upload."), "dir", st.dir,
		"max-file-size", int64(uc.MaxFileSize), "files", len(st.slots))
	m.stop, m.done = make(chan struct{}), make(chan struct{})
	go m.sweeper(sweepInterval(uc))
	return m, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Close stops the sweeper.
func (m *Module) Close() {
	if m == nil {
		return
	}
	m.closeOnce.Do(func() {
		close(m.stop)
		<-m.done
	})
}

// sweepInterval is half the shortest lifetime to watch, between 200ms and 1m.
func sweepInterval(c *Config) time.Duration {
	d := c.PutExpiry
	if c.ExpireAfter > 0 && c.ExpireAfter < d {
		d = c.ExpireAfter
	}
	return min(max(d/2, 200*time.Millisecond), time.Minute)
}

func (m *Module) sweeper(every time.Duration) {
	defer close(m.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			now := m.now()
			if n := m.st.sweep(now, m.cfg.ExpireAfter); n > 0 {
				m.log.Debug("upload: expired slots and files removed", "count", n)
			}
			m.pruneBuckets(now)
		}
	}
}

// baseURL is where slot URLs start for a request to upload.host.
func (m *Module) baseURL(host string) string {
	if m.base != nil {
		return m.base.String()
	}
	l := m.listener
	scheme := "http"
	if l.TLS {
		scheme = "https"
	}
	h, port, _ := net.SplitHostPort(string(l.Address))
	if addrs := m.http.HTTPAddrs(); port == "0" && len(addrs) > 0 {
		if _, p, err := net.SplitHostPort(addrs[0].String()); err == nil {
			port = p
		}
	}
	if ip := net.ParseIP(h); h == "" || ip != nil && ip.IsUnspecified() {
		h = host
	}
	return scheme + "://" + net.JoinHostPort(h, port)
}

// fileURL is the GET (and PUT) URL of a slot.
func (m *Module) fileURL(host string, s *slot) string {
	return m.baseURL(host) + Path + s.ID + "/" + url.PathEscape(s.Name)
}

// serve handles every stanza to upload.HOST.
func (m *Module) serve(c *router.Context) {
	st := c.Stanza
	if st.Kind != wire.KindIQ {
		if st.Kind == wire.KindMessage {
			c.Error("cancel", "service-unavailable", "")
		}
		return
	}
	if st.Type != "get" && st.Type != "set" {
		return // results and errors: nothing was asked
	}
	if c.To.Localpart() != "" || c.To.Resourcepart() != "" {
		c.Error("cancel", "service-unavailable", "")
		return
	}
	switch {
	case st.Type == "get" && st.PayloadNS == NS && st.PayloadName == "request":
		m.request(c)
	case st.Type == "get" && st.PayloadNS == disco.NSInfo && st.PayloadName == "query":
		m.info(c)
	case st.Type == "get" && st.PayloadNS == disco.NSItems && st.PayloadName == "query":
		if node, _ := st.ChildAttr(disco.NSItems, "query", "node"); node != "" {
			c.Error("cancel", "item-not-found", "")
			return
		}
		c.Reply([]byte("<query xmlns='" + disco.NSItems + "'/>"))
	case st.Type == "get" && st.PayloadNS == nsPing && st.PayloadName == "ping":
		c.Reply(nil)
	default:
		c.Error("cancel", "service-unavailable", "")
	}
}

// maxSize is the largest file a slot can be had for (the quota, when lower).
func (m *Module) maxSize() int64 {
	n := int64(m.cfg.MaxFileSize)
	if q := int64(m.cfg.Quota); q > 0 && q < n {
		n = q
	}
	return n
}

func (m *Module) info(c *router.Context) {
	if node, _ := c.Stanza.ChildAttr(disco.NSInfo, "query", "node"); node != "" {
		c.Error("cancel", "item-not-found", "")
		return
	}
	b := make([]byte, 0, 512)
	b = append(b, "<query xmlns='"+disco.NSInfo+"'>"...)
	b = append(b, "<identity category='store' type='file' name='"+Name+"'/>"...)
	for _, f := range []string{disco.NSInfo, disco.NSItems, NS, nsPing} {
		b = append(b, "<feature var='"+f+"'/>"...)
	}
	// XEP-0363 §4: the limit as an XEP-0128 extended information form.
	b = dataform.NewForm(dataform.TypeResult, NS,
		dataform.Field{Var: "max-file-size", Values: []string{strconv.FormatInt(m.maxSize(), 10)}}).AppendXML(b)
	b = append(b, "</query>"...)
	c.Reply(b)
}

// request is a parsed <request/>.
type request struct {
	name, size, ctype string
	hasType           bool
}

func (q *request) appendXML(b []byte) []byte {
	b = append(b, "<request xmlns='"+NS+"' filename='"...)
	b = wire.AppendEscapedAttr(b, q.name)
	b = append(b, "' size='"...)
	b = wire.AppendEscapedAttr(b, q.size)
	b = append(b, '\'')
	if q.hasType {
		b = append(b, " content-type='"...)
		b = wire.AppendEscapedAttr(b, q.ctype)
		b = append(b, '\'')
	}
	return append(b, "/>"...)
}

// refuse answers the slot request with an error that echoes the request,
// as the XEP's examples do; extra goes inside <error/> after the text.
func refuse(c *router.Context, q *request, errType, cond, text string, extra []byte) {
	st := c.Stanza
	b := make([]byte, 0, 384+len(extra))
	b = append(b, "<iq type='error' id='"...)
	b = wire.AppendEscapedAttr(b, st.ID)
	b = append(b, "' from='"...)
	b = wire.AppendEscapedAttr(b, c.To.String())
	b = append(b, "' to='"...)
	b = wire.AppendEscapedAttr(b, c.From.String())
	b = append(b, "'>"...)
	b = q.appendXML(b)
	b = append(b, "<error type='"+errType+"'><"+cond+" xmlns='"+nsStanzas+"'/>"...)
	if text != "" {
		b = append(b, "<text xmlns='"+nsStanzas+"'>"...)
		b = wire.AppendEscapedText(b, text)
		b = append(b, "</text>"...)
	}
	b = append(b, extra...)
	b = append(b, "</error></iq>"...)
	send(c, b)
}

// send delivers server-made bytes to the requester, as Context.Reply does.
func send(c *router.Context, raw []byte) {
	if c.Origin != nil && c.Origin.JID().Equal(c.From) {
		c.Origin.Send(raw)
		return
	}
	c.Router.DeliverRaw(c.From, raw)
}

func retryXML(at time.Time) []byte {
	return []byte("<retry xmlns='" + NS + "' stamp='" + at.UTC().Format(time.RFC3339) + "'/>")
}

func (m *Module) request(c *router.Context) {
	st := c.Stanza
	var q request
	q.name, _ = st.ChildAttr(NS, "request", "filename")
	q.size, _ = st.ChildAttr(NS, "request", "size")
	q.ctype, q.hasType = st.ChildAttr(NS, "request", "content-type")
	now := m.now()
	host := strings.TrimPrefix(c.To.Domainpart(), "upload.")
	owner := c.From.Bare()

	// Who: local users of this host only.
	switch {
	case owner.Localpart() == "" || !m.r.IsHost(owner.Domainpart()):
		refuse(c, &q, "cancel", "not-allowed", "Only local users may upload files here", nil)
		return
	case owner.Domainpart() != host:
		refuse(c, &q, "cancel", "not-allowed", "Only users of "+host+" may upload files here", nil)
		return
	}
	switch exists, err := m.r.CheckAccount(c, owner.String()); {
	case err != nil:
		m.log.Error("checking the account failed", "jid", owner.String(), "err", err)
		refuse(c, &q, "wait", "internal-server-error", "The account could not be checked; try again", nil)
		return
	case !exists:
		refuse(c, &q, "auth", "forbidden", "No such account", nil)
		return
	}

	// What: well-formed request.
	name, ok := cleanName(q.name)
	if !ok {
		refuse(c, &q, "modify", "bad-request", "The filename must be 1-255 bytes long and not be . or ..", nil)
		return
	}
	size, err := strconv.ParseInt(q.size, 10, 64)
	if err != nil || size < 0 {
		refuse(c, &q, "modify", "bad-request", "The size must be a number of bytes", nil)
		return
	}
	ctype, media, ok := canonType(q.ctype)
	if !ok {
		refuse(c, &q, "modify", "bad-request", "The content-type is not a media type", nil)
		return
	}

	// How often.
	if ok, retry := m.allow(owner.String(), now); !ok {
		refuse(c, &q, "wait", "resource-constraint",
			fmt.Sprintf("Too many upload requests: %d per minute allowed", m.cfg.RequestsPerMinute), retryXML(retry))
		return
	}

	// Limits.
	if max := m.maxSize(); size > max {
		extra := []byte("<file-too-large xmlns='" + NS + "'><max-file-size>" + strconv.FormatInt(max, 10) + "</max-file-size></file-too-large>")
		refuse(c, &q, "modify", "not-acceptable", fmt.Sprintf("File too large. The maximum file size is %d bytes", max), extra)
		return
	}
	if media != "" && !m.cfg.typeAllowed(media) {
		refuse(c, &q, "modify", "not-acceptable", "Files of type "+media+" are not accepted", nil)
		return
	}
	s := &slot{
		ID: newID(), Owner: owner.String(), Name: name, Size: size, Type: ctype,
		Created: now.UTC(), PutExpires: now.Add(m.cfg.PutExpiry + time.Second - 1).Truncate(time.Second).UTC(),
	}
	qc, ok, err := m.st.reserve(s, int64(m.cfg.Quota), m.cfg.ExpireAfter, now)
	if err != nil {
		m.log.Error("upload: recording a slot", "error", err)
		refuse(c, &q, "wait", "internal-server-error", "", nil)
		return
	}
	if !ok {
		var extra []byte
		if !qc.retry.IsZero() {
			extra = retryXML(qc.retry)
		}
		refuse(c, &q, "wait", "resource-constraint",
			fmt.Sprintf("Quota reached: %d of %d bytes in use", qc.used, int64(m.cfg.Quota)), extra)
		return
	}

	u := m.fileURL(host, s)
	b := make([]byte, 0, 2*len(u)+160)
	b = append(b, "<slot xmlns='"+NS+"'><put url='"...)
	b = wire.AppendEscapedAttr(b, u)
	b = append(b, "'><header name='Authorization'>"...)
	b = wire.AppendEscapedText(b, token(m.secret, s))
	b = append(b, "</header></put><get url='"...)
	b = wire.AppendEscapedAttr(b, u)
	b = append(b, "'/></slot>"...)
	c.Reply(b)
	m.log.Debug("upload: slot", "owner", s.Owner, "id", s.ID, "size", s.Size, "type", s.Type)
}

// cleanName makes a client's file name safe to keep and to show: control
// characters, path separators, invalid UTF-8 and bidirectional overrides
// become '_'.
func cleanName(s string) (string, bool) {
	s = strings.TrimSpace(strings.Map(func(r rune) rune {
		switch {
		case r < 0x20, r == 0x7f, r == '/', r == '\\', r == utf8.RuneError,
			r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			return '_'
		}
		return r
	}, s))
	if s == "" || s == "." || s == ".." || len(s) > maxNameLen {
		return "", false
	}
	return s, true
}

// canonType parses a content type: full is its canonical form (lowercase
// type, sorted parameters), media the type alone. "" is fine (no type).
func canonType(s string) (full, media string, ok bool) {
	if strings.TrimSpace(s) == "" {
		return "", "", true
	}
	mt, params, err := mime.ParseMediaType(s)
	if err != nil || !strings.Contains(mt, "/") {
		return "", "", false
	}
	full = mime.FormatMediaType(mt, params)
	if full == "" {
		return "", "", false
	}
	return full, mt, true
}

// servedType is the content type a file is served with when its slot
// named type t and the PUT named none.
func servedType(t string) string {
	if t == "" {
		return octetStream
	}
	return t
}

// bucket is a token bucket of slot requests.
type bucket struct {
	tokens float64
	last   time.Time
}

// allow takes a token from owner's bucket; when empty it says when the
// next token comes.
func (m *Module) allow(owner string, now time.Time) (bool, time.Time) {
	n := m.cfg.RequestsPerMinute
	if n <= 0 {
		return true, time.Time{}
	}
	perSec := float64(n) / 60
	m.rmu.Lock()
	defer m.rmu.Unlock()
	b := m.buckets[owner]
	if b == nil {
		b = &bucket{tokens: float64(n), last: now}
		m.buckets[owner] = b
	}
	b.tokens = min(float64(n), b.tokens+now.Sub(b.last).Seconds()*perSec)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, time.Time{}
	}
	wait := time.Duration((1 - b.tokens) / perSec * float64(time.Second))
	return false, now.Add(wait).Add(time.Second - 1).Truncate(time.Second)
}

// pruneBuckets forgets buckets that have filled up again.
func (m *Module) pruneBuckets(now time.Time) {
	m.rmu.Lock()
	defer m.rmu.Unlock()
	for k, b := range m.buckets {
		if now.Sub(b.last) >= time.Minute {
			delete(m.buckets, k)
		}
	}
}
