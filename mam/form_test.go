package mam_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/client"
)

// TestQueryFormRefused: query forms that break XEP-0004 or are over the
// data form limits are answered with the right stanza error, and the
// session goes on (a later query from the same session is answered).
func TestQueryFormRefused(t *testing.T) {
	e := start(t, nil)
	a := online(t, e, "alice", "phone")
	b := online(t, e, "bob", "laptop")
	_ = a.Send(chat("bob@localhost", "m1", "hello"))
	expectMsg(t, b, withID("m1"))

	form := func(fields string) string {
		return "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>" + fields + "</x>"
	}
	var many strings.Builder
	for i := range 10000 { // about 200 KB: under the stanza limit
		many.WriteString("<field var='f" + strconv.Itoa(i) + "'/>")
	}
	for i, tc := range []struct{ name, x, cond string }{
		{"field without var", form("<field><value>bob@localhost</value></field>"), "bad-request"},
		{"unknown field type", form("<field var='with' type='jid-double'><value>bob@localhost</value></field>"), "bad-request"},
		{"boolean that is none", form("<field var='include-groupchat' type='boolean'><value>t</value></field>"), "bad-request"},
		{"bad typed JID", form("<field var='with' type='jid-single'><value>@localhost</value></field>"), "jid-malformed"},
		{"10,000 fields", form(many.String()), "not-acceptable"},
		{"value over 16 KiB", form("<field var='{urn:example}fulltext'><value>" + strings.Repeat("x", 17<<10) + "</value></field>"), "not-acceptable"},
	} {
		id := "bad" + strconv.Itoa(i)
		st, err := a.IQ(timeout, "<iq type='set' id='"+id+"'><query xmlns='urn:xmpp:mam:2' queryid='"+id+"'>"+tc.x+"</query></iq>", id)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if st.Type != "error" || !client.Contains(st, "<"+tc.cond+" ") {
			t.Errorf("%s: want %s, got %.300s", tc.name, tc.cond, st.Raw)
		}
	}
	// The session still works, and a fixed field (text for people) is
	// no filter.
	rs, fin, errSt := query(t, a, "", [][2]string{{"with", "bob@localhost"}}, "", "")
	if errSt != nil || fin == nil || len(rs) != 1 || *rs[0].Msg.Body != "hello" {
		t.Fatalf("query after the refusals: %d results, %v", len(rs), errSt)
	}
	st, err := a.IQ(timeout, "<iq type='set' id='fx'><query xmlns='urn:xmpp:mam:2' queryid='fx'>"+
		form("<field type='fixed'><value>Filters</value></field><field var='with' type='jid-single'><value>bob@localhost</value></field>")+"</query></iq>", "fx")
	if err != nil || st.Type != "result" {
		t.Fatalf("query with a fixed field: %v %v", st, err)
	}
}
