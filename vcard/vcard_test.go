package vcard

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"github.com/xmppd/xmppd/router/routertest"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/wire"
)

const (
	alice = "alice@example.com"
	bob   = "bob@example.com"
)

var (
	img     = []byte("\x89PNG\r\n\x1a\nnot really a png, but bytes")
	imgHash = func() string { s := sha1.Sum(img); return hex.EncodeToString(s[:]) }()
	// The base64 wrapped at 20 columns, as RFC 2045 allows.
	imgB64 = func() string {
		b := base64.StdEncoding.EncodeToString(img)
		var out []string
		for len(b) > 20 {
			out, b = append(out, b[:20]), b[20:]
		}
		return strings.Join(append(out, b), "\n")
	}()
	cardWithPhoto = "<vCard xmlns='vcard-temp'><FN>Alice</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>" + imgB64 + "</BINVAL></PHOTO></vCard>"
)

func TestPhotoHash(t *testing.T) {
	for _, c := range []struct{ card, want string }{
		{cardWithPhoto, imgHash},
		{"<vCard xmlns='vcard-temp'><PHOTO><BINVAL>" + strings.TrimRight(base64.StdEncoding.EncodeToString(img), "=") + "</BINVAL></PHOTO></vCard>", imgHash},
		{"<vCard xmlns='vcard-temp'><FN>x</FN></vCard>", ""},
		{"<vCard xmlns='vcard-temp'><PHOTO><EXTVAL>http://example.com/a.png</EXTVAL></PHOTO></vCard>", ""},
		{"<vCard xmlns='vcard-temp'><PHOTO><BINVAL>!!not base64!!</BINVAL></PHOTO></vCard>", ""},
		{"<vCard xmlns='vcard-temp'><PHOTO><BINVAL></BINVAL></PHOTO></vCard>", ""},
	} {
		if got := PhotoHash([]byte(c.card)); got != c.want {
			t.Errorf("PhotoHash(%.60s…) = %q, want %q", c.card, got, c.want)
		}
	}
}

func TestGetSet(t *testing.T) {
	e := newEnv(t, Options{MaxSize: 2048}, alice, bob)
	a := e.bind(alice + "/phone")
	b := e.bind(bob + "/laptop")

	res := e.iq(a, `<iq type='get' id='g1'><vCard xmlns='vcard-temp'/></iq>`, "g1")
	if res.Type != "result" || !strings.Contains(string(res.Raw), "<vCard xmlns='vcard-temp'/>") {
		t.Errorf("own vCard, none stored: %s", res.Raw)
	}
	res = e.iq(b, `<iq type='get' id='g2' to='alice@example.com'><vCard xmlns='vcard-temp'/></iq>`, "g2")
	if res.Type != "error" || routertest.Condition(res) != "service-unavailable" {
		t.Errorf("another's vCard, none stored: %s", res.Raw)
	}
	res = e.iq(b, `<iq type='get' id='g3' to='nobody@example.com'><vCard xmlns='vcard-temp'/></iq>`, "g3")
	if res.Type != "error" || routertest.Condition(res) != "service-unavailable" {
		t.Errorf("no such account: %s", res.Raw)
	}

	// A prefixed vCard comes back in the plain form.
	res = e.iq(a, `<iq type='set' id='s1' xmlns:v='vcard-temp'><v:vCard><v:FN>Alice &amp; co</v:FN><v:NICKNAME>al</v:NICKNAME></v:vCard></iq>`, "s1")
	if res.Type != "result" {
		t.Fatalf("set: %s", res.Raw)
	}
	want := "<vCard xmlns='vcard-temp'><FN>Alice &amp; co</FN><NICKNAME>al</NICKNAME></vCard>"
	for _, c := range []struct {
		s   *fakeSession
		raw string
	}{
		{a, `<iq type='get' id='g4'><vCard xmlns='vcard-temp'/></iq>`},
		{b, `<iq type='get' id='g4' to='alice@example.com'><vCard xmlns='vcard-temp'/></iq>`},
	} {
		res := e.iq(c.s, c.raw, "g4")
		if res.Type != "result" || !strings.Contains(string(res.Raw), want) || res.From != alice && c.s == b {
			t.Errorf("get by %s: %s", c.s.JID(), res.Raw)
		}
	}

	for _, c := range []struct{ raw, cond string }{
		{`<iq type='set' id='x' to='alice@example.com'><vCard xmlns='vcard-temp'><FN>Mallory</FN></vCard></iq>`, "forbidden"},
		{`<iq type='set' id='x'><vCard xmlns='vcard-temp'><DESC>` + strings.Repeat("a", 2048) + `</DESC></vCard></iq>`, "not-acceptable"},
		{`<iq type='set' id='x'><vCard xmlns='vcard-temp'><DESC>` + strings.Repeat("a", 8000) + `</DESC></vCard></iq>`, "not-acceptable"},
		{`<iq type='set' id='x'><card xmlns='vcard-temp'/></iq>`, "bad-request"},
	} {
		s := a
		if strings.Contains(c.raw, "Mallory") {
			s = b
		}
		if res := e.iq(s, c.raw, "x"); res.Type != "error" || routertest.Condition(res) != c.cond {
			t.Errorf("%.80s: %s, want %s", c.raw, res.Raw, c.cond)
		}
	}
	if res := e.iq(b, `<iq type='get' id='g5' to='alice@example.com'><vCard xmlns='vcard-temp'/></iq>`, "g5"); !strings.Contains(string(res.Raw), want) {
		t.Errorf("refused sets changed the vCard: %s", res.Raw)
	}
}

// update returns the vcard-temp:x:update element of a presence.
func update(st *wire.Stanza) string {
	raw := string(st.Raw)
	i := strings.Index(raw, "<x xmlns='"+NSUpdate+"'")
	if i < 0 {
		return ""
	}
	j := strings.Index(raw[i:], "</x>")
	k := strings.Index(raw[i:], "/>")
	if j < 0 || (k >= 0 && k < j && !strings.Contains(raw[i:i+k], ">")) {
		return raw[i : i+k+2]
	}
	return raw[i : i+j+4]
}

func TestPresenceHash(t *testing.T) {
	e := newEnv(t, Options{}, alice, bob)
	e.mutual(alice, bob)
	b := e.login(bob + "/laptop")
	a := e.bind(alice + "/phone")
	b.Take(t)

	got := func(raw string) string {
		t.Helper()
		e.send(a, raw)
		ps := routertest.OfKind(b.Take(t), wire.KindPresence, "")
		if len(ps) != 1 {
			t.Fatalf("bob got %s", routertest.Describe(ps))
		}
		return update(ps[0])
	}
	// No vCard stored: "not ready"; a client's element is replaced by it.
	if u := got(`<presence/>`); u != "<x xmlns='vcard-temp:x:update'/>" {
		t.Errorf("no vCard: %q", u)
	}
	if u := got(`<presence><x xmlns='vcard-temp:x:update'><photo>0123</photo></x></presence>`); u != "<x xmlns='vcard-temp:x:update'/>" {
		t.Errorf("no vCard, client hash: %q", u)
	}
	a.Take(t)

	// Setting a vCard with a photo re-broadcasts presence with the hash.
	if res := e.iq(a, `<iq type='set' id='s1'><vCard xmlns='vcard-temp'>`+cardWithPhoto[len("<vCard xmlns='vcard-temp'>"):]+`</iq>`, "s1"); res.Type != "result" {
		t.Fatalf("set: %s", res.Raw)
	}
	ps := routertest.OfKind(b.Take(t), wire.KindPresence, "")
	if len(ps) != 1 || update(ps[0]) != "<x xmlns='vcard-temp:x:update'><photo>"+imgHash+"</photo></x>" || ps[0].From != alice+"/phone" {
		t.Fatalf("after the vCard set bob got %s", routertest.Describe(ps))
	}
	// Setting the same photo again does not.
	e.iq(a, `<iq type='set' id='s2'><vCard xmlns='vcard-temp'>`+cardWithPhoto[len("<vCard xmlns='vcard-temp'>"):]+`</iq>`, "s2")
	if ps := routertest.OfKind(b.Take(t), wire.KindPresence, ""); len(ps) != 0 {
		t.Errorf("unchanged photo re-broadcast: %s", routertest.Describe(ps))
	}

	for _, c := range []struct{ raw, want string }{
		{`<presence><show>away</show></presence>`, "<x xmlns='vcard-temp:x:update'><photo>" + imgHash + "</photo></x>"},
		// A stale hash and a "not ready" element are replaced.
		{`<presence><x xmlns='vcard-temp:x:update'><photo>0123</photo></x></presence>`, "<x xmlns='vcard-temp:x:update'><photo>" + imgHash + "</photo></x>"},
		{`<presence><x xmlns='vcard-temp:x:update'/><status>s</status></presence>`, "<x xmlns='vcard-temp:x:update'><photo>" + imgHash + "</photo></x>"},
		// An empty photo, the client's "no avatar", is kept (XEP-0398 §4).
		{`<presence><x xmlns='vcard-temp:x:update'><photo/></x></presence>`, "<x xmlns='vcard-temp:x:update'><photo/></x>"},
	} {
		if u := got(c.raw); u != c.want {
			t.Errorf("%s: bob saw %q, want %q", c.raw, u, c.want)
		}
	}
	e.send(a, `<presence><x xmlns='vcard-temp:x:update'><photo>0123</photo></x><x xmlns='vcard-temp:x:update'/></presence>`)
	if ps := routertest.OfKind(b.Take(t), wire.KindPresence, ""); len(ps) != 1 || strings.Count(string(ps[0].Raw), NSUpdate) != 1 {
		t.Errorf("two client elements: %s", routertest.Describe(ps))
	}

	// Directed presence gets it too; unavailable does not.
	e.send(a, `<presence to='bob@example.com/laptop'/>`)
	if ps := routertest.OfKind(b.Take(t), wire.KindPresence, ""); len(ps) != 1 || !strings.Contains(update(ps[0]), imgHash) {
		t.Errorf("directed presence: %s", routertest.Describe(ps))
	}
	e.send(a, `<presence type='unavailable'/>`)
	if ps := routertest.OfKind(b.Take(t), wire.KindPresence, "unavailable"); len(ps) != 1 || update(ps[0]) != "" {
		t.Errorf("unavailable presence: %s", routertest.Describe(ps))
	}

	// A vCard without a photo: <photo/>.
	e.send(a, `<presence/>`)
	b.Take(t)
	e.iq(a, `<iq type='set' id='s3'><vCard xmlns='vcard-temp'><FN>Alice</FN></vCard></iq>`, "s3")
	if ps := routertest.OfKind(b.Take(t), wire.KindPresence, ""); len(ps) != 1 || update(ps[0]) != "<x xmlns='vcard-temp:x:update'><photo/></x>" {
		t.Errorf("photo removed: %s", routertest.Describe(ps))
	}
}
