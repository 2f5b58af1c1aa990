package push_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/c2s"
	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/push"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

// End-to-end tests: a real server with the built-in app server pointed at
// the HTTP/2 stand-in for APNs, FCM and Google's token endpoint, and real
// clients over TLS.

const (
	timeout = 10 * time.Second
	pw      = "secret-pw"
	bobJID  = "bob@localhost"
)

type world struct {
	t   *testing.T
	e   *servertest.Env
	s   *push.StandIn
	cfg *push.Config
}

func start(t *testing.T, edit func(*push.Config), resume time.Duration) *world {
	t.Helper()
	return startWith(t, edit, resume, nil)
}

func startWith(t *testing.T, edit func(*push.Config), resume time.Duration, other func(*conf.Config)) *world {
	t.Helper()
	w := &world{t: t, s: push.NewStandIn(t)}
	w.e = servertest.Start(t, func(cfg *conf.Config) {
		if other != nil {
			other(cfg)
		}
		pc := cfg.Module("push").(*push.Config)
		pc.AppServer = push.AppServerConfigFor(t, w.s)
		pc.Throttle = 0
		pc.Timeout = 5 * time.Second
		if edit != nil {
			edit(pc)
		}
		w.cfg = pc
		if resume > 0 {
			cfg.Module("stream-management").(interface{ SetResumeTimeout(time.Duration) }).SetResumeTimeout(resume)
		}
	})
	w.e.AddUser("alice", pw)
	w.e.AddUser("bob", pw)
	w.s.SetIdle(w.idle)
	return w
}

// idle waits until the server's push queues are empty: every notification
// triggered before went out and was answered.
func (w *world) idle(ctx context.Context) error {
	return push.Lookup(w.e.Srv.Router).Idle(ctx)
}

func iq(t *testing.T, c *client.Client, id, raw string) *wire.Stanza {
	t.Helper()
	st, err := c.IQ(timeout, raw, id)
	if err != nil {
		t.Fatalf("iq %s: %v", id, err)
	}
	return st
}

func wantResult(t *testing.T, st *wire.Stanza) {
	t.Helper()
	if st.Type != "result" {
		t.Fatalf("want a result, got %s", st.Raw)
	}
}

func wantError(t *testing.T, st *wire.Stanza, cond string) {
	t.Helper()
	if st.Type != "error" || !client.Contains(st, "<"+cond+" ") {
		t.Fatalf("want error %s, got %s", cond, st.Raw)
	}
}

// enableXML is an enable request with a publish-options form of fields
// (var, value, var, value …).
func enableXML(id, service, node string, fields ...string) string {
	var b strings.Builder
	b.WriteString("<iq type='set' id='" + id + "'><enable xmlns='urn:xmpp:push:0' jid='" + service + "'")
	if node != "" {
		b.WriteString(" node='" + node + "'")
	}
	b.WriteString(">")
	if len(fields) > 0 {
		b.WriteString("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>")
		for i := 0; i+1 < len(fields); i += 2 {
			b.WriteString("<field var='" + fields[i] + "'><value>" + fields[i+1] + "</value></field>")
		}
		b.WriteString("</x>")
	}
	b.WriteString("</enable></iq>")
	return b.String()
}

func chat(to, id, body string) string {
	return "<message type='chat' to='" + to + "' id='" + id + "'><body>" + body + "</body></message>"
}

func propose(to, callID string) string {
	return "<message type='chat' to='" + to + "' id='p-" + callID + "'><propose xmlns='urn:xmpp:jingle-message:0' id='" + callID + "'>" +
		"<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'/>" +
		"</propose><store xmlns='urn:xmpp:hints'/></message>"
}

// gone waits until bare has no bound session.
func (w *world) gone(bare string) {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for len(w.e.Srv.Router.Resources(bare)) > 0 {
		if time.Now().After(deadline) {
			w.t.Fatalf("%s is still bound", bare)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// hibernating waits until the session bare/res lost its link.
func (w *world) hibernating(bare, res string) {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if s, ok := w.e.Srv.Router.Resource(bare, res).(*c2s.Session); ok && s.Hibernating() {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s/%s does not hibernate", bare, res)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (w *world) regs(owner string) []storage.PushRegistration {
	w.t.Helper()
	regs, err := w.e.Srv.Store.PushRegistrations().List(context.Background(), owner)
	if err != nil {
		w.t.Fatal(err)
	}
	return regs
}

// sync waits until c's earlier stanzas were routed (a ping round trip).
func sync2(t *testing.T, c *client.Client) {
	t.Helper()
	iq(t, c, "sync", "<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
}

func header(t *testing.T, r push.VendorReq, name, want string) {
	t.Helper()
	if got := r.Header.Get(name); got != want {
		t.Errorf("%s = %q, want %q", name, got, want)
	}
}

func xmppData(t *testing.T, r push.VendorReq) map[string]any {
	t.Helper()
	x, ok := r.JSON["xmpp"].(map[string]any)
	if !ok {
		t.Fatalf("no xmpp object in %s", r.Body)
	}
	return x
}

// A device enabled with the built-in app server, then offline: one
// message from another user makes exactly one APNs alert, without the
// body; offline storage still keeps the message.
func TestOfflineMessageAPNs(t *testing.T) {
	w := start(t, nil, 0)
	bob := w.e.Login("bob", pw, "phone")
	wantResult(t, iq(t, bob, "e1", enableXML("e1", "push.localhost", "node-1", "type", "apns", "token", "0a0b0c")))
	if regs := w.regs(bobJID); len(regs) != 1 || regs[0].Resource != "phone" || regs[0].Service != "push.localhost" {
		t.Fatalf("registrations %+v", regs)
	}
	_ = bob.Close()
	w.gone(bobJID)

	alice := w.e.Login("alice", pw, "pc")
	_ = alice.Send(chat(bobJID, "m1", "the secret words"))
	r := w.s.WaitAPNs(t, 1)[0]
	if r.Method != http.MethodPost || r.Path != "/3/device/0a0b0c" || r.Proto != 2 || !r.AuthOK {
		t.Fatalf("APNs request %s %s HTTP/%d auth ok %v", r.Method, r.Path, r.Proto, r.AuthOK)
	}
	header(t, r, "apns-push-type", "alert")
	header(t, r, "apns-topic", push.TestBundle)
	header(t, r, "apns-priority", "10")
	if !strings.HasPrefix(r.Header.Get("authorization"), "bearer ") {
		t.Errorf("authorization %q", r.Header.Get("authorization"))
	}
	x := xmppData(t, r)
	if x["type"] != "message" || x["count"] != 1.0 || x["sender"] != "alice@localhost" || x["node"] != "node-1" {
		t.Errorf("payload %s", r.Body)
	}
	if bytes.Contains(r.Body, []byte("secret")) || x["body"] != nil {
		t.Errorf("the body went to APNs although include-body is off: %s", r.Body)
	}

	// The message waited in offline storage.
	bob = w.e.Login("bob", pw, "phone")
	_ = bob.Send("<presence/>")
	st, err := bob.Expect(timeout, client.Kind(wire.KindMessage))
	if err != nil || !client.Contains(st, "the secret words") {
		t.Fatalf("offline message: %v %v", st, err)
	}
}

// A stream-managed session whose link dies hibernates: a message makes an
// alert, a JMI proposal a VoIP push to the PushKit token. After the session
// resumed and spoke, the count starts over.
func TestHibernatedSessionAlertAndVoIP(t *testing.T) {
	w := start(t, nil, time.Minute)
	cfg := w.e.ClientConfig("bob", pw, "phone")
	bob := w.e.LoginWith(cfg)
	if _, err := bob.EnableSM(timeout, true); err != nil {
		t.Fatal(err)
	}
	_ = bob.Send("<presence/>")
	wantResult(t, iq(t, bob, "e1", enableXML("e1", "push.localhost", "n", "type", "apns", "token", "aaaa", "voip-token", "bbbb")))
	_ = bob.Abort()
	w.hibernating(bobJID, "phone")

	alice := w.e.Login("alice", pw, "pc")
	_ = alice.Send(chat(bobJID, "m1", "hello"))
	w.s.WaitAPNs(t, 1)
	_ = alice.Send(propose(bobJID, "call-1"))
	reqs := w.s.WaitAPNs(t, 2)
	alert, voip := reqs[0], reqs[1]
	header(t, alert, "apns-push-type", "alert")
	if alert.Path != "/3/device/aaaa" || xmppData(t, alert)["count"] != 1.0 {
		t.Errorf("alert %s %s", alert.Path, alert.Body)
	}
	if voip.Path != "/3/device/bbbb" || !voip.AuthOK {
		t.Errorf("VoIP push went to %s (auth ok %v), want the voip token", voip.Path, voip.AuthOK)
	}
	header(t, voip, "apns-push-type", "voip")
	header(t, voip, "apns-topic", push.TestBundle+".voip")
	header(t, voip, "apns-priority", "10")
	header(t, voip, "apns-collapse-id", "call:call-1")
	x := xmppData(t, voip)
	if x["type"] != "call" || x["call-id"] != "call-1" || x["caller"] != "alice@localhost/pc" || x["sender"] != "alice@localhost" {
		t.Errorf("VoIP payload %s", voip.Body)
	}
	if m, _ := x["media"].([]any); len(m) != 2 || m[0] != "audio" || m[1] != "video" {
		t.Errorf("media %v", x["media"])
	}

	// Resume: both stanzas arrive; once the client speaks, its count
	// starts over.
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	bob2, _, err := client.Resume(ctx, cfg, bob.SMID(), bob.H())
	if err != nil {
		t.Fatal(err)
	}
	defer bob2.Close()
	for range 2 {
		if _, err := bob2.Expect(timeout, client.Kind(wire.KindMessage)); err != nil {
			t.Fatal(err)
		}
	}
	sync2(t, bob2)
	_ = bob2.Abort()
	w.hibernating(bobJID, "phone")
	_ = alice.Send(chat(bobJID, "m2", "again"))
	reqs = w.s.WaitAPNs(t, 3)
	if c := xmppData(t, reqs[2])["count"]; c != 1.0 {
		t.Errorf("count after the device came back and left again: %v, want 1", c)
	}
}

// APNs says the device is gone: the registration is disabled and the next
// message sends nothing.
func TestUnregisteredDeviceDisabled(t *testing.T) {
	w := start(t, nil, 0)
	w.s.AnswerAPNs("dead", http.StatusGone, "Unregistered")
	bob := w.e.Login("bob", pw, "phone")
	wantResult(t, iq(t, bob, "e1", enableXML("e1", "push.localhost", "n", "type", "apns", "token", "dead")))
	_ = bob.Close()
	w.gone(bobJID)
	alice := w.e.Login("alice", pw, "pc")
	_ = alice.Send(chat(bobJID, "m1", "one"))
	w.s.WaitAPNs(t, 1)
	deadline := time.Now().Add(timeout)
	for len(w.regs(bobJID)) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the registration was not disabled")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = alice.Send(chat(bobJID, "m2", "two"))
	sync2(t, alice)
	w.s.WaitAPNs(t, 1)
}

func TestDisable(t *testing.T) {
	w := start(t, nil, 0)
	bob := w.e.Login("bob", pw, "phone")
	for _, n := range []string{"n1", "n2"} {
		wantResult(t, iq(t, bob, "e-"+n, enableXML("e-"+n, "push.localhost", n, "type", "apns", "token", "cafe")))
	}
	wantResult(t, iq(t, bob, "d1", "<iq type='set' id='d1'><disable xmlns='urn:xmpp:push:0' jid='push.localhost' node='n1'/></iq>"))
	if regs := w.regs(bobJID); len(regs) != 1 || regs[0].Node != "n2" {
		t.Fatalf("after disabling n1: %+v", regs)
	}
	// No node: every node of that app server.
	wantResult(t, iq(t, bob, "d2", "<iq type='set' id='d2'><disable xmlns='urn:xmpp:push:0' jid='push.localhost'/></iq>"))
	if regs := w.regs(bobJID); len(regs) != 0 {
		t.Fatalf("after disabling the app server: %+v", regs)
	}
	_ = bob.Close()
	w.gone(bobJID)
	alice := w.e.Login("alice", pw, "pc")
	_ = alice.Send(chat(bobJID, "m1", "one"))
	sync2(t, alice)
	w.s.WaitAPNs(t, 0)
}

func TestOfflineFCM(t *testing.T) {
	w := start(t, func(c *push.Config) { c.IncludeBody = true }, 0)
	bob := w.e.Login("bob", pw, "phone")
	wantResult(t, iq(t, bob, "e1", enableXML("e1", "push.localhost", "n", "type", "fcm", "token", "fcm:tok")))
	_ = bob.Close()
	w.gone(bobJID)
	alice := w.e.Login("alice", pw, "pc")
	_ = alice.Send(chat(bobJID, "m1", "body &amp; soul"))
	w.s.WaitFCM(t, 1)
	_ = alice.Send(propose(bobJID, "c9"))
	reqs := w.s.WaitFCM(t, 2)
	for i, r := range reqs {
		if !r.AuthOK || r.Proto != 2 {
			t.Errorf("request %d: auth ok %v, HTTP/%d", i, r.AuthOK, r.Proto)
		}
	}
	m := reqs[0].JSON["message"].(map[string]any)
	d, a := m["data"].(map[string]any), m["android"].(map[string]any)
	if m["token"] != "fcm:tok" || d["type"] != "message" || d["body"] != "body & soul" || d["count"] != "1" || a["priority"] != "normal" {
		t.Errorf("message %s", reqs[0].Body)
	}
	m = reqs[1].JSON["message"].(map[string]any)
	d, a = m["data"].(map[string]any), m["android"].(map[string]any)
	if d["type"] != "call" || d["call-id"] != "c9" || a["priority"] != "high" {
		t.Errorf("call %s", reqs[1].Body)
	}
}

func TestEnableRefusals(t *testing.T) {
	w := start(t, func(c *push.Config) {
		c.MaxDevices = 1
		c.AppServer.FCM = push.DefaultConfig().AppServer.FCM // APNs only
	}, 0)
	bob := w.e.Login("bob", pw, "phone")
	wantError(t, iq(t, bob, "a", enableXML("a", "push.localhost", "n")), "not-acceptable")
	wantError(t, iq(t, bob, "b", enableXML("b", "push.localhost", "n", "type", "apns")), "not-acceptable")
	wantError(t, iq(t, bob, "c", enableXML("c", "push.localhost", "n", "type", "fcm", "token", "x")), "not-acceptable")
	wantError(t, iq(t, bob, "d", enableXML("d", "push.localhost", "n", "type", "apns", "token", "not hex")), "not-acceptable")
	wantError(t, iq(t, bob, "e", enableXML("e", "push.localhost", "", "type", "apns", "token", "ab")), "bad-request")
	wantError(t, iq(t, bob, "f", "<iq type='set' id='f'><enable xmlns='urn:xmpp:push:0' node='n'/></iq>"), "bad-request")
	wantError(t, iq(t, bob, "g", "<iq type='set' id='g' to='alice@localhost'><enable xmlns='urn:xmpp:push:0' jid='push.localhost' node='n'/></iq>"), "forbidden")
	wantError(t, iq(t, bob, "h", "<iq type='set' id='h'><enable xmlns='urn:xmpp:push:0' jid='apps.example' node='n'>"+
		"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:other</value></field></x></enable></iq>"), "bad-request")
	// max-devices: a second node is refused, replacing the first is not.
	wantResult(t, iq(t, bob, "i", enableXML("i", "push.localhost", "n1", "type", "apns", "token", "ab")))
	wantError(t, iq(t, bob, "j", enableXML("j", "push.localhost", "n2", "type", "apns", "token", "ab")), "resource-constraint")
	wantResult(t, iq(t, bob, "k", enableXML("k", "push.localhost", "n1", "type", "apns", "token", "cd")))
	// Any app server may be named; its form is its business.
	wantError(t, iq(t, bob, "l", enableXML("l", "apps.example", "n", "secret", "s")), "resource-constraint")
	if regs := w.regs(bobJID); len(regs) != 1 || !strings.Contains(string(regs[0].Form), "cd") {
		t.Fatalf("registrations %+v", regs)
	}
	// A publish straight to the app server from elsewhere is refused.
	wantError(t, iq(t, bob, "m", "<iq type='set' id='m' to='push.localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'/></pubsub></iq>"), "forbidden")
}

func TestDisco(t *testing.T) {
	w := start(t, nil, 0)
	bob := w.e.Login("bob", pw, "phone")
	items := iq(t, bob, "i", "<iq type='get' id='i' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	if !client.Contains(items, "jid='push.localhost'") {
		t.Errorf("disco#items: %s", items.Raw)
	}
	info := iq(t, bob, "a", "<iq type='get' id='a' to='bob@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	if !client.Contains(info, "var='urn:xmpp:push:0'") {
		t.Errorf("account disco#info: %s", info.Raw)
	}
	svc := iq(t, bob, "s", "<iq type='get' id='s' to='push.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	if !client.Contains(svc, "category='pubsub' type='push'") {
		t.Errorf("app server disco#info: %s", svc.Raw)
	}
}

func TestAppServerOffWithoutCredentials(t *testing.T) {
	e := servertest.Start(t, nil)
	e.AddUser("bob", pw)
	bob := e.Login("bob", pw, "phone")
	items := iq(t, bob, "i", "<iq type='get' id='i' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	if client.Contains(items, "push.localhost") {
		t.Errorf("push.localhost listed without credentials: %s", items.Raw)
	}
	info := iq(t, bob, "a", "<iq type='get' id='a'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	if !client.Contains(info, "var='urn:xmpp:push:0'") {
		t.Errorf("account disco#info: %s", info.Raw)
	}
}

// A third-party app server (a service on the router here) sees the exact
// XEP-0357 publish.

type appServer struct {
	r      *router.Router
	idle   func(context.Context) error
	mu     sync.Mutex
	got    []*wire.Stanza
	at     []time.Time // when each arrived
	answer string      // "" = result; else the error's inner XML
	ch     chan struct{}
}

func newAppServer(w *world, domain string) *appServer {
	a := &appServer{r: w.e.Srv.Router, idle: w.idle, ch: make(chan struct{}, 100)}
	a.r.RegisterService(domain, func(c *router.Context) {
		st := c.Stanza
		if st.Kind != wire.KindIQ || st.Type != "set" {
			return
		}
		cp := *st
		cp.Raw = append([]byte(nil), st.Raw...)
		a.mu.Lock()
		a.got = append(a.got, &cp)
		a.at = append(a.at, time.Now())
		answer := a.answer
		a.mu.Unlock()
		raw := "<iq type='result' id='" + st.ID + "' from='" + c.To.String() + "' to='" + c.From.String() + "'/>"
		if answer != "" {
			raw = "<iq type='error' id='" + st.ID + "' from='" + c.To.String() + "' to='" + c.From.String() + "'>" + answer + "</iq>"
		}
		ans, err := wire.ParseElement([]byte(raw), wire.NSClient)
		if err != nil {
			panic(err)
		}
		a.r.Route(a.r.NewContext(context.Background(), ans, c.To, c.From, nil))
		select {
		case a.ch <- struct{}{}:
		default:
		}
	})
	return a
}

func (a *appServer) wait(t *testing.T, n int) []*wire.Stanza {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		a.mu.Lock()
		got := len(a.got)
		a.mu.Unlock()
		if got >= n || time.Now().After(deadline) {
			break
		}
		select {
		case <-a.ch:
		case <-time.After(50 * time.Millisecond):
		}
	}
	// What was triggered before has been published once the queues are
	// empty: a publish more is seen here.
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := a.idle(ctx); err != nil {
		t.Fatalf("the push queues did not drain: %v", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.got) != n {
		for _, st := range a.got {
			t.Logf("publish: %s", st.Raw)
		}
		t.Fatalf("the app server got %d publishes, want %d", len(a.got), n)
	}
	return append([]*wire.Stanza(nil), a.got...)
}

type publish struct {
	PubSub struct {
		Publish struct {
			Node string `xml:"node,attr"`
			Item struct {
				Notification struct {
					X struct {
						Type   string `xml:"type,attr"`
						Fields []struct {
							Var   string `xml:"var,attr"`
							Value string `xml:"jabber:x:data value"`
						} `xml:"jabber:x:data field"`
					} `xml:"jabber:x:data x"`
				} `xml:"urn:xmpp:push:0 notification"`
			} `xml:"item"`
		} `xml:"publish"`
		Options struct {
			X struct {
				Fields []struct {
					Var   string `xml:"var,attr"`
					Value string `xml:"jabber:x:data value"`
				} `xml:"jabber:x:data field"`
			} `xml:"jabber:x:data x"`
		} `xml:"publish-options"`
	} `xml:"http://jabber.org/protocol/pubsub pubsub"`
}

// summary decodes a publish: its node, summary fields and options fields.
func summary(t *testing.T, st *wire.Stanza) (node string, sum, opts map[string]string) {
	t.Helper()
	var p publish
	if err := st.Decode(&p); err != nil {
		t.Fatalf("%v: %s", err, st.Raw)
	}
	sum, opts = map[string]string{}, map[string]string{}
	for _, f := range p.PubSub.Publish.Item.Notification.X.Fields {
		sum[f.Var] = f.Value
	}
	for _, f := range p.PubSub.Options.X.Fields {
		opts[f.Var] = f.Value
	}
	return p.PubSub.Publish.Node, sum, opts
}

func TestPublishFormat(t *testing.T) {
	w := start(t, nil, 0)
	app := newAppServer(w, "apps.localhost")
	bob := w.e.Login("bob", pw, "phone")
	wantResult(t, iq(t, bob, "e1", enableXML("e1", "apps.localhost", "yxs32", "secret", "eruio234vzxc2kla-91")))
	_ = bob.Close()
	w.gone(bobJID)
	alice := w.e.Login("alice", pw, "pc")
	_ = alice.Send(chat(bobJID, "m1", "Wherefore art thou?"))
	st := app.wait(t, 1)[0]
	if st.Type != "set" || st.From != bobJID || st.To != "apps.localhost" {
		t.Errorf("publish %s: want an iq set from the bare JID", st.Raw)
	}
	node, sum, opts := summary(t, st)
	if node != "yxs32" || sum["FORM_TYPE"] != "urn:xmpp:push:summary" || sum["message-count"] != "1" ||
		sum["last-message-sender"] != "alice@localhost" || len(sum) != 3 {
		t.Errorf("node %q summary %v", node, sum)
	}
	if opts["FORM_TYPE"] != "http://jabber.org/protocol/pubsub#publish-options" || opts["secret"] != "eruio234vzxc2kla-91" {
		t.Errorf("publish-options %v", opts)
	}
	if bytes.Contains(st.Raw, []byte("Wherefore")) {
		t.Errorf("the body was published although include-body is off: %s", st.Raw)
	}
	// The count grows while the device is away, starts over when it comes
	// back under its resource.
	_ = alice.Send(chat(bobJID, "m2", "two"))
	if _, sum, _ := summary(t, app.wait(t, 2)[1]); sum["message-count"] != "2" {
		t.Errorf("second count %v", sum)
	}
	bob = w.e.Login("bob", pw, "phone")
	_ = bob.Close()
	w.gone(bobJID)
	_ = alice.Send(chat(bobJID, "m3", "three"))
	if _, sum, _ := summary(t, app.wait(t, 3)[2]); sum["message-count"] != "1" {
		t.Errorf("count after the device came back: %v", sum)
	}
	// What is not worth a notification: chat states, headlines, groupchat,
	// receipts, OMEMO key transport.
	for _, m := range []string{
		"<message type='chat' to='bob@localhost'><active xmlns='http://jabber.org/protocol/chatstates'/></message>",
		"<message type='chat' to='bob@localhost'><received xmlns='urn:xmpp:receipts' id='m1'/></message>",
		"<message type='headline' to='bob@localhost'><body>news</body></message>",
		"<message type='chat' to='bob@localhost'><encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'/></encrypted></message>",
	} {
		_ = alice.Send(m)
	}
	sync2(t, alice)
	app.wait(t, 3)
	// An encrypted message is, without its fallback body.
	_ = alice.Send("<message type='chat' to='bob@localhost'><encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'/><payload>AAAA</payload></encrypted><body>I sent you an OMEMO encrypted message</body></message>")
	app.wait(t, 4)
}

func TestIncludeBodyAndThrottle(t *testing.T) {
	w := start(t, func(c *push.Config) { c.IncludeBody, c.Throttle = true, 700*time.Millisecond }, 0)
	app := newAppServer(w, "apps.localhost")
	bob := w.e.Login("bob", pw, "phone")
	wantResult(t, iq(t, bob, "e1", enableXML("e1", "apps.localhost", "n")))
	_ = bob.Close()
	w.gone(bobJID)
	alice := w.e.Login("alice", pw, "pc")
	for i, b := range []string{"one", "two", "three"} {
		_ = alice.Send(chat(bobJID, "m"+string(rune('0'+i)), b))
	}
	got := app.wait(t, 2) // the first at once, one summing up the others when the throttle ends
	if _, sum, opts := summary(t, got[0]); sum["message-count"] != "1" || sum["last-message-body"] != "one" || len(opts) != 0 {
		t.Errorf("first: %v %v", sum, opts)
	}
	if bytes.Contains(got[0].Raw, []byte("publish-options")) {
		t.Errorf("publish-options without a form: %s", got[0].Raw)
	}
	if _, sum, _ := summary(t, got[1]); sum["message-count"] != "3" || sum["last-message-body"] != "three" {
		t.Errorf("held: %v", sum)
	}
	app.mu.Lock()
	gap := app.at[1].Sub(app.at[0])
	app.mu.Unlock()
	if gap < 600*time.Millisecond {
		t.Errorf("the held notification came %v after the first, within the throttle time", gap)
	}
	// Calls are not held back.
	_ = alice.Send(propose(bobJID, "c1"))
	got = app.wait(t, 3)
	if !client.Contains(got[2], "<call xmlns='urn:xmppd:push:call:0' id='c1' from='alice@localhost/pc' media='audio video'/>") {
		t.Errorf("call notification %s", got[2].Raw)
	}
}

func TestAppServerErrors(t *testing.T) {
	w := start(t, nil, 0)
	app := newAppServer(w, "apps.localhost")
	bob := w.e.Login("bob", pw, "phone")
	wantResult(t, iq(t, bob, "e1", enableXML("e1", "apps.localhost", "n")))
	_ = bob.Close()
	w.gone(bobJID)
	alice := w.e.Login("alice", pw, "pc")

	// A transient error keeps the registration.
	app.mu.Lock()
	app.answer = "<error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"
	app.mu.Unlock()
	_ = alice.Send(chat(bobJID, "m1", "one"))
	app.wait(t, 1)
	if len(w.regs(bobJID)) != 1 {
		t.Fatal("a wait error disabled the registration")
	}
	// item-not-found ends it (XEP-0357 §7.1).
	app.mu.Lock()
	app.answer = "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"
	app.mu.Unlock()
	_ = alice.Send(chat(bobJID, "m2", "two"))
	app.wait(t, 2)
	deadline := time.Now().Add(timeout)
	for len(w.regs(bobJID)) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("item-not-found did not disable the registration")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = alice.Send(chat(bobJID, "m3", "three"))
	sync2(t, alice)
	app.wait(t, 2)
}

// Messages notified while a session hibernated go to offline storage when
// it expires; the offline path does not notify them twice.
func TestHibernationExpiryNotifiesOnce(t *testing.T) {
	w := start(t, nil, time.Second)
	app := newAppServer(w, "apps.localhost")
	bob := w.e.Login("bob", pw, "phone")
	if _, err := bob.EnableSM(timeout, true); err != nil {
		t.Fatal(err)
	}
	_ = bob.Send("<presence/>")
	wantResult(t, iq(t, bob, "e1", enableXML("e1", "apps.localhost", "n")))
	_ = bob.Abort()
	w.hibernating(bobJID, "phone")
	alice := w.e.Login("alice", pw, "pc")
	_ = alice.Send(chat(bobJID, "m1", "one"))
	_ = alice.Send(chat(bobJID, "m2", "two"))
	app.wait(t, 2)
	w.gone(bobJID) // the session expired; its messages went to offline storage
	app.wait(t, 2)
	// m3 is the marker: it is published after anything the expiry could
	// have triggered, and it counts three messages, not five.
	_ = alice.Send(chat(bobJID, "m3", "three"))
	got := app.wait(t, 3)
	if _, sum, _ := summary(t, got[2]); sum["message-count"] != "3" {
		t.Errorf("count %v, want 3", sum)
	}
}

// A device that is not connected while another of the account's devices
// is: it is told of calls, and of messages when the archive keeps them
// for it; not of messages to the other device's full JID.
func TestOtherDeviceOnline(t *testing.T) {
	for _, archive := range []bool{true, false} {
		t.Run(map[bool]string{true: "mam", false: "no-mam"}[archive], func(t *testing.T) {
			w := startWith(t, nil, 0, func(c *conf.Config) {
				c.Module("mam").(interface{ SetEnabled(bool) }).SetEnabled(archive)
			})
			phone := w.e.Login("bob", pw, "phone")
			wantResult(t, iq(t, phone, "e1", enableXML("e1", "push.localhost", "n", "type", "apns", "token", "ab", "voip-token", "cd")))
			_ = phone.Close()
			w.gone(bobJID)
			desk := w.e.Login("bob", pw, "desk")
			_ = desk.Send("<presence/>")
			sync2(t, desk)
			alice := w.e.Login("alice", pw, "pc")
			_ = alice.Send(chat(bobJID+"/desk", "m0", "to the desk only"))
			_ = alice.Send(chat(bobJID, "m1", "hello"))
			if _, err := desk.Expect(timeout, client.ID("m1")); err != nil {
				t.Fatal(err)
			}
			n := 0
			if archive {
				n = 1
				header(t, w.s.WaitAPNs(t, 1)[0], "apns-push-type", "alert")
			} else {
				w.s.WaitAPNs(t, 0)
			}
			_ = alice.Send(propose(bobJID, "c1"))
			voip := w.s.WaitAPNs(t, n+1)[n]
			if voip.Path != "/3/device/cd" {
				t.Errorf("call went to %s", voip.Path)
			}
			header(t, voip, "apns-push-type", "voip")
		})
	}
}

var _ = xml.Name{}
