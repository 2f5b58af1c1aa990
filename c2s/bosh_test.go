package c2s_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

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
}

// post sends one <body/> with payload and returns the response body's
// attributes (raw) and the elements it carried.
func (b *boshClient) post(attrs, payload string) (string, []*wire.Stanza) {
	b.t.Helper()
	b.rid++
	body := "<body xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh' rid='" + strconv.FormatInt(b.rid, 10) + "'"
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

func TestBOSHLoginChatAndLongPoll(t *testing.T) {
	e := servertest.Start(t, trustLoopback) // as behind a TLS-terminating proxy
	e.AddUser("alice", "secret-pw")
	e.AddUser("bob", "secret-pw")
	b := &boshClient{t: t, url: e.BOSH, rid: 4000, header: forwarded("", "https")}
	head, els := b.post("to='localhost' wait='2' hold='1' ver='1.6' xmpp:version='1.0'", "")
	b.sid = attr(head, "sid")
	if b.sid == "" || len(els) != 1 || els[0].Name != "features" || !client.Contains(els[0], "SCRAM-SHA-256") {
		t.Fatalf("session creation: %s %v", head, els)
	}
	// SCRAM over BOSH.
	m, err := sasl.NewClient("SCRAM-SHA-256", "alice", "secret-pw", sasl.ClientOptions{})
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
	_, els = b.post("", "<iq type='set' id='b1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>web</resource></bind></iq>")
	if len(els) != 1 || !client.Contains(els[0], "alice@localhost/web") {
		t.Fatalf("bind: %v", els)
	}
	bob := e.Login("bob", "secret-pw", "tcp")
	b.post("", "<presence xmlns='jabber:client'/><message xmlns='jabber:client' to='bob@localhost/tcp' type='chat'><body>from bosh</body></message>")
	got, err := bob.Expect(timeout, client.Kind(wire.KindMessage))
	if err != nil || got.From != "alice@localhost/web" || !client.Contains(got, "from bosh") {
		t.Fatalf("bob got %v %v", got, err)
	}
	// A long poll with nothing to say ends after wait, and the session lives on.
	start := time.Now()
	_, els = b.post("", "")
	if len(els) != 0 || time.Since(start) < 1500*time.Millisecond {
		t.Fatalf("empty poll returned %v after %v", els, time.Since(start))
	}
	// A message arrives while a request is held.
	go func() {
		time.Sleep(300 * time.Millisecond)
		_ = bob.Send("<message to='alice@localhost/web' type='chat'><body>to bosh</body></message>")
	}()
	for i := 0; i < 3; i++ {
		_, els = b.post("", "")
		for _, el := range els {
			if el.Kind == wire.KindMessage && client.Contains(el, "to bosh") {
				b.post("type='terminate'", "<presence xmlns='jabber:client' type='unavailable'/>")
				return
			}
		}
	}
	t.Fatal("the message never reached the BOSH client")
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
