package wire

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

const (
	c2sHeader = `<?xml version='1.0'?><stream:stream to='example.com' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`
	s2sHeader = `<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' to='b.example' from='a.example' version='1.0'>`
	wsOpen    = `<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0'/>`
)

// env is the comparable part of a Stanza.
type env struct {
	Kind                               Kind
	Name, NS, Type, ID, To, From, Lang string
	PayloadName, PayloadNS             string
	Raw                                string
}

func envOf(st *Stanza) env {
	return env{st.Kind, st.Name, st.NS, st.Type, st.ID, st.To, st.From, st.Lang, st.PayloadName, st.PayloadNS, string(st.Raw)}
}

// readStream reads a whole stream and describes it as text, so results of
// different read patterns can be compared.
func readStream(src io.Reader, max int) (Header, []env, error) {
	r := NewReader(src, max)
	h, err := r.Header()
	if err != nil {
		return h, nil, err
	}
	var out []env
	for {
		st, err := r.Next()
		if err != nil {
			return h, out, err
		}
		out = append(out, envOf(st))
	}
}

func condition(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Condition
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestHeader(t *testing.T) {
	tests := []struct {
		name, in string
		want     Header
		cond     string // expected error condition (or error text)
	}{
		{"c2s", c2sHeader, Header{To: "example.com", Version: "1.0", NS: NSClient}, ""},
		{"no decl", `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='juliet@im.example.com' to='im.example.com' version='1.0' xml:lang='en' id='++TR84Sm6A3hnt3Q065SnAbbk3Y='>`,
			Header{From: "juliet@im.example.com", To: "im.example.com", Version: "1.0", Lang: "en", ID: "++TR84Sm6A3hnt3Q065SnAbbk3Y=", NS: NSClient}, ""},
		{"double quotes and spaces", "\r\n <?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<stream:stream\n\txmlns=\"jabber:client\"\n\txmlns:stream=\"http://etherx.jabber.org/streams\"\n\tto = \"a&amp;b\" >",
			Header{To: "a&b", NS: NSClient}, ""},
		{"bom", "\xEF\xBB\xBF<?xml version='1.0' encoding='utf-8' standalone='yes'?>" + c2sHeader[21:], Header{To: "example.com", Version: "1.0", NS: NSClient}, ""},
		{"s2s", s2sHeader, Header{To: "b.example", From: "a.example", Version: "1.0", NS: NSServer}, ""},
		{"other prefix", `<foo:stream xmlns='jabber:client' xmlns:foo='http://etherx.jabber.org/streams'>`, Header{NS: NSClient}, ""},
		{"websocket", wsOpen, Header{To: "example.com", Version: "1.0", NS: NSClient, Framed: true}, ""},
		{"websocket double quotes", `<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="example.com" version="1.0" xml:lang="de" />`, Header{To: "example.com", Version: "1.0", Lang: "de", NS: NSClient, Framed: true}, ""},

		{"wrong stream ns", `<stream:stream xmlns='jabber:client' xmlns:stream='http://wrong.example/streams'>`, Header{}, "invalid-namespace"},
		{"wrong content ns", `<stream:stream xmlns='jabber:foo' xmlns:stream='http://etherx.jabber.org/streams'>`, Header{}, "invalid-namespace"},
		{"no content ns", `<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>`, Header{}, "invalid-namespace"},
		{"undeclared prefix", `<stream:stream xmlns='jabber:client'>`, Header{}, "bad-namespace-prefix"},
		{"no prefix", `<stream xmlns='http://etherx.jabber.org/streams'>`, Header{}, "bad-namespace-prefix"},
		{"open wrong ns", `<open xmlns='jabber:client'/>`, Header{}, "invalid-namespace"},
		{"open not empty", `<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'>`, Header{}, "not-well-formed"},
		{"empty stream", `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'/>`, Header{}, "bad-format"},
		{"other element", `<message xmlns='jabber:client'>`, Header{}, "bad-format"},
		{"latin1", `<?xml version='1.0' encoding='ISO-8859-1'?>` + c2sHeader[21:], Header{}, "unsupported-encoding"},
		{"utf16", `<?xml version='1.0' encoding='UTF-16'?>` + c2sHeader[21:], Header{}, "unsupported-encoding"},
		{"bad decl", `<?xml encoding='UTF-8'?>` + c2sHeader[21:], Header{}, "not-well-formed"},
		{"decl version 2", `<?xml version='2.0'?>` + c2sHeader[21:], Header{}, "not-well-formed"},
		{"two decls", `<?xml version='1.0'?><?xml version='1.0'?>` + c2sHeader[21:], Header{}, "restricted-xml"},
		{"pi", `<?foo bar?>` + c2sHeader[21:], Header{}, "restricted-xml"},
		{"doctype", `<?xml version='1.0'?><!DOCTYPE stream [<!ENTITY x 'y'>]>` + c2sHeader[21:], Header{}, "restricted-xml"},
		{"comment", `<!-- hi -->` + c2sHeader[21:], Header{}, "restricted-xml"},
		{"http", "GET / HTTP/1.1\r\n\r\n", Header{}, "not-well-formed"},
		{"end tag", `</stream:stream>`, Header{}, "not-well-formed"},
		{"unquoted", `<stream:stream xmlns=jabber:client>`, Header{}, "not-well-formed"},
		{"prefixes at the limit", headerWithPrefixes(MaxStreamPrefixes - 1), Header{To: "example.com", Version: "1.0", NS: NSClient}, ""},
		{"too many prefixes", headerWithPrefixes(MaxStreamPrefixes), Header{}, "policy-violation"},
		{"too many prefixes on open", `<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'` + prefixDecls(MaxStreamPrefixes+1) + `/>`, Header{}, "policy-violation"},
		{"too big", `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='` + strings.Repeat("a", 300) + `'>`, Header{}, "policy-violation"},
		{"empty", ``, Header{}, "EOF"},
		{"only space", " \n ", Header{}, "EOF"},
		{"truncated", c2sHeader[:40], Header{}, "unexpected EOF"},
	}
	for _, tt := range tests {
		for _, mode := range []string{"whole", "bytes"} {
			t.Run(tt.name+"/"+mode, func(t *testing.T) {
				var src io.Reader = strings.NewReader(tt.in)
				if mode == "bytes" {
					src = iotest.OneByteReader(src)
				}
				r := NewReader(src, 256)
				h, err := r.Header()
				if got := condition(err); got != tt.cond {
					t.Fatalf("error %v, want %q", err, tt.cond)
				}
				if h != tt.want && tt.cond == "" {
					t.Fatalf("got %+v, want %+v", h, tt.want)
				}
				if tt.cond != "" && err != nil {
					var e *Error
					if errors.As(err, &e) {
						if _, err2 := r.Next(); err2 != err {
							t.Errorf("error not sticky: %v", err2)
						}
					}
				}
			})
		}
	}
}

// prefixDecls returns n prefix declarations.
func prefixDecls(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, " xmlns:p%d='urn:p:%d'", i, i)
	}
	return b.String()
}

// headerWithPrefixes is c2sHeader declaring n prefixes beside stream.
func headerWithPrefixes(n int) string {
	return c2sHeader[:len(c2sHeader)-1] + prefixDecls(n) + ">"
}

func TestManyStreamPrefixesRefusedEarly(t *testing.T) {
	// A header the size of the stanza limit, full of declarations, is
	// refused at the first declaration over the limit.
	in := headerWithPrefixes(15000)
	r := NewReader(strings.NewReader(in), len(in)+1)
	if _, err := r.Header(); condition(err) != "policy-violation" {
		t.Fatalf("header with 15000 prefixes: %v", err)
	}
	if r.sc.p > len(c2sHeader)+(MaxStreamPrefixes+1)*len(" xmlns:p10='urn:p:10'") {
		t.Errorf("scanned %d bytes before refusing", r.sc.p)
	}
}

// TestDecodeCostIndependentOfHeader reads the same elements after a header
// with only xmlns:stream and after one with the most prefixes allowed: the
// work per element (allocations of Next, Decode, Standalone and Element,
// and the bytes Decode reads) is the same.
func TestDecodeCostIndependentOfHeader(t *testing.T) {
	type cost struct{ next, decode, standalone, element float64 }
	measure := func(header string) cost {
		const ack = "<a xmlns='urn:xmpp:sm:3' h='5'/>"
		src := &repeater{head: []byte(header), msg: []byte(ack)}
		r := NewReader(src, 0)
		if _, err := r.Header(); err != nil {
			t.Fatal(err)
		}
		var c cost
		var st *Stanza
		c.next = testing.AllocsPerRun(200, func() {
			var err error
			if st, err = r.Next(); err != nil {
				t.Fatal(err)
			}
		})
		var v struct {
			XMLName xml.Name `xml:"urn:xmpp:sm:3 a"`
			H       uint32   `xml:"h,attr"`
		}
		c.decode = testing.AllocsPerRun(200, func() {
			if err := st.Decode(&v); err != nil || v.H != 5 {
				t.Fatal(err, v)
			}
		})
		c.standalone = testing.AllocsPerRun(200, func() { st.Standalone() })
		c.element = testing.AllocsPerRun(200, func() {
			if _, err := st.Element(); err != nil {
				t.Fatal(err)
			}
		})
		if w := st.nsWrapper(); len(w) > 64 {
			t.Errorf("Decode reads a %d-byte wrapper before the element: %s", len(w), w)
		}
		return c
	}
	short := measure(c2sHeader)
	long := measure(headerWithPrefixes(7))
	if short != long {
		t.Errorf("allocations per element after a header with 1 prefix: %+v; with 8: %+v", short, long)
	}
}

func TestNextBeforeHeader(t *testing.T) {
	r := NewReader(strings.NewReader("<a/>"), 0)
	if _, err := r.Next(); err == nil {
		t.Fatal("Next before Header succeeded")
	}
}

type nextCase struct {
	name   string
	header string
	in     string
	want   []env
	err    string // condition or error text after the elements
}

var nextCases = []nextCase{
	{"message", c2sHeader, "<message to='romeo@example.net' from='juliet@example.com/balcony' id='ktx72v49' type='chat' xml:lang='en'><body>Art thou not Romeo, and a Montague?</body></message>",
		[]env{{KindMessage, "message", NSClient, "chat", "ktx72v49", "romeo@example.net", "juliet@example.com/balcony", "en", "body", NSClient,
			"<message to='romeo@example.net' from='juliet@example.com/balcony' id='ktx72v49' type='chat' xml:lang='en'><body>Art thou not Romeo, and a Montague?</body></message>"}},
		"EOF"},
	{"keepalives", c2sHeader, " \n\t <presence/> \r\n <presence/>\n\n",
		[]env{{Kind: KindPresence, Name: "presence", NS: NSClient, Raw: "<presence/>"}, {Kind: KindPresence, Name: "presence", NS: NSClient, Raw: "<presence/>"}},
		"EOF"},
	{"iq ping", c2sHeader, `<iq type="get" id="p1"><ping xmlns="urn:xmpp:ping"/></iq>`,
		[]env{{Kind: KindIQ, Name: "iq", NS: NSClient, Type: "get", ID: "p1", PayloadName: "ping", PayloadNS: "urn:xmpp:ping", Raw: `<iq type="get" id="p1"><ping xmlns="urn:xmpp:ping"/></iq>`}},
		"EOF"},
	{"stream end", c2sHeader, "<presence/></stream:stream><presence/>",
		[]env{{Kind: KindPresence, Name: "presence", NS: NSClient, Raw: "<presence/>"}},
		"wire: stream closed by peer"},
	{"stream end spaces", c2sHeader, "</stream:stream \n>", nil, "wire: stream closed by peer"},
	{"entities", c2sHeader, `<message to='a&amp;b&lt;&gt;&apos;&quot;' id='&#65;&#x42;&#x10FFFF;&#0000000067;'><body>&lt;3 &#x1F600; &amp;</body></message>`,
		[]env{{Kind: KindMessage, Name: "message", NS: NSClient, To: "a&b<>'\"", ID: "AB\U0010FFFFC", PayloadName: "body", PayloadNS: NSClient,
			Raw: `<message to='a&amp;b&lt;&gt;&apos;&quot;' id='&#65;&#x42;&#x10FFFF;&#0000000067;'><body>&lt;3 &#x1F600; &amp;</body></message>`}},
		"EOF"},
	{"attribute normalization", c2sHeader, "<iq id='a\tb\r\nc\nd&#10;e' type='get'/>",
		[]env{{Kind: KindIQ, Name: "iq", NS: NSClient, ID: "a b c d\ne", Type: "get", Raw: "<iq id='a\tb\r\nc\nd&#10;e' type='get'/>"}},
		"EOF"},
	{"utf8", c2sHeader, "<message to='jüliet@例え.jp'><body>☃ 😀 </body></message>",
		[]env{{Kind: KindMessage, Name: "message", NS: NSClient, To: "jüliet@例え.jp", PayloadName: "body", PayloadNS: NSClient, Raw: "<message to='jüliet@例え.jp'><body>☃ 😀 </body></message>"}},
		"EOF"},
	{"cdata", c2sHeader, "<message><![CDATA[ <x> & ]] ]]><body><![CDATA[<hi/>]]]]><![CDATA[>]]></body></message>",
		[]env{{Kind: KindMessage, Name: "message", NS: NSClient, PayloadName: "body", PayloadNS: NSClient, Raw: "<message><![CDATA[ <x> & ]] ]]><body><![CDATA[<hi/>]]]]><![CDATA[>]]></body></message>"}},
		"EOF"},
	{"text before child", c2sHeader, "<message>\n  hello <b>x</b></message>",
		[]env{{Kind: KindMessage, Name: "message", NS: NSClient, PayloadName: "b", PayloadNS: NSClient, Raw: "<message>\n  hello <b>x</b></message>"}},
		"EOF"},
	{"explicit content ns", c2sHeader, "<message xmlns='jabber:client' type='chat'><body/></message>",
		[]env{{Kind: KindMessage, Name: "message", NS: NSClient, Type: "chat", PayloadName: "body", PayloadNS: NSClient, Raw: "<message xmlns='jabber:client' type='chat'><body/></message>"}},
		"EOF"},
	{"other content ns", c2sHeader, "<message xmlns='jabber:server'><body/></message>",
		[]env{{Kind: KindOther, Name: "message", NS: NSServer, PayloadName: "body", PayloadNS: NSServer, Raw: "<message xmlns='jabber:server'><body/></message>"}},
		"EOF"},
	{"nonzas", c2sHeader, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAByMG0zMG15cjBtMzA=</auth><r xmlns='urn:xmpp:sm:3'/><a xmlns='urn:xmpp:sm:3' h='3'/><stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
		[]env{
			{Kind: KindOther, Name: "starttls", NS: "urn:ietf:params:xml:ns:xmpp-tls", Raw: "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"},
			{Kind: KindOther, Name: "auth", NS: "urn:ietf:params:xml:ns:xmpp-sasl", Raw: "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAByMG0zMG15cjBtMzA=</auth>"},
			{Kind: KindOther, Name: "r", NS: "urn:xmpp:sm:3", Raw: "<r xmlns='urn:xmpp:sm:3'/>"},
			{Kind: KindOther, Name: "a", NS: "urn:xmpp:sm:3", Raw: "<a xmlns='urn:xmpp:sm:3' h='3'/>"},
			{Kind: KindOther, Name: "error", NS: NSStream, PayloadName: "conflict", PayloadNS: NSStreams, Raw: "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"},
		},
		"EOF"},
	{"prefixes", c2sHeader, "<iq type='set' xmlns:p='urn:p' xmlns:q='urn:q'><p:query><q:x/></p:query></iq><iq><q:query xmlns:q='urn:own'/></iq><iq><query xmlns='urn:def'/></iq><cl:message xmlns:cl='jabber:client'><body/></cl:message><x:iq xmlns:x='urn:other'/><iq><xml:foo/></iq>",
		[]env{
			{Kind: KindIQ, Name: "iq", NS: NSClient, Type: "set", PayloadName: "query", PayloadNS: "urn:p", Raw: "<iq type='set' xmlns:p='urn:p' xmlns:q='urn:q'><p:query><q:x/></p:query></iq>"},
			{Kind: KindIQ, Name: "iq", NS: NSClient, PayloadName: "query", PayloadNS: "urn:own", Raw: "<iq><q:query xmlns:q='urn:own'/></iq>"},
			{Kind: KindIQ, Name: "iq", NS: NSClient, PayloadName: "query", PayloadNS: "urn:def", Raw: "<iq><query xmlns='urn:def'/></iq>"},
			{Kind: KindMessage, Name: "message", NS: NSClient, PayloadName: "body", PayloadNS: NSClient, Raw: "<cl:message xmlns:cl='jabber:client'><body/></cl:message>"},
			{Kind: KindOther, Name: "iq", NS: "urn:other", Raw: "<x:iq xmlns:x='urn:other'/>"},
			{Kind: KindIQ, Name: "iq", NS: NSClient, PayloadName: "foo", PayloadNS: NSXML, Raw: "<iq><xml:foo/></iq>"},
		},
		"EOF"},
	{"root default ns inherited by child", c2sHeader, "<enable xmlns='urn:xmpp:sm:3' resume='true'><x/></enable>",
		[]env{{Kind: KindOther, Name: "enable", NS: "urn:xmpp:sm:3", PayloadName: "x", PayloadNS: "urn:xmpp:sm:3", Raw: "<enable xmlns='urn:xmpp:sm:3' resume='true'><x/></enable>"}},
		"EOF"},
	{"escaped namespace", c2sHeader, "<iq><q xmlns='urn:a&amp;b'/></iq>",
		[]env{{Kind: KindIQ, Name: "iq", NS: NSClient, PayloadName: "q", PayloadNS: "urn:a&b", Raw: "<iq><q xmlns='urn:a&amp;b'/></iq>"}},
		"EOF"},
	{"s2s dialback", s2sHeader, "<db:result from='a.example' to='b.example'>b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3</db:result><message from='x@a.example' to='y@b.example'/>",
		[]env{
			{Kind: KindOther, Name: "result", NS: "jabber:server:dialback", From: "a.example", To: "b.example", Raw: "<db:result from='a.example' to='b.example'>b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3</db:result>"},
			{Kind: KindMessage, Name: "message", NS: NSServer, From: "x@a.example", To: "y@b.example", Raw: "<message from='x@a.example' to='y@b.example'/>"},
		},
		"EOF"},
	{"websocket", wsOpen, "<message xmlns='jabber:client' to='a@b'><body>x</body></message><open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0'/><close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/><presence/>",
		[]env{
			{Kind: KindMessage, Name: "message", NS: NSClient, To: "a@b", PayloadName: "body", PayloadNS: NSClient, Raw: "<message xmlns='jabber:client' to='a@b'><body>x</body></message>"},
			{Kind: KindOther, Name: "open", NS: NSFraming, To: "example.com", Raw: "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0'/>"},
		},
		"wire: stream closed by peer"},
	{"websocket stream end tag", wsOpen, "</stream:stream>", nil, "not-well-formed"},
	{"tcp close element", c2sHeader, "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
		[]env{{Kind: KindOther, Name: "close", NS: NSFraming, Raw: "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"}}, "EOF"},
	{"truncated", c2sHeader, "<presence/><message><body>hi</bo", []env{{Kind: KindPresence, Name: "presence", NS: NSClient, Raw: "<presence/>"}}, "unexpected EOF"},
	{"truncated utf8", c2sHeader, "<message><body>\xE2\x98", nil, "unexpected EOF"},

	// well-formedness
	{"mismatched", c2sHeader, "<presence/><message><body></message></body>", []env{{Kind: KindPresence, Name: "presence", NS: NSClient, Raw: "<presence/>"}}, "not-well-formed"},
	{"mismatched prefix", c2sHeader, "<a:b xmlns:a='x'></c:b>", nil, "not-well-formed"},
	{"wrong stream end", c2sHeader, "</stream:foo>", nil, "not-well-formed"},
	{"wrong stream end prefix", c2sHeader, "</foo:stream>", nil, "not-well-formed"},
	{"text at stream level", c2sHeader, "hello", nil, "not-well-formed"},
	{"entity at stream level", c2sHeader, "&#32;", nil, "not-well-formed"},
	{"cdata at stream level", c2sHeader, "<![CDATA[x]]>", nil, "not-well-formed"},
	{"unquoted", c2sHeader, "<message to=a/>", nil, "not-well-formed"},
	{"no value", c2sHeader, "<message to/>", nil, "not-well-formed"},
	{"no value before end", c2sHeader, "<message to>", nil, "not-well-formed"},
	{"duplicate attribute", c2sHeader, "<message to='a' to='b'/>", nil, "not-well-formed"},
	{"duplicate among many", c2sHeader, "<message " + manyAttrs(100) + " a7='x'/>", nil, "not-well-formed"},
	{"many attributes", c2sHeader, "<message " + manyAttrs(100) + "/>", []env{{Kind: KindMessage, Name: "message", NS: NSClient, Raw: "<message " + manyAttrs(100) + "/>"}}, "EOF"},
	{"no space between attributes", c2sHeader, "<message to='a'from='b'/>", nil, "not-well-formed"},
	{"lt in attribute", c2sHeader, "<message to='a<b'/>", nil, "not-well-formed"},
	{"gt in attribute is fine", c2sHeader, "<message to='a>b]]>'/>", []env{{Kind: KindMessage, Name: "message", NS: NSClient, To: "a>b]]>", Raw: "<message to='a>b]]>'/>"}}, "EOF"},
	{"unknown entity", c2sHeader, "<message><body>&nbsp;</body></message>", nil, "not-well-formed"},
	{"unknown entity in attribute", c2sHeader, "<message to='&foo;'/>", nil, "not-well-formed"},
	{"entity without semicolon", c2sHeader, "<message><body>a & b</body></message>", nil, "not-well-formed"},
	{"long reference", c2sHeader, "<message><body>&#" + strings.Repeat("0", 40) + "65;</body></message>", nil, "not-well-formed"},
	{"nul reference", c2sHeader, "<message><body>&#0;</body></message>", nil, "not-well-formed"},
	{"surrogate reference", c2sHeader, "<message><body>&#xD800;</body></message>", nil, "not-well-formed"},
	{"big reference", c2sHeader, "<message><body>&#x110000;</body></message>", nil, "not-well-formed"},
	{"uppercase X reference", c2sHeader, "<message><body>&#X41;</body></message>", nil, "not-well-formed"},
	{"empty reference", c2sHeader, "<message><body>&#x;</body></message>", nil, "not-well-formed"},
	{"control char", c2sHeader, "<message><body>\x01</body></message>", nil, "not-well-formed"},
	{"control char in attribute", c2sHeader, "<message to='\x00'/>", nil, "not-well-formed"},
	{"invalid utf8", c2sHeader, "<message><body>\xff</body></message>", nil, "not-well-formed"},
	{"overlong utf8", c2sHeader, "<message><body>\xc0\xaf</body></message>", nil, "not-well-formed"},
	{"surrogate utf8", c2sHeader, "<message><body>\xed\xa0\x80</body></message>", nil, "not-well-formed"},
	{"invalid utf8 in attribute", c2sHeader, "<message to='\xe2\x28\xa1'/>", nil, "not-well-formed"},
	{"U+FFFE", c2sHeader, "<message><body>\xef\xbf\xbe</body></message>", nil, "not-well-formed"},
	{"invalid utf8 in cdata", c2sHeader, "<message><![CDATA[\xff]]></message>", nil, "not-well-formed"},
	{"cdata end in text", c2sHeader, "<message><body>a]]>b</body></message>", nil, "not-well-formed"},
	{"bad cdata", c2sHeader, "<message><![CDAT[x]]></message>", nil, "not-well-formed"},
	{"bad name start", c2sHeader, "<1message/>", nil, "not-well-formed"},
	{"two colons", c2sHeader, "<a:b:c/>", nil, "not-well-formed"},
	{"empty prefix", c2sHeader, "<:a/>", nil, "not-well-formed"},
	{"empty local", c2sHeader, "<a:/>", nil, "not-well-formed"},
	{"space after lt", c2sHeader, "< message/>", nil, "not-well-formed"},
	{"bad name char", c2sHeader, "<mes\u00a0sage/>", nil, "not-well-formed"},
	{"non-ascii name", c2sHeader, "<iq><ö xmlns='urn:x'/></iq>", []env{{Kind: KindIQ, Name: "iq", NS: NSClient, PayloadName: "ö", PayloadNS: "urn:x", Raw: "<iq><ö xmlns='urn:x'/></iq>"}}, "EOF"},
	{"xmlns prefix on element", c2sHeader, "<xmlns:a/>", nil, "not-well-formed"},
	{"undeclaring a prefix", c2sHeader, "<iq xmlns:a=''/>", nil, "not-well-formed"},
	{"end tag with attribute", c2sHeader, "<message></message a='b'>", nil, "not-well-formed"},
	{"slash in tag", c2sHeader, "<message / >", nil, "not-well-formed"},
	{"empty end tag", c2sHeader, "<message></>", nil, "not-well-formed"},

	// restricted XML
	{"comment", c2sHeader, "<message><!-- hi --></message>", nil, "restricted-xml"},
	{"comment at top", c2sHeader, "<!-- hi -->", nil, "restricted-xml"},
	{"pi", c2sHeader, "<message><?php echo 1; ?></message>", nil, "restricted-xml"},
	{"xml decl mid-stream", c2sHeader, "<?xml version='1.0'?>", nil, "restricted-xml"},
	{"doctype", c2sHeader, "<!DOCTYPE foo>", nil, "restricted-xml"},
	{"entity decl", c2sHeader, "<message><!ENTITY x 'y'></message>", nil, "restricted-xml"},

	// namespaces
	{"undeclared root prefix", c2sHeader, "<foo:message/>", nil, "bad-namespace-prefix"},
	{"undeclared child prefix", c2sHeader, "<message><foo:body/></message>", nil, "bad-namespace-prefix"},
	{"undeclared prefix after the first child", c2sHeader, "<message to='bob'><body>hi</body><evil:x/></message>", nil, "bad-namespace-prefix"},
	{"undeclared prefix at depth 3", c2sHeader, "<message><body><foo:x/></body></message>", nil, "bad-namespace-prefix"},
	{"undeclared prefix at depth 6", c2sHeader, "<iq type='set'><a xmlns='urn:a'><b><c><d><evil:z/></d></c></b></a></iq>", nil, "bad-namespace-prefix"},
	{"undeclared prefix under a default namespace", c2sHeader, "<message><y xmlns='urn:a'><evil:z/></y></message>", nil, "bad-namespace-prefix"},
	{"undeclared prefix in an end tag only", c2sHeader, "<message><x></evil:x></message>", nil, "not-well-formed"},
	{"undeclared attribute prefix on the root", c2sHeader, "<message evil:a='1'/>", nil, "bad-namespace-prefix"},
	{"undeclared attribute prefix on the first child", c2sHeader, "<message><body evil:a='1'>hi</body></message>", nil, "bad-namespace-prefix"},
	{"undeclared attribute prefix at depth 4", c2sHeader, "<message><x xmlns='urn:x'><y><z evil:a='1'/></y></x></message>", nil, "bad-namespace-prefix"},
	{"undeclared attribute prefix after a declared one", c2sHeader, "<message xmlns:ok='urn:ok'><x ok:a='1' evil:b='2'/></message>", nil, "bad-namespace-prefix"},
	{"prefix declared on a sibling", c2sHeader, "<message><a xmlns:p='urn:p'><p:x/></a><b><p:x/></b></message>", nil, "bad-namespace-prefix"},
	{"prefix declared on an empty sibling", c2sHeader, "<message><a xmlns:p='urn:p'/><p:x/></message>", nil, "bad-namespace-prefix"},
	{"prefix declared by the previous stanza", c2sHeader, "<message xmlns:p='urn:p'><p:x/></message><message><p:x/></message>",
		[]env{{Kind: KindMessage, Name: "message", NS: NSClient, PayloadName: "x", PayloadNS: "urn:p", Raw: "<message xmlns:p='urn:p'><p:x/></message>"}}, "bad-namespace-prefix"},
	{"stream prefix inside a stanza", c2sHeader, "<message><body/><x><stream:error/></x></message>", nil, "bad-namespace-prefix"},
	{"stream-level prefix inside a stanza", s2sHeader, "<message><body/><x><db:x/></x></message>", nil, "bad-namespace-prefix"},
	{"stream-level prefix on an attribute", s2sHeader, "<message db:a='1'/>", nil, "bad-namespace-prefix"},
	{"stream-level prefix naming a stanza", c2sHeader[:len(c2sHeader)-1] + " xmlns:cl='jabber:client'>", "<cl:message/>", nil, "bad-namespace-prefix"},
	{"declared prefixes at every depth", c2sHeader,
		"<message xmlns:a='urn:a'><body a:x='1'>hi</body><a:x><b:y xmlns:b='urn:b' b:z='2' a:w='3' xml:lang='en'><b:y/><c:q xmlns:c='urn:c'/></b:y><a:v/></a:x><p:e xmlns:p='urn:p1'><p:e xmlns:p='urn:p2'/><p:f/></p:e></message>",
		[]env{{Kind: KindMessage, Name: "message", NS: NSClient, PayloadName: "body", PayloadNS: NSClient,
			Raw: "<message xmlns:a='urn:a'><body a:x='1'>hi</body><a:x><b:y xmlns:b='urn:b' b:z='2' a:w='3' xml:lang='en'><b:y/><c:q xmlns:c='urn:c'/></b:y><a:v/></a:x><p:e xmlns:p='urn:p1'><p:e xmlns:p='urn:p2'/><p:f/></p:e></message>"}}, "EOF"},
	{"declaration after use on the same tag", c2sHeader, "<message><p:x p:a='1' xmlns:p='urn:p'/></message>",
		[]env{{Kind: KindMessage, Name: "message", NS: NSClient, PayloadName: "x", PayloadNS: "urn:p", Raw: "<message><p:x p:a='1' xmlns:p='urn:p'/></message>"}}, "EOF"},
	{"xml prefix everywhere", c2sHeader, "<message xml:lang='en'><body xml:lang='de'><xml:x xml:space='preserve'/></body></message>",
		[]env{{Kind: KindMessage, Name: "message", NS: NSClient, Lang: "en", PayloadName: "body", PayloadNS: NSClient, Raw: "<message xml:lang='en'><body xml:lang='de'><xml:x xml:space='preserve'/></body></message>"}}, "EOF"},
	{"same attribute through two prefixes", c2sHeader, "<message xmlns:a='urn:x'><body>hi</body><x xmlns:b='urn:x' a:z='1' b:z='2'/></message>", nil, "not-well-formed"},
	{"same attribute through two prefixes, escaped", c2sHeader, "<message xmlns:a='urn:x'><x xmlns:b='urn:&#120;' b:z='2' a:z='1'/></message>", nil, "not-well-formed"},
	{"same local name in two namespaces", c2sHeader, "<message xmlns:a='urn:x'><x xmlns:b='urn:y' a:z='1' b:z='2'/></message>",
		[]env{{Kind: KindMessage, Name: "message", NS: NSClient, PayloadName: "x", PayloadNS: NSClient, Raw: "<message xmlns:a='urn:x'><x xmlns:b='urn:y' a:z='1' b:z='2'/></message>"}}, "EOF"},
	{"same attribute among many prefixes", c2sHeader, "<message><x" + manyPrefixedAttrs(40) + " xmlns:q='urn:17' q:z='x'/></message>", nil, "not-well-formed"},
	{"many prefixed attributes", c2sHeader, "<message><x" + manyPrefixedAttrs(40) + "/></message>",
		[]env{{Kind: KindMessage, Name: "message", NS: NSClient, PayloadName: "x", PayloadNS: NSClient, Raw: "<message><x" + manyPrefixedAttrs(40) + "/></message>"}}, "EOF"},
	{"xml prefix bound elsewhere", c2sHeader, "<message><body>hi</body><x><y xmlns:xml='urn:other'/></x></message>", nil, "bad-namespace-prefix"},
	{"other prefix bound to the xml namespace", c2sHeader, "<message><x><y xmlns:foo='http://www.w3.org/XML/1998/namespace'/></x></message>", nil, "bad-namespace-prefix"},
	{"prefix bound to the xmlns namespace", c2sHeader, "<message><x xmlns:foo='http://www.w3.org/2000/xmlns/'/></message>", nil, "bad-namespace-prefix"},
	{"default namespace is the xml namespace", c2sHeader, "<message><x><y xmlns='http://www.w3.org/XML/1998/namespace'/></x></message>", nil, "bad-namespace-prefix"},
	{"xml prefix declared as it is", c2sHeader, "<message><x xmlns:xml='http://www.w3.org/XML/1998/namespace' xml:lang='en'/></message>",
		[]env{{Kind: KindMessage, Name: "message", NS: NSClient, PayloadName: "x", PayloadNS: NSClient, Raw: "<message><x xmlns:xml='http://www.w3.org/XML/1998/namespace' xml:lang='en'/></message>"}}, "EOF"},
	{"stream-level prefix naming a nonza", s2sHeader, "<db:verify from='a' to='b' id='i'>k</db:verify>",
		[]env{{Kind: KindOther, Name: "verify", NS: "jabber:server:dialback", From: "a", To: "b", ID: "i", Raw: "<db:verify from='a' to='b' id='i'>k</db:verify>"}}, "EOF"},
}

// manyPrefixedAttrs returns n prefix declarations, each with an attribute z
// in its own namespace.
func manyPrefixedAttrs(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, " xmlns:p%d='urn:%d' p%d:z='%d'", i, i, i, i)
	}
	return b.String()
}

func manyAttrs(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, " a%d='%d'", i, i)
	}
	return b.String()
}

// chunkReader returns its input in chunks of random sizes.
type chunkReader struct {
	data []byte
	rnd  *rand.Rand
	max  int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := 1 + c.rnd.Intn(c.max)
	if n > len(p) {
		n = len(p)
	}
	if n > len(c.data) {
		n = len(c.data)
	}
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

func TestNext(t *testing.T) {
	for _, tt := range nextCases {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.header + tt.in
			readers := map[string]func() io.Reader{
				"whole": func() io.Reader { return strings.NewReader(in) },
				"bytes": func() io.Reader { return iotest.OneByteReader(strings.NewReader(in)) },
				"half":  func() io.Reader { return iotest.HalfReader(strings.NewReader(in)) },
				"eof":   func() io.Reader { return iotest.DataErrReader(strings.NewReader(in)) },
			}
			for seed := int64(1); seed <= 5; seed++ {
				readers[fmt.Sprint("chunks", seed)] = func() io.Reader {
					return &chunkReader{data: []byte(in), rnd: rand.New(rand.NewSource(seed)), max: 1 + int(seed)*7}
				}
			}
			for mode, mk := range readers {
				_, got, err := readStream(mk(), 4096)
				if c := condition(err); c != tt.err {
					t.Errorf("%s: error %v, want %q", mode, err, tt.err)
				}
				if len(got) != len(tt.want) {
					t.Fatalf("%s: got %d elements, want %d:\n%+v", mode, len(got), len(tt.want), got)
				}
				for i := range got {
					if got[i] != tt.want[i] {
						t.Errorf("%s: element %d:\n got %+v\nwant %+v", mode, i, got[i], tt.want[i])
					}
				}
			}
			// Every Raw parses with encoding/xml, and as a single element,
			// with every prefix declared inside it.
			for _, w := range tt.want {
				if err := xmlCheck([]byte(w.Raw)); err != nil {
					t.Errorf("encoding/xml refuses %q: %v", w.Raw, err)
				}
				if err := nsStandalone([]byte(w.Raw), w.Kind == KindOther); err != nil {
					t.Errorf("%q is not namespace-well-formed standing alone: %v", w.Raw, err)
				}
			}
		})
	}
}

// xmlCheck parses b with encoding/xml in strict mode.
func xmlCheck(b []byte) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func TestStickyError(t *testing.T) {
	r := NewReader(strings.NewReader(c2sHeader+"<message><!-- x --></message><presence/>"), 0)
	if _, err := r.Header(); err != nil {
		t.Fatal(err)
	}
	_, err1 := r.Next()
	_, err2 := r.Next()
	if condition(err1) != "restricted-xml" || err1 != err2 {
		t.Fatalf("got %v then %v", err1, err2)
	}
	r = NewReader(strings.NewReader(c2sHeader+"</stream:stream><presence/>"), 0)
	r.Header()
	for i := 0; i < 3; i++ {
		if _, err := r.Next(); err != ErrStreamEnd {
			t.Fatalf("Next %d: %v", i, err)
		}
	}
}

// errAfter returns data, then an error that is not EOF (a read deadline).
type errAfter struct {
	data []byte
	err  error
	more []byte
}

func (e *errAfter) Read(p []byte) (int, error) {
	if len(e.data) > 0 {
		n := copy(p, e.data)
		e.data = e.data[n:]
		return n, nil
	}
	if e.err != nil {
		err := e.err
		e.err = nil
		return 0, err
	}
	if len(e.more) > 0 {
		n := copy(p, e.more)
		e.more = e.more[n:]
		return n, nil
	}
	return 0, io.EOF
}

func TestReadErrorNotSticky(t *testing.T) {
	timeout := errors.New("i/o timeout")
	src := &errAfter{data: []byte(c2sHeader + "<message><bo"), err: timeout, more: []byte("dy>hi</body></message>")}
	r := NewReader(src, 0)
	if _, err := r.Header(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != timeout {
		t.Fatalf("got %v, want the read error", err)
	}
	st, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if string(st.Raw) != "<message><body>hi</body></message>" {
		t.Fatalf("Raw %q", st.Raw)
	}
}

// endless produces a start, then filler forever, counting what was read.
type endless struct {
	start []byte
	fill  byte
	n     int
}

func (e *endless) Read(p []byte) (int, error) {
	i := copy(p, e.start)
	e.start = e.start[i:]
	for ; i < len(p); i++ {
		p[i] = e.fill
	}
	e.n += len(p)
	return len(p), nil
}

func TestPolicyViolation(t *testing.T) {
	const max = 64 << 10
	src := &endless{start: []byte(c2sHeader + "<message><body>"), fill: 'a'}
	r := NewReader(src, max)
	if _, err := r.Header(); err != nil {
		t.Fatal(err)
	}
	_, err := r.Next()
	if condition(err) != "policy-violation" {
		t.Fatalf("got %v", err)
	}
	if src.n > 2*max+len(c2sHeader)+1024 {
		t.Errorf("read %d bytes for a %d limit", src.n, max)
	}
	if cap(r.buf) > 2*max {
		t.Errorf("buffer grew to %d", cap(r.buf))
	}

	// the limit is inclusive, whatever the read pattern
	for _, extra := range []int{0, 1} {
		msg := "<message><body>" + strings.Repeat("é", 100) + "</body></message>"
		limit := len(msg) - extra
		for _, mode := range []string{"whole", "bytes"} {
			var src io.Reader = strings.NewReader(c2sHeader + msg)
			if mode == "bytes" {
				src = iotest.OneByteReader(src)
			}
			r := NewReader(src, limit)
			if _, err := r.Header(); err != nil {
				t.Fatal(err)
			}
			_, err := r.Next()
			if (extra == 0) != (err == nil) {
				t.Errorf("limit %d, element %d, %s: %v", limit, len(msg), mode, err)
			}
			if extra == 1 && condition(err) != "policy-violation" {
				t.Errorf("got %v", err)
			}
		}
	}
}

func TestBigStanzasAndShrink(t *testing.T) {
	big := "<message><body>" + strings.Repeat("0123456789", 10000) + "</body></message>"
	var in strings.Builder
	in.WriteString(c2sHeader)
	for i := 0; i < 3; i++ {
		in.WriteString(big)
		in.WriteString("<presence/>")
	}
	for _, mode := range []string{"whole", "bytes", "chunks"} {
		var src io.Reader = strings.NewReader(in.String())
		switch mode {
		case "bytes":
			src = iotest.OneByteReader(src)
		case "chunks":
			src = &chunkReader{data: []byte(in.String()), rnd: rand.New(rand.NewSource(7)), max: 5000}
		}
		r := NewReader(src, 200<<10)
		if _, err := r.Header(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 6; i++ {
			st, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			want := "<presence/>"
			if i%2 == 0 {
				want = big
			}
			if string(st.Raw) != want {
				t.Fatalf("%s %d: wrong Raw (%d bytes)", mode, i, len(st.Raw))
			}
			if r.r == r.w && len(r.buf) != smallBuf {
				t.Errorf("%s %d: nothing buffered but the buffer holds %d bytes", mode, i, len(r.buf))
			}
		}
		if _, err := r.Next(); err != io.EOF {
			t.Fatal(err)
		}
		if len(r.buf) != smallBuf || r.big != nil {
			t.Errorf("%s: buffer not shrunk: %d", mode, len(r.buf))
		}
	}
}

func TestDeepNesting(t *testing.T) {
	deep := "<message>" + strings.Repeat("<a>", 5000) + strings.Repeat("</a>", 5000) + "</message>"
	_, got, err := readStream(strings.NewReader(c2sHeader+deep), 1<<20)
	if err != io.EOF || len(got) != 1 || got[0].Raw != deep {
		t.Fatalf("got %v %d", err, len(got))
	}
}

func TestReset(t *testing.T) {
	// After STARTTLS the plain-text bytes the client pipelined are dropped.
	r := NewReader(strings.NewReader(c2sHeader+"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><message>injected</message>"), 0)
	if _, err := r.Header(); err != nil {
		t.Fatal(err)
	}
	st, err := r.Next()
	if err != nil || st.Name != "starttls" {
		t.Fatal(st, err)
	}
	r.Reset(strings.NewReader(s2sHeader + "<presence/>"))
	h, err := r.Header()
	if err != nil || h.NS != NSServer {
		t.Fatal(h, err)
	}
	st, err = r.Next()
	if err != nil || st.Kind != KindPresence || st.NS != NSServer {
		t.Fatal(st, err)
	}

	// Reset clears a sticky error.
	r.Reset(strings.NewReader(c2sHeader + "<!-- -->"))
	r.Header()
	if _, err := r.Next(); condition(err) != "restricted-xml" {
		t.Fatal(err)
	}
	r.Reset(strings.NewReader(c2sHeader + "<presence/>"))
	if _, err := r.Header(); err != nil {
		t.Fatal(err)
	}
	if st, err := r.Next(); err != nil || st.Kind != KindPresence {
		t.Fatal(st, err)
	}

	// WebSocket: after SASL success the client opens again.
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(wsOpen))
		pw.Write([]byte("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>=</auth>"))
		pw.Write([]byte(wsOpen))
		pw.Write([]byte("<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>"))
		pw.Close()
	}()
	r.Reset(pr)
	if h, err := r.Header(); err != nil || !h.Framed {
		t.Fatal(h, err)
	}
	if st, err := r.Next(); err != nil || st.Name != "auth" {
		t.Fatal(st, err)
	}
	r.Reset(pr)
	if h, err := r.Header(); err != nil || !h.Framed || h.To != "example.com" {
		t.Fatal(h, err)
	}
	st, err = r.Next()
	if err != nil || st.Kind != KindIQ || st.PayloadNS != "urn:ietf:params:xml:ns:xmpp-bind" {
		t.Fatal(st, err)
	}
}

func TestHeaderTwice(t *testing.T) {
	r := NewReader(strings.NewReader(c2sHeader+c2sHeader), 0)
	if _, err := r.Header(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Header(); err == nil {
		t.Fatal("second Header without Reset succeeded")
	}
}

// TestNameTables checks the name rules against encoding/xml on a sample of
// runes (the generator checks all of them).
func TestNameTables(t *testing.T) {
	for r := rune(0x80); r < 0x31000; r += 13 {
		s := string(r)
		if !validNCName([]byte(s)) == (xmlCheck([]byte("<"+s+"/>")) == nil) {
			t.Errorf("%U as first name char: ours %v", r, validNCName([]byte(s)))
		}
		if !validNCName([]byte("a"+s)) == (xmlCheck([]byte("<a"+s+"/>")) == nil) {
			t.Errorf("%U as name char: ours %v", r, validNCName([]byte("a"+s)))
		}
	}
}

func TestAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip()
	}
	msg := []byte("<message to='romeo@example.net/orchard' from='juliet@example.com/balcony' id='ktx72v49' type='chat' xml:lang='en'><body>Art thou not Romeo, and a Montague?</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>")
	src := &repeater{head: []byte(c2sHeader), msg: msg}
	r := NewReader(src, 0)
	if _, err := r.Header(); err != nil {
		t.Fatal(err)
	}
	n := testing.AllocsPerRun(1000, func() {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if n > 4 {
		t.Errorf("%v allocations per small message, want <= 4", n)
	}
}

// repeater yields a header, then msg over and over.
type repeater struct {
	head, msg []byte
	off       int
}

func (s *repeater) Read(p []byte) (int, error) {
	if len(s.head) > 0 {
		n := copy(p, s.head)
		s.head = s.head[n:]
		return n, nil
	}
	n := 0
	for n < len(p) {
		c := copy(p[n:], s.msg[s.off:])
		n += c
		s.off = (s.off + c) % len(s.msg)
	}
	return n, nil
}

func BenchmarkNextMessage(b *testing.B) {
	msg := []byte("<message to='romeo@example.net/orchard' from='juliet@example.com/balcony' id='ktx72v49' type='chat' xml:lang='en'><body>Art thou not Romeo, and a Montague?</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>")
	src := &repeater{head: []byte(c2sHeader), msg: msg}
	r := NewReader(src, 0)
	if _, err := r.Header(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := r.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeAck decodes an XEP-0198 <a/> read after a header with
// only xmlns:stream and after one with the most prefixes allowed.
func BenchmarkDecodeAck(b *testing.B) {
	for _, n := range []int{0, MaxStreamPrefixes - 1} {
		b.Run(fmt.Sprint("prefixes=", n+1), func(b *testing.B) {
			r := NewReader(strings.NewReader(headerWithPrefixes(n)+"<a xmlns='urn:xmpp:sm:3' h='5'/>"), 0)
			if _, err := r.Header(); err != nil {
				b.Fatal(err)
			}
			st, err := r.Next()
			if err != nil {
				b.Fatal(err)
			}
			var v struct {
				H uint32 `xml:"h,attr"`
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := st.Decode(&v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkNextBig(b *testing.B) {
	msg := []byte("<message to='romeo@example.net/orchard' type='chat'><body>" + strings.Repeat("Art thou not Romeo, and a Montague? ", 400) + "</body></message>")
	src := &repeater{head: []byte(c2sHeader), msg: msg}
	r := NewReader(src, 0)
	if _, err := r.Header(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := r.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIdleReader reports the heap an idle Reader keeps after a
// header, a big stanza and a small one (figures for memory per session),
// and after Idle.
func BenchmarkIdleReader(b *testing.B) {
	in := c2sHeader + "<message><body>" + strings.Repeat("x", 20000) + "</body></message><presence/>"
	const n = 1000
	readers := make([]*Reader, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range readers {
		r := NewReader(strings.NewReader(in), 0)
		if _, err := r.Header(); err != nil {
			b.Fatal(err)
		}
		for j := 0; j < 2; j++ {
			if _, err := r.Next(); err != nil {
				b.Fatal(err)
			}
		}
		readers[i] = r
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/idle-reader")
	for _, r := range readers {
		r.Idle()
	}
	runtime.GC()
	runtime.GC() // the pool's victim cache
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/after-Idle")
	runtime.KeepAlive(readers)
	for i := 0; i < b.N; i++ {
	}
}

// Idle drops the read buffer only between elements; reading goes on as
// before.
func TestIdleDropsBufferBetweenElements(t *testing.T) {
	pr, pw := io.Pipe()
	r := NewReader(pr, 0)
	go func() {
		_, _ = pw.Write([]byte(c2sHeader))
		_, _ = pw.Write([]byte("<message id='1'><a xmlns='urn:x'/></message>"))
		_, _ = pw.Write([]byte("<message id='2'><a xmlns='urn:x'/>"))
		_, _ = pw.Write([]byte("</message><presence/>"))
	}()
	if _, err := r.Header(); err != nil {
		t.Fatal(err)
	}
	st, err := r.Next()
	if err != nil || st.ID != "1" {
		t.Fatalf("first: %v %v", st, err)
	}
	r.Idle()
	if r.small != nil || r.buf != nil {
		t.Fatal("Idle kept the buffer with nothing buffered")
	}
	st, err = r.Next()
	if err != nil || st.ID != "2" {
		t.Fatalf("after Idle: %v %v", st, err)
	}
	if st, err = r.Next(); err != nil || st.Name != "presence" {
		t.Fatalf("third: %v %v", st, err)
	}
	// A partial element keeps its buffer.
	r2 := NewReader(strings.NewReader(c2sHeader+"<message id='3'><body>part"), 0)
	if _, err := r2.Header(); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Next(); err == nil {
		t.Fatal("a partial element was returned")
	}
	r2.Idle()
	if r2.buf == nil || r2.r == r2.w {
		t.Fatal("Idle dropped a partial element")
	}
}
