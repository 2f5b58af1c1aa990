package dataform

import (
	"encoding/xml"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/beevik/etree"
)

// botConfig is the configuration form of XEP-0004 §9 (Example 2), as a
// service sends it.
const botConfig = `<x xmlns='jabber:x:data' type='form'>
  <title>Bot Configuration</title>
  <instructions>Fill out this form to configure your new bot!</instructions>
  <field type='hidden' var='FORM_TYPE'><value>jabber:bot</value></field>
  <field type='fixed'><value>Section 1: Bot Info</value></field>
  <field type='text-single' label='The name of your bot' var='botname'/>
  <field type='text-multi' label='Helpful description of your bot' var='description'/>
  <field type='boolean' label='Public bot?' var='public'><required/></field>
  <field type='text-private' label='Password for special access' var='password'/>
  <field type='fixed'><value>Section 2: Features</value></field>
  <field type='list-multi' label='What features will the bot support?' var='features'>
    <option label='Contests'><value>contests</value></option>
    <option label='News'><value>news</value></option>
    <option label='Polls'><value>polls</value></option>
    <option label='Reminders'><value>reminders</value></option>
    <option label='Search'><value>search</value></option>
    <value>news</value>
    <value>search</value>
  </field>
  <field type='fixed'><value>Section 3: Subscriber List</value></field>
  <field type='list-single' label='Maximum number of subscribers' var='maxsubs'>
    <value>20</value>
    <option label='10'><value>10</value></option>
    <option label='20'><value>20</value></option>
  </field>
  <field type='jid-multi' label='People to invite' var='invitelist'>
    <desc>Tell all your friends about your new bot!</desc>
  </field>
</x>`

// botSubmit is the submission of XEP-0004 §9 (Example 3).
const botSubmit = `<x xmlns='jabber:x:data' type='submit'>
  <field type='hidden' var='FORM_TYPE'><value>jabber:bot</value></field>
  <field type='text-single' var='botname'><value>The Jabber Google Bot</value></field>
  <field type='text-multi' var='description'>
    <value>This bot enables you to send requests to</value>
    <value>Google and receive the search results right</value>
    <value>in your Jabber client. It&apos; really cool!</value>
  </field>
  <field type='boolean' var='public'><value>0</value></field>
  <field type='text-private' var='password'><value>v3r0na</value></field>
  <field type='list-multi' var='features'><value>news</value><value>search</value></field>
  <field type='list-single' var='maxsubs'><value>50</value></field>
  <field type='jid-multi' var='invitelist'>
    <value>juliet@capulet.com</value>
    <value>benvolio@montague.net</value>
  </field>
</x>`

// searchResult is a result form with a table (XEP-0004 §3.4, Example 8).
const searchResult = `<x xmlns='jabber:x:data' type='result'>
  <title>Google Search: verona</title>
  <reported>
    <field var='name'/>
    <field var='url'/>
  </reported>
  <item>
    <field var='name'><value>Comune di Verona - Benvenuti nel sito ufficiale</value></field>
    <field var='url'><value>http://www.comune.verona.it/</value></field>
  </item>
  <item>
    <field var='name'><value>Universita degli Studi di Verona - Home Page</value></field>
    <field var='url'><value>http://www.univr.it/</value></field>
  </item>
</x>`

// The forms real clients send.
const (
	// Conversations' MAM catch-up query (XEP-0313), with every filter.
	conversationsMAM = `<x xmlns='jabber:x:data' type='submit'>
  <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>
  <field var='with'><value>juliet@capulet.lit</value></field>
  <field var='start'><value>2026-12-01T10:00:00.000Z</value></field>
  <field var='end'><value>2026-12-07T10:00:00.000Z</value></field>
  <field var='after-id'><value>28482-98726-73623</value></field>
  <field var='before-id'><value>09af3-cc343-b409f</value></field>
</x>`
	// An XEP-0357 enable with the app server's publish-options.
	pushEnable = `<x xmlns='jabber:x:data' type='submit'>
  <field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>
  <field var='secret'><value>eruio234vzxc2kla-91</value></field>
  <field var='endpoint'><value>https://push.example.com/v1/xyz</value></field>
</x>`
	// XEP-0060 publish-options as OMEMO clients send them.
	publishOptions = `<x xmlns='jabber:x:data' type='submit'>
  <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>
  <field var='pubsub#access_model'><value>open</value></field>
  <field var='pubsub#persist_items'><value>true</value></field>
  <field var='pubsub#max_items'><value>max</value></field>
</x>`
)

func TestParseExamples(t *testing.T) {
	f, err := Parse([]byte(botConfig))
	if err != nil {
		t.Fatal(err)
	}
	if f.Type != TypeForm || f.Title != "Bot Configuration" || len(f.Instructions) != 1 || f.FormType() != "jabber:bot" {
		t.Fatalf("form header: %+v", f)
	}
	if len(f.Fields) != 11 {
		t.Fatalf("%d fields, want 11", len(f.Fields))
	}
	if fl := f.Field("public"); fl == nil || fl.Type != Boolean || !fl.Required || fl.Label != "Public bot?" {
		t.Errorf("public: %+v", fl)
	}
	feat := f.Field("features")
	if feat == nil || len(feat.Options) != 5 || feat.Options[1] != (Option{"News", "news"}) || !reflect.DeepEqual(feat.Values, []string{"news", "search"}) {
		t.Errorf("features: %+v", feat)
	}
	if fl := f.Field("invitelist"); fl == nil || fl.Desc != "Tell all your friends about your new bot!" {
		t.Errorf("invitelist: %+v", fl)
	}
	if f.Fields[1].Type != Fixed || f.Fields[1].Var != "" || f.Fields[1].Values[0] != "Section 1: Bot Info" {
		t.Errorf("fixed: %+v", f.Fields[1])
	}

	s, err := Parse([]byte(botSubmit))
	if err != nil {
		t.Fatal(err)
	}
	if s.Type != TypeSubmit || s.FormType() != "jabber:bot" {
		t.Fatalf("submit header: %+v", s)
	}
	if v, err := s.Text("botname"); err != nil || v != "The Jabber Google Bot" {
		t.Errorf("botname = %q, %v", v, err)
	}
	if v := s.Values("description"); len(v) != 3 || v[2] != "in your Jabber client. It' really cool!" {
		t.Errorf("description = %q", v)
	}
	if v, err := s.Bool("public"); err != nil || v {
		t.Errorf("public = %v, %v", v, err)
	}
	if js, err := s.JIDs("invitelist"); err != nil || len(js) != 2 || js[1].String() != "benvolio@montague.net" {
		t.Errorf("invitelist = %v, %v", js, err)
	}
	if _, err := s.Text("features"); !isCond(err, BadRequest) {
		t.Errorf("Text of a two-valued field: %v, want bad-request", err)
	}
	if v, err := s.Text("absent"); err != nil || v != "" || s.Has("absent") {
		t.Errorf("absent field: %q, %v", v, err)
	}

	r, err := Parse([]byte(searchResult))
	if err != nil {
		t.Fatal(err)
	}
	if r.Type != TypeResult || len(r.Reported) != 2 || len(r.Items) != 2 || r.Items[1][1].Values[0] != "http://www.univr.it/" {
		t.Fatalf("result: %+v", r)
	}
}

func TestParseClientForms(t *testing.T) {
	f, err := Parse([]byte(conversationsMAM))
	if err != nil {
		t.Fatal(err)
	}
	if f.FormType() != "urn:xmpp:mam:2" {
		t.Errorf("FORM_TYPE %q", f.FormType())
	}
	if j, err := f.JID("with"); err != nil || j.String() != "juliet@capulet.lit" {
		t.Errorf("with = %v, %v", j, err)
	}
	for name, want := range map[string]string{"start": "2026-12-01T10:00:00.000Z", "end": "2026-12-07T10:00:00.000Z", "after-id": "28482-98726-73623", "before-id": "09af3-cc343-b409f"} {
		if v, err := f.Text(name); err != nil || v != want {
			t.Errorf("%s = %q, %v", name, v, err)
		}
	}

	p, err := Parse([]byte(pushEnable))
	if err != nil {
		t.Fatal(err)
	}
	// A FORM_TYPE without a type attribute is a context indicator in a
	// submission.
	if p.FormType() != "http://jabber.org/protocol/pubsub#publish-options" {
		t.Errorf("FORM_TYPE %q", p.FormType())
	}
	if v, _ := p.Text("secret"); v != "eruio234vzxc2kla-91" {
		t.Errorf("secret %q", v)
	}
	if v, _ := p.Text("endpoint"); v != "https://push.example.com/v1/xyz" {
		t.Errorf("endpoint %q", v)
	}

	o, err := Parse([]byte(publishOptions))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := o.Text("pubsub#access_model"); v != "open" {
		t.Errorf("access_model %q", v)
	}
	if v, err := o.Bool("pubsub#persist_items"); err != nil || !v {
		t.Errorf("persist_items %v %v", v, err)
	}
	if v, _ := o.Text("pubsub#max_items"); v != "max" {
		t.Errorf("max_items %q", v)
	}
}

func TestBool(t *testing.T) {
	for _, tc := range []struct {
		in      string
		v, fail bool
	}{
		{"1", true, false}, {"true", true, false}, {" true\n", true, false}, {"True", true, false},
		{"0", false, false}, {"false", false, false}, {"", false, false},
		{"yes", false, true}, {"2", false, true}, {"t", false, true},
	} {
		f := &Form{Fields: []Field{{Var: "b", Values: []string{tc.in}}}}
		v, err := f.Bool("b")
		if v != tc.v || (err != nil) != tc.fail {
			t.Errorf("Bool(%q) = %v, %v", tc.in, v, err)
		}
		if tc.fail && !isCond(err, BadRequest) {
			t.Errorf("Bool(%q): %v, want bad-request", tc.in, err)
		}
		// A typed boolean is checked when the form is parsed.
		_, err = Parse([]byte("<x xmlns='jabber:x:data' type='submit'><field var='b' type='boolean'><value>" + tc.in + "</value></field></x>"))
		if (err != nil) != tc.fail {
			t.Errorf("Parse boolean %q: %v", tc.in, err)
		}
	}
	if v, err := (&Form{}).Bool("absent"); v || err != nil {
		t.Errorf("absent boolean: %v %v", v, err)
	}
}

func isCond(err error, cond string) bool {
	var e *Error
	return errors.As(err, &e) && e.Condition == cond
}

func TestRefused(t *testing.T) {
	x := func(body string) string { return "<x xmlns='jabber:x:data' type='submit'>" + body + "</x>" }
	for _, tc := range []struct{ name, in, cond string }{
		{"not a form", "<x xmlns='jabber:x:oob'/>", BadRequest},
		{"unknown form type", "<x xmlns='jabber:x:data' type='bogus'/>", BadRequest},
		{"no var", x("<field><value>a</value></field>"), BadRequest},
		{"var given twice", x("<field var='a'><value>1</value></field><field var='a'><value>2</value></field>"), BadRequest},
		{"unknown field type", x("<field var='a' type='text-double'/>"), BadRequest},
		{"two values in text-single", x("<field var='a' type='text-single'><value>1</value><value>2</value></field>"), BadRequest},
		{"two values in boolean", x("<field var='a' type='boolean'><value>1</value><value>0</value></field>"), BadRequest},
		{"not a boolean", x("<field var='a' type='boolean'><value>yes</value></field>"), BadRequest},
		{"bad jid-single", x("<field var='a' type='jid-single'><value>@example.com</value></field>"), JIDMalformed},
		{"bad jid-multi", x("<field var='a' type='jid-multi'><value>ok@example.com</value><value>a@b@c</value></field>"), JIDMalformed},
		{"FORM_TYPE without value", x("<field var='FORM_TYPE' type='hidden'/>"), BadRequest},
		{"FORM_TYPE with two values", x("<field var='FORM_TYPE'><value>a</value><value>b</value></field>"), BadRequest},
		{"var given twice in an item", "<x xmlns='jabber:x:data' type='result'><item><field var='a'/><field var='a'/></item></x>", BadRequest},
		{"too many fields", x(strings.Repeat("<field var='a'/>", 1) + fields(DefaultFields)), NotAcceptable},
		{"too many items", "<x xmlns='jabber:x:data' type='result'>" + strings.Repeat("<item/>", DefaultFields+1) + "</x>", NotAcceptable},
		{"too many values", x("<field var='a'>" + strings.Repeat("<value/>", DefaultValues+1) + "</field>"), NotAcceptable},
		{"too many options", x("<field var='a'>" + strings.Repeat("<option><value/></option>", DefaultValues+1) + "</field>"), NotAcceptable},
		{"too many instructions", x(strings.Repeat("<instructions/>", DefaultValues+1)), NotAcceptable},
		{"value too long", x("<field var='a'><value>" + strings.Repeat("v", DefaultValueLen+1) + "</value></field>"), NotAcceptable},
		{"value too long in pieces", x("<field var='a'><value>" + strings.Repeat("v&amp;", DefaultValueLen/2+1) + "</value></field>"), NotAcceptable},
		{"var too long", x("<field var='" + strings.Repeat("v", DefaultValueLen+1) + "'/>"), NotAcceptable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in))
			if !isCond(err, tc.cond) {
				t.Fatalf("Parse: %v, want %s", err, tc.cond)
			}
			// The same through encoding/xml and etree.
			var holder struct {
				X *Form `xml:"jabber:x:data x"`
			}
			if err := xml.Unmarshal([]byte("<q>"+tc.in+"</q>"), &holder); !isCond(err, tc.cond) && tc.name != "not a form" {
				t.Errorf("UnmarshalXML: %v, want %s", err, tc.cond)
			}
			doc := etree.NewDocument()
			if err := doc.ReadFromString(tc.in); err != nil {
				t.Fatal(err)
			}
			if _, err := FromElement(doc.Root(), Limits{}); !isCond(err, tc.cond) {
				t.Errorf("FromElement: %v, want %s", err, tc.cond)
			}
		})
	}
}

// fields returns n distinct fields.
func fields(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("<field var='f" + strconv.Itoa(i) + "'/>")
	}
	return b.String()
}

func TestAccepted(t *testing.T) {
	x := func(body string) string { return "<x xmlns='jabber:x:data' type='submit'>" + body + "</x>" }
	for _, tc := range []struct{ name, in string }{
		{"no type attribute", "<x xmlns='jabber:x:data'><field var='a'/></x>"},
		{"fixed fields without var", "<x xmlns='jabber:x:data' type='form'><field type='fixed'><value>1</value></field><field type='fixed'><value>2</value></field></x>"},
		{"empty jid-single", x("<field var='a' type='jid-single'><value/></field>")},
		{"a field per limit", x(fields(DefaultFields))},
		{"values at the limit", x("<field var='a'>" + strings.Repeat("<value/>", DefaultValues) + "</field>")},
		{"foreign children skipped", x("<field var='a' type='list-multi'><validate xmlns='http://jabber.org/protocol/xdata-validate' datatype='xs:string'><open/></validate><value>1</value></field>")},
		{"same var in two items", "<x xmlns='jabber:x:data' type='result'><item><field var='a'/></item><item><field var='a'/></item></x>"},
		{"prefixed", "<d:x xmlns:d='jabber:x:data' type='submit'><d:field var='a'><d:value>1</d:value></d:field></d:x>"},
		{"a non-hidden FORM_TYPE is a field", x("<field var='FORM_TYPE' type='text-single'/>")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse([]byte(tc.in)); err != nil {
				t.Fatal(err)
			}
		})
	}
	f, _ := Parse([]byte("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='text-single'><value>a</value></field></x>"))
	if f.FormType() != "" {
		t.Errorf("a text-single FORM_TYPE is no context indicator (XEP-0068), got %q", f.FormType())
	}
	f, _ = Parse([]byte("<x xmlns='jabber:x:data'><field var='a' type='list-multi'><validate xmlns='http://jabber.org/protocol/xdata-validate'><value>no</value></validate><value>yes</value></field></x>"))
	if v := f.Values("a"); len(v) != 1 || v[0] != "yes" {
		t.Errorf("a value inside a foreign element was read: %q", v)
	}
}

// TestHostileSizeIsCheap: a form of 100,000 fields is refused after the
// limit, so parsing it costs what parsing a form just over the limit does.
func TestHostileSizeIsCheap(t *testing.T) {
	small := []byte("<x xmlns='jabber:x:data' type='submit'>" + fields(DefaultFields+1) + "</x>")
	huge := []byte("<x xmlns='jabber:x:data' type='submit'>" + fields(100000) + "</x>")
	allocs := func(b []byte) float64 {
		return testing.AllocsPerRun(3, func() {
			if _, err := Parse(b); !isCond(err, NotAcceptable) {
				t.Fatalf("Parse: %v", err)
			}
		})
	}
	a, h := allocs(small), allocs(huge)
	if h > a {
		t.Errorf("100,000 fields: %v allocations, a form just over the limit: %v", h, a)
	}
	var holder struct {
		X Form `xml:"jabber:x:data x"`
	}
	if err := xml.Unmarshal(append(append([]byte("<q>"), huge...), "</q>"...), &holder); !isCond(err, NotAcceptable) {
		t.Errorf("UnmarshalXML: %v", err)
	}
}

func TestSerialise(t *testing.T) {
	f := NewForm(TypeResult, "urn:xmpp:http:upload:0", Field{Var: "max-file-size", Values: []string{"104857600"}})
	want := "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:http:upload:0</value></field><field var='max-file-size'><value>104857600</value></field></x>"
	if got := string(f.Bytes()); got != want {
		t.Errorf("XEP-0128 form:\n got %s\nwant %s", got, want)
	}
	// Hostile text cannot leave its element or attribute.
	h := NewForm(TypeForm, "urn:x",
		Field{Var: "a'/><evil/>", Type: ListMulti, Label: "\"<&>'\n\t", Desc: "</desc><evil/>", Required: true,
			Values: []string{"]]><evil/>", "\x00\x01\r\n", "\xff\xfe"}, Options: []Option{{Label: "'", Value: "<"}}})
	h.Title, h.Instructions = "<title>", []string{"&amp;"}
	b := h.Bytes()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if doc.FindElement("//evil") != nil {
		t.Errorf("an element escaped: %s", b)
	}
	g, err := Parse(b)
	if err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	fl := g.Field("a'/><evil/>")
	if fl == nil || fl.Label != "\"<&>'\n\t" || fl.Desc != "</desc><evil/>" || !fl.Required || fl.Values[0] != "]]><evil/>" ||
		fl.Values[1] != "\uFFFD\uFFFD\r\n" || fl.Values[2] != "\uFFFD\uFFFD" || fl.Options[0] != (Option{"'", "<"}) || g.Title != "<title>" || g.Instructions[0] != "&amp;" {
		t.Errorf("round trip: %+v", g)
	}
}

func TestRoundTripExamples(t *testing.T) {
	for _, in := range []string{botConfig, botSubmit, searchResult, conversationsMAM, pushEnable, publishOptions} {
		f, err := Parse([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		g, err := Parse(f.Bytes())
		if err != nil {
			t.Fatalf("%s: %v", f.Bytes(), err)
		}
		if !reflect.DeepEqual(f, g) {
			t.Errorf("round trip changed the form:\n%+v\n%+v", f, g)
		}
		if !reflect.DeepEqual(f.Clone(), f) {
			t.Errorf("Clone differs")
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{botConfig, botSubmit, searchResult, conversationsMAM, pushEnable, publishOptions,
		"<x xmlns='jabber:x:data'/>", "<x xmlns='jabber:x:data' type='result'><reported/></x>"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		form, err := ParseLimits(b, Limits{Fields: 16, Values: 16, ValueLen: 256})
		if err != nil {
			return
		}
		out := form.Bytes()
		again, err := ParseLimits(out, Limits{Fields: 16, Values: 16, ValueLen: 1024})
		if err != nil {
			t.Fatalf("serialised form does not parse: %v\n%q\n%q", err, b, out)
		}
		if !reflect.DeepEqual(form, again) {
			t.Fatalf("parse → serialise → parse changed the form:\n%q\n%+v\n%+v", out, form, again)
		}
		if out2 := again.Bytes(); string(out2) != string(out) {
			t.Fatalf("serialisation not stable:\n%q\n%q", out, out2)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	var huge strings.Builder
	huge.WriteString("<x xmlns='jabber:x:data' type='submit'>")
	huge.WriteString(fields(100000))
	huge.WriteString("</x>")
	for _, bc := range []struct{ name, in string }{
		{"mam-query", conversationsMAM},
		{"bot-config", botConfig},
		{"hostile-100000-fields", huge.String()},
	} {
		in := []byte(bc.in)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = Parse(in)
			}
		})
	}
}

func BenchmarkAppendXML(b *testing.B) {
	f, err := Parse([]byte(botConfig))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = f.AppendXML(buf[:0])
	}
}
