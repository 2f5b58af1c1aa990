package wire

import (
	"encoding/xml"
	"strings"
	"testing"
)

func TestChildren(t *testing.T) {
	st := mustParse(t, `<message xmlns:r='urn:xmpp:receipts' id='1'><![CDATA[<fake/>]]>text<body>hi<b/></body><r:request/>`+
		`<stanza-id xmlns='urn:xmpp:sid:0' by='a@b' id='x&amp;y'/><x xmlns="jabber:x:oob"><url/><y></y></x><r:received id='7'></r:received></message>`, NSClient)
	type c struct{ name, ns, raw string }
	want := []c{
		{"body", NSClient, "<body>hi<b/></body>"},
		{"request", "urn:xmpp:receipts", "<r:request/>"},
		{"stanza-id", "urn:xmpp:sid:0", "<stanza-id xmlns='urn:xmpp:sid:0' by='a@b' id='x&amp;y'/>"},
		{"x", "jabber:x:oob", `<x xmlns="jabber:x:oob"><url/><y></y></x>`},
		{"received", "urn:xmpp:receipts", "<r:received id='7'></r:received>"},
	}
	var got []c
	for ch := range st.Children() {
		got = append(got, c{ch.Name, ch.NS, string(ch.Raw)})
		if string(st.Raw[ch.Start:ch.Start+len(ch.Raw)]) != string(ch.Raw) {
			t.Errorf("Start %d does not locate %q", ch.Start, ch.Raw)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("Children = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("child %d = %q, want %q", i, got[i], want[i])
		}
	}
	if v, ok := st.ChildAttr("urn:xmpp:sid:0", "stanza-id", "id"); !ok || v != "x&y" {
		t.Errorf("ChildAttr(stanza-id, id) = %q, %v; want the unescaped x&y", v, ok)
	}
	if v, ok := st.ChildAttr("urn:xmpp:receipts", "received", "id"); !ok || v != "7" {
		t.Errorf("ChildAttr(received, id) = %q, %v", v, ok)
	}
	if _, ok := st.ChildAttr("urn:xmpp:sid:0", "stanza-id", "nope"); ok {
		t.Error("ChildAttr of a missing attribute found something")
	}
	if _, ok := st.ChildAttr("jabber:x:oob", "url", "x"); ok {
		t.Error("ChildAttr looked below the first level")
	}
	// Stopping early.
	n := 0
	for range st.Children() {
		n++
		break
	}
	if n != 1 {
		t.Errorf("break after one child ran %d times", n)
	}
	for _, raw := range []string{"<message/>", "<message></message>", "<message>text</message>"} {
		for ch := range mustParse(t, raw, NSClient).Children() {
			t.Errorf("%s has child %q", raw, ch.Raw)
		}
	}
	// A user-made Stanza with a broken Raw does not panic.
	for _, raw := range []string{"", "<", "<a", "<a b", "<a b='", "<a>", "<a><", "<a><b", "<a></", "<a><![CDATA[", "x", "<a><b/", "<a><b c='>"} {
		s := &Stanza{Raw: []byte(raw)}
		for range s.Children() {
		}
		s.RemoveChildren(func(Child) bool { return true })
		s.Standalone()
	}
}

func TestRemoveChildren(t *testing.T) {
	const sid = "urn:xmpp:sid:0"
	byIs := func(by string) func(Child) bool {
		return func(c Child) bool {
			v, _ := c.Attr("by")
			return c.Name == "stanza-id" && c.NS == sid && v == by
		}
	}
	for _, tc := range []struct {
		in   string
		by   string
		want string
		n    int
	}{
		{`<message><body>x</body><stanza-id xmlns='urn:xmpp:sid:0' by='me@x' id='1'/></message>`, "me@x",
			`<message><body>x</body></message>`, 1},
		{`<message><stanza-id xmlns='urn:xmpp:sid:0' by='me@x' id='1'></stanza-id><body>x</body> <stanza-id by='me@x' id='2' xmlns='urn:xmpp:sid:0'/><stanza-id xmlns='urn:xmpp:sid:0' by='room@x' id='3'/></message>`, "me@x",
			`<message><body>x</body> <stanza-id xmlns='urn:xmpp:sid:0' by='room@x' id='3'/></message>`, 2},
		// Wrong namespace, nested, or another 'by': kept.
		{`<message><stanza-id by='me@x'/><x><stanza-id xmlns='urn:xmpp:sid:0' by='me@x'/></x></message>`, "me@x",
			`<message><stanza-id by='me@x'/><x><stanza-id xmlns='urn:xmpp:sid:0' by='me@x'/></x></message>`, 0},
		// A prefix declared on the root.
		{`<message xmlns:s='urn:xmpp:sid:0'><s:stanza-id by='me@x'/></message>`, "me@x", `<message xmlns:s='urn:xmpp:sid:0'></message>`, 1},
	} {
		st := mustParse(t, tc.in, NSClient)
		old := string(st.Raw)
		n := st.RemoveChildren(byIs(tc.by))
		if n != tc.n || string(st.Raw) != tc.want {
			t.Errorf("RemoveChildren(%s) = %d, %s; want %d, %s", tc.in, n, st.Raw, tc.n, tc.want)
		}
		if n > 0 && old != tc.in {
			t.Error("the old Raw was modified")
		}
		if _, err := ParseElement(st.Raw, NSClient); err != nil {
			t.Errorf("%s does not parse: %v", st.Raw, err)
		}
	}
}

func TestStandalone(t *testing.T) {
	// From a c2s stream: the default namespace comes from the stream.
	st := mustParse(t, "<message to='a@b'><body>hi</body></message>", NSClient)
	if got := string(st.Standalone()); got != "<message xmlns='jabber:client' to='a@b'><body>hi</body></message>" {
		t.Errorf("Standalone = %s", got)
	}
	// Already declared (a WebSocket frame): unchanged.
	ws := "<message xmlns='jabber:client' to='a@b'/>"
	if got := string(mustParse(t, ws, NSClient).Standalone()); got != ws {
		t.Errorf("Standalone(declared) = %s", got)
	}
	// A stream-level prefix naming a top-level element that is not a
	// stanza (s2s dialback) is declared; unused ones are not. A stanza may
	// not use one at all.
	r := NewReader(strings.NewReader(s2sHeader+"<db:result to='b'>k</db:result><message><body/></message><message><db:x/></message>"), 0)
	if _, err := r.Header(); err != nil {
		t.Fatal(err)
	}
	st, _ = r.Next()
	got := st.Standalone()
	if string(got) != "<db:result xmlns='jabber:server' xmlns:db='jabber:server:dialback' to='b'>k</db:result>" {
		t.Errorf("Standalone(prefix from the stream) = %s", got)
	}
	var v struct {
		XMLName xml.Name `xml:"jabber:server:dialback result"`
		To      string   `xml:"to,attr"`
	}
	if err := xml.Unmarshal(got, &v); err != nil || v.To != "b" {
		t.Errorf("encoding/xml on %s: %v, %+v", got, err, v)
	}
	st, _ = r.Next()
	if got := string(st.Standalone()); got != "<message xmlns='jabber:server'><body/></message>" {
		t.Errorf("Standalone(no prefix used) = %s", got)
	}
	if _, err := r.Next(); condition(err) != "bad-namespace-prefix" {
		t.Errorf("stanza using a stream-level prefix: %v", err)
	}
}

func BenchmarkRemoveChildren(b *testing.B) {
	st := mustParse(b, `<message from='romeo@montague.example/orchard' to='juliet@capulet.example' type='chat' id='5f3a'><body>But soft, what light through yonder window breaks?</body><origin-id xmlns='urn:xmpp:sid:0' id='5f3a'/><request xmlns='urn:xmpp:receipts'/><stanza-id xmlns='urn:xmpp:sid:0' by='juliet@capulet.example' id='spoof'/></message>`, NSClient)
	raw := st.Raw
	for b.Loop() {
		st.Raw = raw
		st.RemoveChildren(func(c Child) bool { return c.Name == "stanza-id" && c.NS == "urn:xmpp:sid:0" })
	}
}
