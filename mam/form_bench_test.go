package mam

import (
	"strconv"
	"strings"
	"testing"
)

// BenchmarkParseQuery: reading a query form, the one Conversations sends
// and a hostile one of 10,000 fields (about 200 KB, under the stanza
// limit).
func BenchmarkParseQuery(b *testing.B) {
	m := &Module{cfg: *DefaultConfig()}
	head := "<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2' queryid='f'><x xmlns='jabber:x:data' type='submit'>" +
		"<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>"
	var many strings.Builder
	for i := range 10000 {
		many.WriteString("<field var='f" + strconv.Itoa(i) + "'/>")
	}
	for _, bc := range []struct{ name, iq string }{
		{"conversations", head + "<field var='with'><value>juliet@capulet.lit</value></field>" +
			"<field var='start'><value>2026-12-01T10:00:00.000Z</value></field>" +
			"<field var='after-id'><value>" + FormatID(1700000000000000) + "</value></field></x>" +
			"<set xmlns='http://jabber.org/protocol/rsm'><max>50</max></set></query></iq>"},
		{"hostile-10000-fields", head + many.String() + "</x></query></iq>"},
	} {
		st := parse(b, bc.iq)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = m.parseQuery(st, "romeo@montague.lit")
			}
		})
	}
}
