package wire_test

import (
	"testing"

	"github.com/xmppd/xmppd/wire"
)

func TestParts(t *testing.T) {
	for _, c := range []struct {
		in    string
		depth int
		want  []string
	}{
		{`<iq type='set' id='1'><vCard xmlns='vcard-temp'><FN>A &amp; B</FN><PHOTO/></vCard></iq>`, 1,
			[]string{`<vCard xmlns='vcard-temp'><FN>A &amp; B</FN><PHOTO/></vCard>`}},
		// Prefixes declared on the iq or the element itself are resolved.
		{`<iq type='set' id='1' xmlns:v='vcard-temp'><v:vCard><v:FN xml:lang='en'>A</v:FN><x xmlns='other' a='1'/></v:vCard></iq>`, 1,
			[]string{`<vCard xmlns='vcard-temp'><FN xml:lang='en'>A</FN><x xmlns='other' a='1'/></vCard>`}},
		{`<iq type='set' id='1'><p:a xmlns:p='urn:a' xmlns:q='urn:q' q:attr='v'><b/></p:a></iq>`, 1,
			[]string{`<a xmlns='urn:a' xmlns:ns1='urn:q' ns1:attr='v'><b xmlns='jabber:client'/></a>`}},
		// Depth 2: the children of the first child only.
		{`<iq type='set' id='1'><query xmlns='jabber:iq:private'> <a xmlns='x'>t</a><b xmlns='y'/> </query><other/></iq>`, 2,
			[]string{`<a xmlns='x'>t</a>`, `<b xmlns='y'/>`}},
	} {
		st, err := wire.ParseElement([]byte(c.in), wire.NSClient)
		if err != nil {
			t.Fatal(err)
		}
		parts, err := st.Parts(c.depth)
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		var got []string
		for _, e := range parts {
			got = append(got, string(e.XML))
		}
		if len(got) != len(c.want) {
			t.Fatalf("%s: got %q, want %q", c.in, got, c.want)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s:\n got %s\nwant %s", c.in, got[i], c.want[i])
			}
		}
	}
}
