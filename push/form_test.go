package push_test

import (
	"strconv"
	"strings"
	"testing"
)

// TestEnableFormRefused: a publish-options form that breaks XEP-0004 or
// is over the data form limits is refused with the right stanza error and
// nothing is stored; the same client's next, good enable is accepted.
func TestEnableFormRefused(t *testing.T) {
	w := start(t, nil, 0)
	bob := w.e.Login("bob", pw, "phone")
	x := func(fields string) string {
		return "<iq type='set' id='e'><enable xmlns='urn:xmpp:push:0' jid='apps.example' node='n'>" +
			"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>" +
			fields + "</x></enable></iq>"
	}
	var many strings.Builder
	for i := range 300 {
		many.WriteString("<field var='f" + strconv.Itoa(i) + "'/>")
	}
	for _, tc := range []struct{ name, iq, cond string }{
		{"a var given twice", x("<field var='secret'><value>a</value></field><field var='secret'><value>b</value></field>"), "bad-request"},
		{"FORM_TYPE given twice", x("<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>"), "bad-request"},
		{"an unknown field type", x("<field var='secret' type='secret-single'><value>a</value></field>"), "bad-request"},
		{"a boolean that is none", x("<field var='sandbox' type='boolean'><value>maybe</value></field>"), "bad-request"},
		{"300 fields", x(many.String()), "not-acceptable"},
	} {
		st, err := bob.IQ(timeout, tc.iq, "e")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if st.Type != "error" || !strings.Contains(string(st.Raw), "<"+tc.cond+" ") {
			t.Errorf("%s: want %s, got %s", tc.name, tc.cond, st.Raw)
		}
	}
	if regs := w.regs(bobJID); len(regs) != 0 {
		t.Fatalf("refused forms were stored: %+v", regs)
	}
	wantResult(t, iq(t, bob, "ok", enableXML("ok", "apps.example", "n", "secret", "s", "endpoint", "https://push.example/v1")))
	if regs := w.regs(bobJID); len(regs) != 1 || !strings.Contains(string(regs[0].Form), "<field var='endpoint'><value>https://push.example/v1</value></field>") {
		t.Fatalf("registrations %+v", regs)
	}
}
