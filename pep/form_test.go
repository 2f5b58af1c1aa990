package pep_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestFormsRefused: publish-options and node configurations that break
// XEP-0004 or are over the data form limits are refused (publish-options
// with bad-request + invalid-options, XEP-0060 §7.1.5; configurations with
// the form's condition) and change nothing.
func TestFormsRefused(t *testing.T) {
	e := start(t, "alice")
	a := e.login("alice", "phone")
	const node = "urn:example:forms"
	publish(t, a, node, "1", "<data xmlns='urn:example:forms'/>", "pubsub#access_model", "whitelist")

	opts := func(fields string) string {
		return "<iq type='set'><pubsub xmlns='" + nsPubSub + "'><publish node='" + node + "'><item id='2'><data xmlns='urn:example:forms'/></item></publish>" +
			"<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>" + nsPubSub + "#publish-options</value></field>" +
			fields + "</x></publish-options></pubsub></iq>"
	}
	configure := func(fields string) string {
		return "<iq type='set'><pubsub xmlns='" + nsOwner + "'><configure node='" + node + "'><x xmlns='jabber:x:data' type='submit'>" +
			"<field var='FORM_TYPE' type='hidden'><value>" + nsPubSub + "#node_config</value></field>" + fields + "</x></configure></pubsub></iq>"
	}
	var many strings.Builder
	for i := range 300 {
		many.WriteString("<field var='x-" + strconv.Itoa(i) + "'/>")
	}
	// A var given twice: the node says whitelist, the second copy of the
	// precondition says open.
	twice := "<field var='pubsub#access_model'><value>whitelist</value></field><field var='pubsub#access_model'><value>open</value></field>"
	for _, tc := range []struct{ name, fields string }{
		{"a var given twice", twice},
		{"an unknown field type", "<field var='pubsub#access_model' type='list-double'><value>whitelist</value></field>"},
		{"a field without var", "<field><value>whitelist</value></field>"},
		{"300 fields", many.String()},
	} {
		r := iq(t, a, "error", opts(tc.fields))
		isError(t, r, "modify", "bad-request", "invalid-options")
	}
	for _, tc := range []struct{ name, fields, cond string }{
		{"a var given twice", twice, "bad-request"},
		{"an unknown field type", "<field var='pubsub#title' type='text-double'><value>t</value></field>", "bad-request"},
		{"a typed boolean that is none", "<field var='pubsub#notify_delete' type='boolean'><value>yes</value></field>", "bad-request"},
		{"300 fields", many.String(), "not-acceptable"},
	} {
		r := iq(t, a, "error", configure(tc.fields))
		isError(t, r, "modify", tc.cond, "")
	}
	// Nothing changed: one item, still whitelist.
	if got := itemIDs(items(t, a, "", node, "/>")); !slices.Equal(got, []string{"1"}) {
		t.Fatalf("items = %q", got)
	}
	r := iq(t, a, "result", "<iq type='get'><pubsub xmlns='"+nsOwner+"'><configure node='"+node+"'/></pubsub></iq>")
	has(t, r, "<field var='pubsub#access_model' type='list-single' label='Who may retrieve items'><value>whitelist</value>")
}
