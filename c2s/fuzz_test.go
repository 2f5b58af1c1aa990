package c2s

import (
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/wire"
)

// FuzzJID feeds arbitrary 'to' and 'from' values through what the stanza
// loop does with them: PRECIS parsing, and restamping the start tag. Whatever
// the input, the restamped element must parse again and carry exactly the
// stamped addresses.
func FuzzJID(f *testing.F) {
	for _, s := range []string{"alice@localhost", "alice@localhost/res", "localhost", "a@b@c", "Ω@例え.jp/ℌ", "", "@", "/", "x@y/z/w", "user@[::1]", "&amp;'\"<"} {
		f.Add(s, "bob@localhost/phone")
	}
	f.Fuzz(func(t *testing.T, to, from string) {
		j, err := parseTo(to, func(d string) bool { return d == "localhost" })
		if err != nil {
			return
		}
		if f, err := jid.Parse(from); err == nil {
			from = f.String()
		} else {
			from = "bob@localhost/phone"
		}
		st, err := wire.ParseElement([]byte("<message type='chat' id='1'><body>x</body></message>"), wire.NSClient)
		if err != nil {
			t.Fatal(err)
		}
		st.SetAddrs(from, j.String())
		again, err := wire.ParseElement(st.Raw, wire.NSClient)
		if err != nil {
			t.Fatalf("restamped element does not parse: %v: %q", err, st.Raw)
		}
		if again.To != j.String() || again.From != from {
			t.Fatalf("stamped to=%q from=%q, parsed back to=%q from=%q", j.String(), from, again.To, again.From)
		}
		// What we stamp must itself be a valid JID for the recipient.
		// (mellium's String is not always a fixpoint for exotic domain
		// spellings such as "0.。"; only validity is relied on.)
		if _, err := jid.Parse(j.String()); err != nil {
			t.Fatalf("prepared JID %q does not parse: %v", j.String(), err)
		}
	})
}
