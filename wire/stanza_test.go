package wire

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math/rand"
	"strings"
	"testing"
	"testing/iotest"
)

func mustParse(t testing.TB, s, ns string) *Stanza {
	t.Helper()
	st, err := ParseElement([]byte(s), ns)
	if err != nil {
		t.Fatalf("ParseElement(%q): %v", s, err)
	}
	return st
}

func TestParseElement(t *testing.T) {
	tests := []struct {
		in, ns string
		want   env
		cond   string
	}{
		{"<message to='a@b'><body>x</body></message>", NSClient, env{Kind: KindMessage, Name: "message", NS: NSClient, To: "a@b", PayloadName: "body", PayloadNS: NSClient, Raw: "<message to='a@b'><body>x</body></message>"}, ""},
		{"\n <presence/>\r\n", NSServer, env{Kind: KindPresence, Name: "presence", NS: NSServer, Raw: "<presence/>"}, ""},
		{"<presence/>", "", env{Kind: KindOther, Name: "presence", Raw: "<presence/>"}, ""},
		{"<iq/>", "urn:other", env{Kind: KindIQ, Name: "iq", NS: "urn:other", Raw: "<iq/>"}, ""},
		{"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>", NSClient, env{Kind: KindOther, Name: "close", NS: NSFraming, Raw: "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"}, ""},
		{"", NSClient, env{}, "not-well-formed"},
		{"  ", NSClient, env{}, "not-well-formed"},
		{"<presence/><presence/>", NSClient, env{}, "not-well-formed"},
		{"<presence/>x", NSClient, env{}, "not-well-formed"},
		{"<presence>", NSClient, env{}, "not-well-formed"},
		{"<message><body>\xe2\x98", NSClient, env{}, "not-well-formed"},
		{"text", NSClient, env{}, "not-well-formed"},
		{"</stream:stream>", NSClient, env{}, "not-well-formed"},
		{"<?xml version='1.0'?><presence/>", NSClient, env{}, "restricted-xml"},
		{"<stream:features/>", NSClient, env{}, "bad-namespace-prefix"},
	}
	for _, tt := range tests {
		st, err := ParseElement([]byte(tt.in), tt.ns)
		if condition(err) != tt.cond {
			t.Errorf("%q: error %v, want %q", tt.in, err, tt.cond)
			continue
		}
		if err == nil && envOf(st) != tt.want {
			t.Errorf("%q:\n got %+v\nwant %+v", tt.in, envOf(st), tt.want)
		}
	}
	// Raw is a copy: changing the input does not change it.
	in := []byte("<presence/>")
	st, _ := ParseElement(in, NSClient)
	in[1] = 'X'
	if string(st.Raw) != "<presence/>" {
		t.Error("Raw shares memory with the input")
	}
}

func TestSetAddrs(t *testing.T) {
	tests := []struct {
		in, from, to, want string
	}{
		{"<message/>", "a@b/c", "d@e", "<message from='a@b/c' to='d@e'/>"},
		{"<message />", "a@b/c", "", "<message from='a@b/c' />"},
		{"<message to='x' from='y' id='1'><body/></message>", "a", "b", "<message id='1' from='a' to='b'><body/></message>"},
		{"<message id='1' to=\"x\"><body to='keep'/></message>", "", "", "<message id='1'><body to='keep'/></message>"},
		{"<iq\n type='get'\n to='x'\n>", "", "", "<iq\n type='get'\n>"},
		{"<presence foo:to='k' xmlns:foo='urn:f'/>", "a&b", "c'd<", "<presence foo:to='k' xmlns:foo='urn:f' from='a&amp;b' to='c&apos;d&lt;'/>"},
	}
	for _, tt := range tests {
		ns := NSClient
		in := tt.in
		if strings.HasSuffix(in, ">") && !strings.HasSuffix(in, "/>") && !strings.Contains(in, "</") {
			in += "</iq>"
			tt.want += "</iq>"
		}
		st := mustParse(t, in, ns)
		old := string(st.Raw)
		rawBefore := st.Raw
		st.SetAddrs(tt.from, tt.to)
		if string(st.Raw) != tt.want {
			t.Errorf("SetAddrs(%q, %q) on %q:\n got %s\nwant %s", tt.from, tt.to, in, st.Raw, tt.want)
		}
		if string(rawBefore) != old {
			t.Errorf("the old Raw was modified")
		}
		if st.From != tt.from || st.To != tt.to {
			t.Errorf("fields %q %q", st.From, st.To)
		}
		again := mustParse(t, string(st.Raw), ns)
		if again.From != tt.from || again.To != tt.to || again.ID != st.ID || again.Type != st.Type {
			t.Errorf("re-parsed %+v", envOf(again))
		}
	}
}

func TestSetAddrsLang(t *testing.T) {
	tests := []struct {
		in, lang, want, wantLang string
	}{
		{"<message to='x'><body>hallo</body></message>", "de", "<message from='a@b/c' to='d@e' xml:lang='de'><body>hallo</body></message>", "de"},
		{"<presence/>", "de", "<presence from='a@b/c' to='d@e' xml:lang='de'/>", "de"},
		{"<message xml:lang='fr'><body/></message>", "de", "<message xml:lang='fr' from='a@b/c' to='d@e'><body/></message>", "fr"},
		{"<message xml:lang=''><body/></message>", "de", "<message xml:lang='' from='a@b/c' to='d@e'><body/></message>", ""},
		{"<message><body xml:lang='fr'/></message>", "de", "<message from='a@b/c' to='d@e' xml:lang='de'><body xml:lang='fr'/></message>", "de"},
		{"<message/>", "", "<message from='a@b/c' to='d@e'/>", ""},
	}
	for _, tt := range tests {
		st := mustParse(t, tt.in, NSClient)
		st.SetAddrsLang("a@b/c", "d@e", tt.lang)
		if string(st.Raw) != tt.want || st.Lang != tt.wantLang {
			t.Errorf("SetAddrsLang(%q) on %s:\n got %s (Lang %q)\nwant %s (Lang %q)", tt.lang, tt.in, st.Raw, st.Lang, tt.want, tt.wantLang)
		}
		again := mustParse(t, string(st.Raw), NSClient)
		if again.Lang != tt.wantLang || again.From != "a@b/c" || again.To != "d@e" {
			t.Errorf("re-parsed %+v", envOf(again))
		}
	}
	st := mustParse(t, "<message to='x'><body>hallo</body></message>", NSClient)
	if n := testing.AllocsPerRun(100, func() { st.SetAddrsLang("a@b/c", "d@e", "de") }); n != 1 {
		t.Errorf("%v allocations, want 1", n)
	}
}

func TestStreamLang(t *testing.T) {
	for _, tt := range []struct{ header, want string }{
		{c2sHeader, ""},
		{c2sHeader[:len(c2sHeader)-1] + " xml:lang='de-CH'>", "de-CH"},
		{`<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0' xml:lang='pt_BR'/>`, "pt_BR"},
		{c2sHeader[:len(c2sHeader)-1] + " xml:lang='de&apos; evil=&apos;x'>", ""},
		{c2sHeader[:len(c2sHeader)-1] + " xml:lang='" + strings.Repeat("a", maxLang+1) + "'>", ""},
	} {
		r := NewReader(strings.NewReader(tt.header+"<message/>"), 0)
		if _, err := r.Header(); err != nil {
			t.Fatal(err)
		}
		st, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if got := st.StreamLang(); got != tt.want {
			t.Errorf("%s: StreamLang %q, want %q", tt.header, got, tt.want)
		}
	}
	if got := mustParse(t, "<message/>", NSClient).StreamLang(); got != "" {
		t.Errorf("ParseElement: StreamLang %q", got)
	}
}

func TestHasChild(t *testing.T) {
	st := mustParse(t, `<message xmlns:r='urn:xmpp:receipts'><![CDATA[<fake xmlns='urn:fake'/>]]><body>hi<b/></body><r:request/><x xmlns='jabber:x:oob'><url/></x><received xmlns="urn:xmpp:chat-markers:0"/><fake/></message>`, NSClient)
	tests := []struct {
		ns, name string
		want     bool
	}{
		{NSClient, "body", true},
		{"urn:xmpp:receipts", "request", true},
		{"jabber:x:oob", "x", true},
		{"urn:xmpp:chat-markers:0", "received", true},
		{NSClient, "fake", true},
		{"urn:fake", "fake", false}, // in CDATA
		{NSClient, "b", false},      // not first level
		{"jabber:x:oob", "url", false},
		{NSClient, "request", false},
		{"urn:xmpp:receipts", "body", false},
		{"", "body", false},
	}
	for _, tt := range tests {
		if got := st.HasChild(tt.ns, tt.name); got != tt.want {
			t.Errorf("HasChild(%q, %q) = %v", tt.ns, tt.name, got)
		}
	}
	if mustParse(t, "<presence/>", NSClient).HasChild(NSClient, "presence") {
		t.Error("empty element has children")
	}
	// A stanza's child cannot use a stream-level prefix: a recipient's
	// stream never declared it.
	_, got, err := readStream(strings.NewReader(s2sHeader+"<message><db:x/></message>"), 0)
	if condition(err) != "bad-namespace-prefix" || len(got) != 0 {
		t.Fatalf("stream-level prefix in a stanza: %v, %d elements", err, len(got))
	}
	// a user-made Stanza with a broken Raw does not panic
	for _, raw := range []string{"", "<", "<a", "<a b", "<a b='", "<a>", "<a><", "<a><b", "<a></", "<a><![CDATA[", "x"} {
		(&Stanza{Raw: []byte(raw)}).HasChild("", "b")
		s := &Stanza{Raw: []byte(raw)}
		s.SetAddrs("a", "b")
		ErrorReply(&Stanza{Raw: []byte(raw), Name: "message"}, "cancel", "gone", "")
	}
}

type chatMessage struct {
	XMLName xml.Name `xml:"jabber:client message"`
	To      string   `xml:"to,attr"`
	Type    string   `xml:"type,attr"`
	Lang    string   `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
	Body    string   `xml:"jabber:client body"`
	Active  *struct {
		XMLName xml.Name `xml:"http://jabber.org/protocol/chatstates active"`
	}
}

func TestDecode(t *testing.T) {
	r := NewReader(strings.NewReader(c2sHeader+
		"<message to='a@b' type='chat' xml:lang='en'><body>hi &amp; bye</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>"+
		"<message xmlns='jabber:server'><body>x</body></message>"), 0)
	if _, err := r.Header(); err != nil {
		t.Fatal(err)
	}
	st, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	var m chatMessage
	if err := st.Decode(&m); err != nil {
		t.Fatal(err)
	}
	if m.XMLName.Space != NSClient || m.To != "a@b" || m.Type != "chat" || m.Body != "hi & bye" || m.Active == nil || m.Lang != "en" {
		t.Errorf("decoded %+v", m)
	}
	// a message in another namespace does not decode into it
	st, _ = r.Next()
	if err := st.Decode(&m); err == nil {
		t.Error("jabber:server message decoded as jabber:client")
	}

	// stream-level prefix (s2s dialback)
	r = NewReader(strings.NewReader(s2sHeader+"<db:result from='a.example' to='b.example' type='valid'/>"), 0)
	r.Header()
	st, err = r.Next()
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		XMLName xml.Name `xml:"jabber:server:dialback result"`
		Type    string   `xml:"type,attr"`
	}
	if err := st.Decode(&res); err != nil || res.Type != "valid" {
		t.Fatalf("%v %+v", err, res)
	}
	// ParseElement with a default namespace
	st = mustParse(t, "<iq type='result' id='1'><query xmlns='jabber:iq:roster'><item jid='x@y'/></query></iq>", NSClient)
	var iq struct {
		XMLName xml.Name `xml:"jabber:client iq"`
		Query   struct {
			XMLName xml.Name `xml:"jabber:iq:roster query"`
			Items   []struct {
				JID string `xml:"jid,attr"`
			} `xml:"item"`
		}
	}
	if err := st.Decode(&iq); err != nil || len(iq.Query.Items) != 1 || iq.Query.Items[0].JID != "x@y" {
		t.Fatalf("%v %+v", err, iq)
	}
}

func TestElement(t *testing.T) {
	st := mustParse(t, "<message to='a@b'><body>hi</body><x xmlns='jabber:x:data'><field/></x></message>", NSClient)
	el, err := st.Element()
	if err != nil {
		t.Fatal(err)
	}
	if el.Tag != "message" || el.NamespaceURI() != NSClient || el.SelectAttrValue("to", "") != "a@b" {
		t.Errorf("root %s %q", el.Tag, el.NamespaceURI())
	}
	if b := el.SelectElement("body"); b == nil || b.NamespaceURI() != NSClient || b.Text() != "hi" {
		t.Errorf("body %+v", b)
	}
	if f := el.FindElement("x/field"); f == nil || f.NamespaceURI() != "jabber:x:data" {
		t.Errorf("field %+v", f)
	}

	r := NewReader(strings.NewReader(s2sHeader+"<db:result from='a' to='b'><x/></db:result>"), 0)
	r.Header()
	st, _ = r.Next()
	el, err = st.Element()
	if err != nil {
		t.Fatal(err)
	}
	if el.NamespaceURI() != "jabber:server:dialback" || el.SelectElement("x").NamespaceURI() != NSServer {
		t.Errorf("%q %q", el.NamespaceURI(), el.SelectElement("x").NamespaceURI())
	}
	if _, err := (&Stanza{Raw: []byte("<a>")}).Element(); err == nil {
		t.Error("broken Raw parsed")
	}
}

func TestEscape(t *testing.T) {
	tests := []struct{ in, text, attr string }{
		{"plain", "plain", "plain"},
		{"<a & 'b' \"c\">", "&lt;a &amp; 'b' \"c\"&gt;", "&lt;a &amp; &apos;b&apos; &quot;c&quot;&gt;"},
		{"l1\nl2\tx\ry", "l1\nl2\tx&#xD;y", "l1&#xA;l2&#x9;x&#xD;y"},
		{"nul\x00 bell\x07 ok\x7f", "nul\uFFFD bell\uFFFD ok\x7f", "nul\uFFFD bell\uFFFD ok\x7f"},
		{"bad\xffutf8\xef\xbf\xbe", "bad\uFFFDutf8\uFFFD", "bad\uFFFDutf8\uFFFD"},
		{"é☃😀", "é☃😀", "é☃😀"},
		{"]]>", "]]&gt;", "]]&gt;"},
	}
	for _, tt := range tests {
		if got := string(AppendEscapedText([]byte("x"), tt.in)); got != "x"+tt.text {
			t.Errorf("text %q: %q", tt.in, got)
		}
		if got := string(AppendEscapedAttr(nil, tt.in)); got != tt.attr {
			t.Errorf("attr %q: %q", tt.in, got)
		}
		// round trip through the reader
		doc := "<m a='" + string(AppendEscapedAttr(nil, tt.in)) + "'>" + string(AppendEscapedText(nil, tt.in)) + "</m>"
		st, err := ParseElement([]byte(doc), "")
		if err != nil {
			t.Errorf("%q: %v", doc, err)
			continue
		}
		if want := strings.ToValidUTF8(tt.in, "\uFFFD"); !strings.ContainsRune(tt.in, 0) && !strings.ContainsRune(tt.in, 7) && !strings.Contains(tt.in, "\xef\xbf\xbe") {
			var v struct {
				A    string `xml:"a,attr"`
				Text string `xml:",chardata"`
			}
			if err := st.Decode(&v); err != nil || v.A != want {
				t.Errorf("%q: decoded %q %v", tt.in, v.A, err)
			}
		}
	}
}

func TestStreamHeader(t *testing.T) {
	for _, h := range []Header{
		{To: "juliet@example.com", From: "example.com", ID: "abc'1", Version: "1.0", Lang: "en", NS: NSClient},
		{From: "b.example", ID: "x", NS: NSServer, Version: "1.0"},
		{From: "example.com", ID: "ws1", Version: "1.0", Lang: "en", NS: NSClient, Framed: true},
	} {
		b := StreamHeader(h)
		r := NewReader(bytes.NewReader(b), 0)
		got, err := r.Header()
		if err != nil || got != h {
			t.Errorf("%s:\n got %+v %v\nwant %+v", b, got, err, h)
		}
	}
	b := string(StreamHeader(Header{}))
	if b != "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>" {
		t.Errorf("default header %s", b)
	}
	b = string(StreamHeader(Header{Framed: true, ID: "1", From: "example.com"}))
	if b != "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' id='1' from='example.com' version='1.0'/>" {
		t.Errorf("framed header %s", b)
	}
}

func TestStreamErrorAndClose(t *testing.T) {
	b := StreamError("not-well-formed", "bad <xml> & stuff")
	st, err := ParseElement(b, NSClient)
	if err != nil {
		t.Fatal(err)
	}
	if st.Name != "error" || st.NS != NSStream || st.PayloadName != "not-well-formed" || st.PayloadNS != NSStreams || !st.HasChild(NSStreams, "text") {
		t.Errorf("%s: %+v", b, envOf(st))
	}
	if string(StreamError("conflict", "")) != "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>" {
		t.Errorf("%s", StreamError("conflict", ""))
	}
	// a whole server stream reads back
	var out []byte
	out = append(out, StreamHeader(Header{ID: "1", NS: NSClient})...)
	out = append(out, StreamError("host-unknown", "")...)
	out = append(out, StreamClose(false)...)
	_, got, err := readStream(bytes.NewReader(out), 0)
	if err != ErrStreamEnd || len(got) != 1 || got[0].PayloadName != "host-unknown" {
		t.Errorf("%s: %v %+v", out, err, got)
	}
	out = append(StreamHeader(Header{ID: "1", Framed: true}), StreamClose(true)...)
	_, got, err = readStream(bytes.NewReader(out), 0)
	if err != ErrStreamEnd || len(got) != 0 {
		t.Errorf("%s: %v %+v", out, err, got)
	}
}

func TestErrorReply(t *testing.T) {
	tests := []struct {
		in, typ, cond, text, want string
	}{
		{"<iq from='a@b/c' to='d@e' id='i1' type='get'><query xmlns='jabber:iq:version'/></iq>", "cancel", "service-unavailable", "",
			"<iq from='d@e' to='a@b/c' id='i1' type='error'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"},
		{"<message from='a@b/c' to='d@e' id='m&amp;1' type='chat' xmlns:x='urn:x'><body>hi</body><x:y/></message>", "wait", "resource-constraint", "too <many>",
			"<message from='d@e' to='a@b/c' id='m&amp;1' type='error' xmlns:x='urn:x'><body>hi</body><x:y/><error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>too &lt;many&gt;</text></error></message>"},
		{"<presence to='room@muc/nick'/>", "cancel", "conflict", "",
			"<presence from='room@muc/nick' type='error'><error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"},
		{"<iq xmlns='jabber:client' xmlns:p='urn:p' type='set' id='1'><p:q/></iq>", "auth", "forbidden", "",
			"<iq id='1' type='error' xmlns='jabber:client'><error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"},
		{"<message xmlns='jabber:client' to='x'><body>b</body></message >", "cancel", "item-not-found", "",
			"<message from='x' type='error' xmlns='jabber:client'><body>b</body><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"},
	}
	for _, tt := range tests {
		st := mustParse(t, tt.in, NSClient)
		got := ErrorReply(st, tt.typ, tt.cond, tt.text)
		if string(got) != tt.want {
			t.Errorf("ErrorReply(%s):\n got %s\nwant %s", tt.in, got, tt.want)
			continue
		}
		rep := mustParse(t, string(got), NSClient)
		if rep.Kind != st.Kind || rep.Type != "error" || rep.ID != st.ID || rep.To != st.From || rep.From != st.To || !rep.HasChild(NSClient, "error") {
			t.Errorf("reply %+v", envOf(rep))
		}
	}
	if ErrorReply(mustParse(t, "<message type='error'/>", NSClient), "cancel", "x", "") != nil {
		t.Error("answered an error with an error")
	}
}

func FuzzParseElement(f *testing.F) {
	for _, s := range []string{
		"<message to='a@b' from='c@d/e' id='1' type='chat'><body>hi &amp; &#x1F600;</body></message>",
		"<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>",
		"<presence xmlns:x='urn:x'><x:c/><![CDATA[<a>]]></presence>",
		"<a b='&lt;' c=\"'\">\t</a>",
		"<message xmlns:a='urn:a'><a:x><b:y xmlns:b='urn:b' a:z='1' xml:lang='en'><b:q/></b:y><c:w/></a:x></message>",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseElement(data, NSClient)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if err := xmlCheck(st.Raw); err != nil {
			t.Fatalf("encoding/xml refuses %q: %v", st.Raw, err)
		}
		if err := nsStandalone(st.Raw, false); err != nil {
			t.Fatalf("%q is not namespace-well-formed standing alone: %v", st.Raw, err)
		}
		checkNames(t, st)
		st.HasChild(NSClient, "body")
		st.Decode(new(struct{}))
		id, typ := st.ID, st.Type
		st.SetAddrs("a@b/c'<&", "d@e")
		again, err := ParseElement(st.Raw, NSClient)
		if err != nil {
			t.Fatalf("after SetAddrs %q: %v", st.Raw, err)
		}
		if again.From != "a@b/c'<&" || again.To != "d@e" || again.ID != id || again.Type != typ || again.Name != st.Name || again.NS != st.NS {
			t.Fatalf("after SetAddrs: %+v", envOf(again))
		}
		if rep := ErrorReply(st, "cancel", "bad-request", "x"); rep != nil {
			if _, err := ParseElement(rep, NSClient); err != nil {
				t.Fatalf("ErrorReply %q: %v", rep, err)
			}
		}
	})
}

func FuzzReader(f *testing.F) {
	for _, c := range nextCases {
		f.Add([]byte(c.header + c.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h1, got1, err1 := readStream(bytes.NewReader(data), 1024)
		h2, got2, err2 := readStream(iotestOneByte(data), 1024)
		h3, got3, err3 := readStream(&chunkReader{data: data, rnd: rand.New(rand.NewSource(int64(len(data)))), max: 17}, 1024)
		if h1 != h2 || condition(err1) != condition(err2) || len(got1) != len(got2) {
			t.Fatalf("whole and byte-by-byte reads differ: %v / %v, %d / %d", err1, err2, len(got1), len(got2))
		}
		if h1 != h3 || condition(err1) != condition(err3) || len(got1) != len(got3) {
			t.Fatalf("whole and chunked reads differ: %v / %v, %d / %d", err1, err3, len(got1), len(got3))
		}
		r := NewReader(bytes.NewReader(data), 1024)
		if _, err := r.Header(); err == nil {
			for {
				st, err := r.Next()
				if err != nil {
					break
				}
				checkNames(t, st)
			}
		}
		for i := range got1 {
			if got1[i] != got2[i] || got1[i] != got3[i] {
				t.Fatalf("element %d differs", i)
			}
			if len(got1[i].Raw) > 1024 {
				t.Fatalf("element over the limit")
			}
			if err := xmlCheck([]byte(got1[i].Raw)); err != nil {
				t.Fatalf("encoding/xml refuses %q: %v", got1[i].Raw, err)
			}
			if err := nsStandalone([]byte(got1[i].Raw), got1[i].Kind == KindOther); err != nil {
				t.Fatalf("%q is not namespace-well-formed standing alone: %v", got1[i].Raw, err)
			}
		}
	})
}

// nsStandalone checks, with encoding/xml's tokenizer and its own scoping,
// that b is namespace-well-formed standing alone: every prefix (on
// elements and attributes, at every depth) is declared inside b, no
// reserved prefix or namespace is misbound, and no element has two
// attributes with the same expanded name. The element can then be written
// on any stream, stored or archived without the declarations of the stream
// it came from. With rootFromStream, the root's own name may use an
// undeclared prefix (a nonza such as db:result, never forwarded).
func nsStandalone(b []byte, rootFromStream bool) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	scopes := []map[string]string{{"xml": NSXML}}
	resolve := func(p string) (string, bool) {
		for i := len(scopes) - 1; i >= 0; i-- {
			if u, ok := scopes[i][p]; ok {
				return u, true
			}
		}
		return "", false
	}
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch e := tok.(type) {
		case xml.StartElement:
			decl := map[string]string{}
			for _, a := range e.Attr {
				switch {
				case a.Name.Space == "xmlns":
					if (a.Name.Local == "xml") != (a.Value == NSXML) || a.Value == "http://www.w3.org/2000/xmlns/" {
						return fmt.Errorf("reserved binding %s=%q", a.Name.Local, a.Value)
					}
					decl[a.Name.Local] = a.Value
				case a.Name.Space == "" && a.Name.Local == "xmlns":
					if a.Value == NSXML || a.Value == "http://www.w3.org/2000/xmlns/" {
						return fmt.Errorf("reserved default namespace %q", a.Value)
					}
				}
			}
			scopes = append(scopes, decl)
			if p := e.Name.Space; p != "" {
				if _, ok := resolve(p); !ok && !(rootFromStream && len(scopes) == 2) {
					return fmt.Errorf("element prefix %q undeclared", p)
				}
			}
			seen := map[xml.Name]bool{}
			for _, a := range e.Attr {
				p := a.Name.Space
				if p == "" || p == "xmlns" {
					continue
				}
				u, ok := resolve(p)
				if !ok {
					return fmt.Errorf("attribute prefix %q undeclared", p)
				}
				n := xml.Name{Space: u, Local: a.Name.Local}
				if seen[n] {
					return fmt.Errorf("two attributes named {%s}%s", u, n.Local)
				}
				seen[n] = true
			}
		case xml.EndElement:
			scopes = scopes[:len(scopes)-1]
		}
	}
}

// checkNames compares the envelope's names with what encoding/xml resolves
// for the same element in the same context.
func checkNames(t *testing.T, st *Stanza) {
	t.Helper()
	d := xml.NewDecoder(io.MultiReader(bytes.NewReader(st.nsWrapper()), bytes.NewReader(st.Raw)))
	d.Token() // the wrapper
	depth := 0
	for {
		tok, err := d.Token()
		if err != nil {
			t.Fatalf("encoding/xml: %v on %q", err, st.Raw)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 && (e.Name.Local != st.Name || !sameNS(e.Name.Space, st.NS)) {
				t.Fatalf("root {%s}%s, encoding/xml says %v", st.NS, st.Name, e.Name)
			}
			if depth == 2 {
				if e.Name.Local != st.PayloadName || !sameNS(e.Name.Space, st.PayloadNS) {
					t.Fatalf("payload {%s}%s, encoding/xml says %v", st.PayloadNS, st.PayloadName, e.Name)
				}
				return
			}
		case xml.EndElement:
			depth--
			if depth == 0 {
				if st.PayloadName != "" {
					t.Fatalf("payload %s, encoding/xml sees none", st.PayloadName)
				}
				return
			}
		}
	}
}

// sameNS compares a namespace from encoding/xml, which does not normalize
// attribute values, with ours, which does (XML 1.0 §3.3.3).
func sameNS(theirs, ours string) bool {
	return theirs == ours || strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, theirs) == ours
}

func iotestOneByte(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) }

func BenchmarkSetAddrs(b *testing.B) {
	st := mustParse(b, "<message to='romeo@example.net' from='juliet@example.com/balcony' id='ktx72v49' type='chat' xml:lang='en'><body>Art thou not Romeo, and a Montague?</body></message>", NSClient)
	raw := st.Raw
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		st.Raw = raw
		st.SetAddrs("juliet@example.com/balcony", "romeo@example.net/orchard")
	}
}

func TestInsertChild(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"<message to='a@b'><body>x</body></message>", "<message to='a@b'><body>x</body><c/></message>"},
		{"<message to='a@b'/>", "<message to='a@b'><c/></message>"},
		{"<message to='a@b' />", "<message to='a@b' ><c/></message>"},
		{"<cl:message xmlns:cl='jabber:client'><body>x</body></cl:message>", "<cl:message xmlns:cl='jabber:client'><body>x</body><c/></cl:message>"},
	} {
		got := string(InsertChild([]byte(tc.in), []byte("<c/>")))
		if got != tc.want {
			t.Errorf("InsertChild(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if _, err := ParseElement([]byte(got), NSClient); err != nil {
			t.Errorf("%q does not parse: %v", got, err)
		}
	}
}
