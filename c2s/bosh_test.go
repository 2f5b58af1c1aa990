package c2s_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/c2s"
	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/sasl"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/wire"
)

// boshClient is a minimal XEP-0206 client for the tests.
type boshClient struct {
	t      *testing.T
	url    string
	rid    int64
	sid    string
	header http.Header // sent with every request (a proxy's X-Forwarded-*)
	create string      // more attributes of the session request (login)
	// onWrote, if set, runs once, when the next request has been written.
	onWrote func()
}

// post sends one <body/> with payload and returns the response body's
// attributes (raw) and the elements it carried.
func (b *boshClient) post(attrs, payload string) (string, []*wire.Stanza) {
	b.t.Helper()
	b.rid++
	return b.postRID(b.rid, attrs, payload)
}

// postRID is post with the rid given (for requests sent concurrently).
func (b *boshClient) postRID(rid int64, attrs, payload string) (string, []*wire.Stanza) {
	b.t.Helper()
	body := "<body xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh' rid='" + strconv.FormatInt(rid, 10) + "'"
	if b.sid != "" {
		body += " sid='" + b.sid + "'"
	}
	body += " " + attrs + ">" + payload + "</body>"
	req, err := http.NewRequest("POST", b.url, strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	for k, v := range b.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	if f := b.onWrote; f != nil {
		b.onWrote = nil
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			WroteRequest: func(httptrace.WroteRequestInfo) { f() },
		}))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		b.t.Fatalf("no CORS header: %v", resp.Header)
	}
	raw, _ := io.ReadAll(resp.Body)
	top, err := wire.ParseElement(raw, "http://jabber.org/protocol/httpbind")
	if err != nil {
		b.t.Fatalf("response %q: %v", raw, err)
	}
	end := bytes.IndexByte(raw, '>')
	head := string(raw[:end+1])
	var out []*wire.Stanza
	if !strings.HasSuffix(head, "/>") {
		inner := raw[end+1 : bytes.LastIndex(raw, []byte("</body>"))]
		rd := wire.NewReader(io.MultiReader(strings.NewReader("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"), bytes.NewReader(inner)), 1<<20)
		if _, err := rd.Header(); err != nil {
			b.t.Fatal(err)
		}
		for {
			st, err := rd.Next()
			if err != nil {
				break
			}
			out = append(out, st)
		}
	}
	_ = top
	return head, out
}

func attr(head, name string) string {
	i := strings.Index(head, " "+name+"='")
	if i < 0 {
		return ""
	}
	rest := head[i+len(name)+3:]
	return rest[:strings.IndexByte(rest, '\'')]
}

// login opens a session, authenticates with SCRAM-SHA-256 and binds
// resource.
func (b *boshClient) login(user, password, resource string) {
	t := b.t
	t.Helper()
	head, els := b.post("to='localhost' wait='2' hold='1' ver='1.6' xmpp:version='1.0'"+b.create, "")
	b.sid = attr(head, "sid")
	if b.sid == "" || len(els) != 1 || els[0].Name != "features" || !client.Contains(els[0], "SCRAM-SHA-256") {
		t.Fatalf("session creation: %s %v", head, els)
	}
	// SCRAM over BOSH.
	m, err := sasl.NewClient("SCRAM-SHA-256", user, password, sasl.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := m.Step(nil)
	_, els = b.post("", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>"+base64.StdEncoding.EncodeToString(first)+"</auth>")
	if len(els) != 1 || els[0].Name != "challenge" {
		t.Fatalf("want a challenge, got %v", els)
	}
	var ch struct {
		Data string `xml:",chardata"`
	}
	_ = els[0].Decode(&ch)
	chal, _ := base64.StdEncoding.DecodeString(ch.Data)
	final, _, err := m.Step(chal)
	if err != nil {
		t.Fatal(err)
	}
	_, els = b.post("", "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"+base64.StdEncoding.EncodeToString(final)+"</response>")
	if len(els) != 1 || els[0].Name != "success" {
		t.Fatalf("want success, got %v", els)
	}
	_, els = b.post("xmpp:restart='true' to='localhost'", "")
	if len(els) != 1 || !client.Contains(els[0], "urn:ietf:params:xml:ns:xmpp-bind") {
		t.Fatalf("restart: %v", els)
	}
	_, els = b.post("", "<iq type='set' id='b1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>"+resource+"</resource></bind></iq>")
	if len(els) != 1 || !client.Contains(els[0], user+"@localhost/"+resource) {
		t.Fatalf("bind: %v", els)
	}
}

// TestBOSHStreamLang: the session request's xml:lang is the stream's
// language, applied to stanzas without one (RFC 6120 §4.7.4, XEP-0124 §7.1).
func TestBOSHStreamLang(t *testing.T) {
	e := servertest.Start(t, trustLoopback)
	e.AddUser("alice", "secret-pw")
	e.AddUser("bob", "secret-pw")
	b := &boshClient{t: t, url: e.BOSH, rid: 4000, header: forwarded("", "https"), create: " xml:lang='de'"}
	b.login("alice", "secret-pw", "web")
	bob := e.Login("bob", "secret-pw", "tcp")
	// The bind result comes before the router knows the resource: a round
	// trip on bob's stream makes sure it does.
	sync(t, bob)
	b.post("", "<message xmlns='jabber:client' to='bob@localhost/tcp' type='chat' id='l1'><body>Hallo</body></message>")
	got, err := bob.Expect(timeout, client.ID("l1"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Lang != "de" {
		t.Fatalf("arrived with xml:lang %q, want \"de\": %s", got.Lang, got.Raw)
	}
}

func TestBOSHLoginChatAndLongPoll(t *testing.T) {
	e := servertest.Start(t, trustLoopback) // as behind a TLS-terminating proxy
	e.AddUser("alice", "secret-pw")
	e.AddUser("bob", "secret-pw")
	b := &boshClient{t: t, url: e.BOSH, rid: 4000, header: forwarded("", "https")}
	b.login("alice", "secret-pw", "web")
	bob := e.Login("bob", "secret-pw", "tcp")
	b.post("", "<presence xmlns='jabber:client'/><message xmlns='jabber:client' to='bob@localhost/tcp' type='chat'><body>from bosh</body></message>")
	got, err := bob.Expect(timeout, client.Kind(wire.KindMessage))
	if err != nil || got.From != "alice@localhost/web" || !client.Contains(got, "from bosh") {
		t.Fatalf("bob got %v %v", got, err)
	}
	// A long poll with nothing to say ends after wait, and the session lives on.
	start := time.Now()
	_, els := b.post("", "")
	if len(els) != 0 || time.Since(start) < 1500*time.Millisecond {
		t.Fatalf("empty poll returned %v after %v", els, time.Since(start))
	}
	// A message arrives while a request is held: bob sends it once the
	// server holds alice's next request.
	held := make(chan struct{}, 1)
	c2s.OnBOSHHolding(t, func(sid string) {
		if sid == b.sid {
			select {
			case held <- struct{}{}:
			default:
			}
		}
	})
	go func() {
		select {
		case <-held:
		case <-t.Context().Done():
			return
		}
		_ = bob.Send("<message to='alice@localhost/web' type='chat'><body>to bosh</body></message>")
	}()
	// The held request is the one that brings it.
	_, els = b.post("", "")
	for _, el := range els {
		if el.Kind == wire.KindMessage && client.Contains(el, "to bosh") {
			b.post("type='terminate'", "<presence xmlns='jabber:client' type='unavailable'/>")
			return
		}
	}
	t.Fatalf("the held request was answered with %d elements, not the message", len(els))
}

// TestBOSHSecureOnlyThroughTrustedProxy: BOSH over plain HTTP offers SASL
// only when a trusted proxy says the client came over TLS, and its
// limits apply to the client the proxy reports.
func TestBOSHSecureOnlyThroughTrustedProxy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted bool
		proto   string
		sasl    bool
	}{
		{"untrusted loopback", false, "", false},
		{"untrusted, says https", false, "https", false},
		{"trusted, no proto", true, "", false},
		{"trusted, https", true, "https", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := servertest.Start(t, func(c *conf.Config) {
				if tc.trusted {
					trustLoopback(c)
				}
			})
			b := &boshClient{t: t, url: e.BOSH, rid: 100, header: forwarded("198.51.100.1", tc.proto)}
			_, els := b.post("to='localhost' wait='1' hold='1' ver='1.6' xmpp:version='1.0'", "")
			if len(els) != 1 || els[0].Name != "features" {
				t.Fatalf("session creation: %v", els)
			}
			if got := client.Contains(els[0], "<mechanisms"); got != tc.sasl {
				t.Fatalf("SASL offered = %v, want %v: %s", got, tc.sasl, els[0].Raw)
			}
		})
	}
	t.Run("limits", func(t *testing.T) {
		e := servertest.Start(t, func(c *conf.Config) { trustLoopback(c); c.Limits.MaxConnectionsPerIP = 1 })
		create := func(ip string) string {
			b := &boshClient{t: t, url: e.BOSH, rid: 100, header: forwarded(ip, "https")}
			head, _ := b.post("to='localhost' wait='1' hold='1' ver='1.6' xmpp:version='1.0'", "")
			return attr(head, "condition")
		}
		if got := create("198.51.100.1"); got != "" {
			t.Fatalf("first client: %s", got)
		}
		if got := create("198.51.100.2"); got != "" {
			t.Fatalf("second client behind the same proxy: %s", got)
		}
		if got := create("198.51.100.1"); got != "policy-violation" {
			t.Fatalf("second session of one client: %q, want policy-violation", got)
		}
	})
}

// TestBOSHRequestsProcessedInRIDOrder: with two requests in flight
// (requests='2'), the one with rid+2 arriving first waits for rid+1; both
// payloads are processed in rid order and neither request ends the
// session (XEP-0124 §14.3).
func TestBOSHRequestsProcessedInRIDOrder(t *testing.T) {
	e := servertest.Start(t, nil)
	e.AddUser("alice", "secret-pw")
	e.AddUser("bob", "secret-pw")
	early := make(chan int64, 1)
	hs := httptest.NewServer(e.Srv.C2S.BOSH(c2s.BOSHOptions{
		ClientOf:   func(r *http.Request) (netip.Addr, bool) { return netip.MustParseAddr("127.0.0.1"), true },
		OutOfOrder: func(rid int64) { early <- rid },
	}))
	defer hs.Close()
	b := &boshClient{t: t, url: hs.URL, rid: 7000}
	b.login("alice", "secret-pw", "web")
	bob := e.Login("bob", "secret-pw", "tcp")
	msg := func(body string) string {
		return "<message xmlns='jabber:client' to='bob@localhost/tcp' type='chat'><body>" + body + "</body></message>"
	}
	type reply struct {
		head string
		els  []*wire.Stanza
	}
	second, first := make(chan reply, 1), make(chan reply, 1)
	go func() {
		h, els := b.postRID(b.rid+2, "", msg("second"))
		second <- reply{h, els}
	}()
	select {
	case got := <-early:
		if got != b.rid+2 {
			t.Fatalf("out-of-order request %d, want %d", got, b.rid+2)
		}
	case <-time.After(timeout):
		t.Fatal("rid+2 was not seen arriving early")
	}
	go func() {
		h, els := b.postRID(b.rid+1, "", msg("first"))
		first <- reply{h, els}
	}()
	for _, want := range []string{"first", "second"} {
		m, err := bob.Expect(timeout, client.Kind(wire.KindMessage))
		if err != nil {
			t.Fatalf("bob: want %q: %v", want, err)
		}
		if !client.Contains(m, "<body>"+want+"</body>") {
			t.Fatalf("bob: want %q, got %s", want, m.Raw)
		}
	}
	// Both requests are answered (rid+1 when rid+2 takes the hold, rid+2
	// when a message for alice arrives), neither with a terminate.
	_ = bob.Send("<message to='alice@localhost/web' type='chat'><body>release</body></message>")
	for _, ch := range []chan reply{first, second} {
		r := <-ch
		if strings.Contains(r.head, "terminate") {
			t.Fatalf("request answered %s", r.head)
		}
	}
	b.rid += 2
	// The session goes on: a ping is answered.
	_, els := b.post("", "<iq xmlns='jabber:client' type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	for i := 0; i < 3; i++ {
		for _, el := range els {
			if el.ID == "p1" && el.Type == "result" {
				return
			}
		}
		_, els = b.post("", "")
	}
	t.Fatal("no answer to a ping after the out-of-order requests")
}

// TestBOSHNegotiationTimeout: a BOSH session that never authenticates is
// ended after limits negotiation-timeout, like a TCP one: the request held
// at that moment is answered with the connection-timeout stream error.
func TestBOSHNegotiationTimeout(t *testing.T) {
	e := servertest.Start(t, func(c *conf.Config) { c.Limits.NegotiationTimeout = 300 * time.Millisecond })
	b := &boshClient{t: t, url: e.BOSH, rid: 100}
	head, _ := b.post("to='localhost' wait='60' hold='1' ver='1.6' xmpp:version='1.0'", "")
	b.sid = attr(head, "sid")
	// Held until the server ends the session (wait is a minute).
	head, els := b.post("", "")
	if attr(head, "type") != "terminate" || len(els) != 1 || !client.Contains(els[0], "<connection-timeout") {
		t.Fatalf("want a terminate with connection-timeout, got %s %v", head, els)
	}
}

// TestBOSHOverlappingEarlyRequests: a second request for a rid already
// waiting for its predecessor exceeds the window: the session ends with
// policy-violation (XEP-0124 §11) rather than piling up waiting requests.
func TestBOSHOverlappingEarlyRequests(t *testing.T) {
	e := servertest.Start(t, nil)
	early := make(chan int64, 1)
	hs := httptest.NewServer(e.Srv.C2S.BOSH(c2s.BOSHOptions{OutOfOrder: func(rid int64) { early <- rid }}))
	defer hs.Close()
	b := &boshClient{t: t, url: hs.URL, rid: 500}
	head, _ := b.post("to='localhost' wait='60' hold='1' ver='1.6' xmpp:version='1.0'", "")
	b.sid = attr(head, "sid")
	waiting := make(chan string, 1)
	go func() {
		h, _ := b.postRID(b.rid+2, "", "")
		waiting <- h
	}()
	select {
	case <-early:
	case <-time.After(timeout):
		t.Fatal("rid+2 was not seen arriving early")
	}
	if head, _ := b.postRID(b.rid+2, "", ""); attr(head, "condition") != "policy-violation" {
		t.Fatalf("second early request: %s", head)
	}
	// The session is over: the waiting request is answered too.
	if h := <-waiting; attr(h, "type") != "terminate" {
		t.Fatalf("the waiting request: %s", h)
	}
}
