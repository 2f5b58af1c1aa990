package push

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/xml"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/dataform"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

func parse(t *testing.T, raw string) *wire.Stanza {
	t.Helper()
	st, err := wire.ParseElement([]byte(raw), wire.NSClient)
	if err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	return st
}

func TestInspect(t *testing.T) {
	const from = "from='juliet@example.org/balcony' to='romeo@example.net'"
	for _, tc := range []struct {
		name, raw string
		ok        bool
		body      string // with include-body
		call      string // call id
	}{
		{"chat body", "<message type='chat' " + from + "><body> Wherefore? </body></message>", true, "Wherefore?", ""},
		{"no type", "<message " + from + "><body>x</body></message>", true, "x", ""},
		{"normal", "<message type='normal' " + from + "><body>x</body></message>", true, "x", ""},
		{"explicit ns", "<message xmlns='jabber:client' type='chat' " + from + "><body>x</body></message>", true, "x", ""},
		{"empty body", "<message type='chat' " + from + "><body>  </body></message>", false, "", ""},
		{"groupchat", "<message type='groupchat' " + from + "><body>x</body></message>", false, "", ""},
		{"headline", "<message type='headline' " + from + "><body>x</body></message>", false, "", ""},
		{"error", "<message type='error' " + from + "><body>x</body></message>", false, "", ""},
		{"chat state", "<message type='chat' " + from + "><composing xmlns='http://jabber.org/protocol/chatstates'/></message>", false, "", ""},
		{"body elsewhere", "<message type='chat' " + from + "><x xmlns='urn:other'><body>x</body></x></message>", false, "", ""},
		{"carbon", "<message type='chat' " + from + "><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'><body>x</body></message></forwarded></received></message>", false, "", ""},
		{"omemo", "<message type='chat' " + from + "><encrypted xmlns='eu.siacs.conversations.axolotl'><header/><payload>AA</payload></encrypted><body>fallback</body></message>", true, "", ""},
		{"omemo key transport", "<message type='chat' " + from + "><encrypted xmlns='eu.siacs.conversations.axolotl'><header/></encrypted></message>", false, "", ""},
		{"omemo2", "<message type='chat' " + from + "><encrypted xmlns='urn:xmpp:omemo:2'><header/><payload>AA</payload></encrypted></message>", true, "", ""},
		{"openpgp", "<message type='chat' " + from + "><openpgp xmlns='urn:xmpp:openpgp:0'>AA</openpgp></message>", true, "", ""},
		{"legacy pgp", "<message type='chat' " + from + "><x xmlns='jabber:x:encrypted'>AA</x></message>", true, "", ""},
		{"propose", "<message type='chat' " + from + "><propose xmlns='urn:xmpp:jingle-message:0' id='c1'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose></message>", true, "", "c1"},
		{"propose without id", "<message type='chat' " + from + "><propose xmlns='urn:xmpp:jingle-message:0'/></message>", false, "", ""},
		{"retract", "<message type='chat' " + from + "><retract xmlns='urn:xmpp:jingle-message:0' id='c1'/></message>", false, "", ""},
		{"presence", "<presence " + from + "/>", false, "", ""},
	} {
		for _, include := range []bool{false, true} {
			ev, ok := inspect(parse(t, tc.raw), include)
			if ok != tc.ok {
				t.Errorf("%s: ok = %v", tc.name, ok)
				continue
			}
			if !ok {
				continue
			}
			want := ""
			if include {
				want = tc.body
			}
			if ev.body != want || ev.sender != "juliet@example.org" || ev.digest == 0 {
				t.Errorf("%s (include %v): %+v", tc.name, include, ev)
			}
			if tc.call != "" && (ev.call == nil || ev.call.id != tc.call || ev.call.from != "juliet@example.org/balcony" || strings.Join(ev.call.media, ",") != "audio") {
				t.Errorf("%s: call %+v", tc.name, ev.call)
			}
		}
	}
}

func TestTruncate(t *testing.T) {
	long := strings.Repeat("é", maxBody) // 2 bytes each
	got := truncate(long, maxBody)
	if !strings.HasSuffix(got, "…") || len(got) > maxBody+len("…") || strings.ContainsRune(got, '\uFFFD') {
		t.Errorf("truncate: %d bytes %q…", len(got), got[:10])
	}
	if truncate("short", 10) != "short" {
		t.Error("short strings are kept")
	}
}

func decodeForm(t *testing.T, raw string) *dataform.Form {
	t.Helper()
	x, err := dataform.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestPublishOptions(t *testing.T) {
	b, err := publishOptions(decodeForm(t, "<x xmlns='jabber:x:data' type='submit'><field var='secret'><value>a&amp;b</value></field>"+
		"<field var='FORM_TYPE' type='hidden'><value>"+nsPublishOptions+"</value></field></x>"))
	want := "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>" + nsPublishOptions +
		"</value></field><field var='secret'><value>a&amp;b</value></field></x>"
	if err != nil || string(b) != want {
		t.Errorf("publishOptions = %s, %v\nwant %s", b, err, want)
	}
	// FORM_TYPE is added when missing.
	b, err = publishOptions(decodeForm(t, "<x xmlns='jabber:x:data'><field var='token'><value>t</value></field></x>"))
	if err != nil || !strings.HasPrefix(string(b), "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>") {
		t.Errorf("publishOptions without FORM_TYPE = %s, %v", b, err)
	}
	for _, bad := range []string{
		"<x xmlns='jabber:x:data'><field var='FORM_TYPE'><value>urn:other</value></field></x>",
		"<x xmlns='jabber:x:data' type='form'/>",
		"<x xmlns='jabber:x:data'><field><value>v</value></field></x>",
		"<x xmlns='jabber:x:data'><field var='big'><value>" + strings.Repeat("x", maxForm) + "</value></field></x>",
	} {
		x, err := dataform.Parse([]byte(bad)) // dataform refuses a field without var
		if err == nil {
			_, err = publishOptions(x)
		}
		if err == nil {
			t.Errorf("accepted %.80s", bad)
		}
	}
}

func TestParseTarget(t *testing.T) {
	f := func(kv ...string) *dataform.Form {
		out := &dataform.Form{}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Fields = append(out.Fields, dataform.Field{Var: kv[i], Values: []string{kv[i+1]}})
		}
		return out
	}
	good := []*dataform.Form{
		f("type", "apns", "token", "ab01"),
		f("type", "apns", "token", "ab01", "voip-token", "CD", "sandbox", "true"),
		f("type", "fcm", "token", "dGVzdA:APA91b-_x"),
	}
	for _, g := range good {
		if _, err := parseTarget(g); err != nil {
			t.Errorf("%v: %v", g, err)
		}
	}
	bad := []*dataform.Form{
		f("type", "apns"),
		f("token", "ab"),
		f("type", "webpush", "token", "ab"),
		f("type", "apns", "token", "../x"),
		f("type", "apns", "token", "ab", "voip-token", "z"),
		f("type", "apns", "token", "ab", "sandbox", "maybe"),
		f("type", "fcm", "token", "t", "voip-token", "ab"),
		f("type", "fcm", "token", strings.Repeat("t", maxToken+1)),
	}
	for _, b := range bad {
		if _, err := parseTarget(b); err == nil {
			t.Errorf("accepted %v", b)
		}
	}
}

func TestPayload(t *testing.T) {
	n := &notice{
		reg:    storage.PushRegistration{Node: "n'<1>", Form: []byte("<x xmlns='jabber:x:data' type='submit'/>")},
		count:  3,
		sender: "juliet@example.org",
		body:   "a < b",
		call:   &call{id: "c&1", from: "juliet@example.org/balcony", media: []string{"audio", "video"}},
	}
	want := "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n&apos;&lt;1&gt;'><item><notification xmlns='urn:xmpp:push:0'>" +
		"<x xmlns='jabber:x:data' type='submit'>" +
		"<field var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>" +
		"<field var='message-count'><value>3</value></field>" +
		"<field var='last-message-sender'><value>juliet@example.org</value></field>" +
		"<field var='last-message-body'><value>a &lt; b</value></field></x>" +
		"<call xmlns='urn:xmppd:push:call:0' id='c&amp;1' from='juliet@example.org/balcony' media='audio video'/>" +
		"</notification></item></publish><publish-options><x xmlns='jabber:x:data' type='submit'/></publish-options></pubsub>"
	got := string(n.payload())
	if got != want {
		t.Errorf("payload\n got %s\nwant %s", got, want)
	}
	if err := xml.Unmarshal(n.payload(), new(struct{})); err != nil {
		t.Errorf("payload is not well-formed: %v", err)
	}
}

func TestDisables(t *testing.T) {
	for _, tc := range []struct {
		typ, cond string
		want      bool
	}{
		{"cancel", "item-not-found", true},
		{"auth", "not-authorized", true},
		{"auth", "forbidden", true},
		{"modify", "not-acceptable", true},
		{"cancel", "service-unavailable", true},
		{"wait", "item-not-found", false},
		{"wait", "resource-constraint", false},
		{"cancel", "remote-server-not-found", false},
		{"cancel", "remote-server-timeout", false},
		{"cancel", "internal-server-error", false},
		{"modify", "undefined-condition", false},
	} {
		if got := disables(tc.typ, tc.cond); got != tc.want {
			t.Errorf("disables(%s, %s) = %v", tc.typ, tc.cond, got)
		}
	}
}

func TestStanzaError(t *testing.T) {
	typ, cond := stanzaError(parse(t, "<iq type='error' id='1'><error type='cancel'><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>x</text>"+
		"<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"))
	if typ != "cancel" || cond != "item-not-found" {
		t.Errorf("stanzaError = %s, %s", typ, cond)
	}
}

func TestJWTSignatures(t *testing.T) {
	ec, rk := testKeys(t)
	jwt, err := signES256(ec, map[string]string{"alg": "ES256", "kid": "K"}, map[string]any{"iss": "T", "iat": 1})
	if err != nil {
		t.Fatal(err)
	}
	p := strings.Split(jwt, ".")
	sig, _ := b64.DecodeString(p[2])
	sum := sha256.Sum256([]byte(p[0] + "." + p[1]))
	if len(sig) != 64 || !ecdsa.Verify(&ec.PublicKey, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Error("ES256 signature does not verify")
	}
	if h, _ := b64.DecodeString(p[0]); string(h) != `{"alg":"ES256","kid":"K"}` {
		t.Errorf("header %s", h)
	}
	jwt, err = signRS256(rk, map[string]string{"alg": "RS256"}, map[string]any{"iss": "x"})
	if err != nil {
		t.Fatal(err)
	}
	p = strings.Split(jwt, ".")
	sig, _ = b64.DecodeString(p[2])
	sum = sha256.Sum256([]byte(p[0] + "." + p[1]))
	if err := rsa.VerifyPKCS1v15(&rk.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		t.Errorf("RS256: %v", err)
	}
	// Key parsing refuses the wrong kind of key.
	if _, err := parseRSAKey([]byte("not pem")); err == nil {
		t.Error("parsed garbage")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	c := DefaultConfig()
	if c.AppServer.On() {
		t.Error("the app server is on without credentials")
	}
	c.AppServer.APNs.KeyFile = "key.p8"
	c.AppServer.FCM.Endpoint = "http://fcm.example"
	c.AppServer.FCM.MessagePriority = "urgent"
	err := c.Validate()
	for _, want := range []string{"key-id is required", "team-id is required", "bundle-id is required", "fcm@endpoint", "message-priority"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to mention %q", err, want)
		}
	}
}

func TestCloseStopsHeldNotifications(t *testing.T) {
	m := &Module{cfg: Config{Throttle: time.Hour}, devs: map[string]map[regKey]*device{}, log: slog.New(slog.DiscardHandler)}
	m.accounts = newLanes("account", m.log, 1, &m.overflow)
	m.devices = newLanes("device", m.log, 1, &m.overflow)
	m.devices.close() // nothing may be published: the first notification is refused here
	reg := storage.PushRegistration{ID: 1, Owner: "bob@example.org", Service: "push.example.org", Node: "n"}
	m.notify(reg, event{digest: 1})
	m.notify(reg, event{digest: 2}) // held by the throttle
	d := m.devs[reg.Owner][keyOf(reg)]
	if d == nil || d.count != 2 || d.timer == nil {
		t.Fatalf("device state %+v", d)
	}
	m.Close()
	if d.timer.Stop() {
		t.Error("Close left the held notification's timer running")
	}
	m.notify(reg, event{digest: 3})
	if len(m.devs) != 0 {
		t.Error("notified after Close")
	}
}
