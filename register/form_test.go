package register_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/dataform"
	"github.com/xmppd/xmppd/server/servertest"
)

// TestRegistrationForm: a get offers the XEP-0077 §6 data form beside the
// legacy fields; an account can be created by submitting it, its password
// changed with the changepassword form; forms that break XEP-0004 get the
// right error and create nothing.
func TestRegistrationForm(t *testing.T) {
	e := servertest.Start(t, func(c *conf.Config) { c.Registration.Enabled = true })
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	submit := func(id, formType, fields string) string {
		return "<iq type='set' id='" + id + "'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>" +
			"<field var='FORM_TYPE' type='hidden'><value>" + formType + "</value></field>" + fields + "</x></query></iq>"
	}
	field := func(name, value string) string {
		return "<field var='" + name + "'><value>" + value + "</value></field>"
	}
	sts, err := client.PreAuth(ctx, cfgFor(e, "", ""),
		"<iq type='get' id='g'><query xmlns='jabber:iq:register'/></iq>",
		submit("twice", "jabber:iq:register", field("username", "dave")+field("username", "erin")+field("password", "long-enough-pw")),
		submit("typed", "jabber:iq:register", "<field var='username' type='text-single'><value>dave</value><value>erin</value></field>"+field("password", "long-enough-pw")),
		submit("other", "urn:example:other", field("username", "dave")+field("password", "long-enough-pw")),
		submit("short", "jabber:iq:register", field("username", "dave")+field("password", "short")),
		submit("ok", "jabber:iq:register", field("username", "dave")+field("password", "long-enough-pw")),
	)
	if err != nil {
		t.Fatal(err)
	}
	// The form: legacy fields and the data form.
	var v struct {
		Query struct {
			Username *string        `xml:"username"`
			Form     *dataform.Form `xml:"jabber:x:data x"`
		} `xml:"jabber:iq:register query"`
	}
	q := &v.Query
	if err := sts[0].Decode(&v); err != nil || q.Username == nil || q.Form == nil {
		t.Fatalf("get: %s (%v)", sts[0].Raw, err)
	}
	if q.Form.Type != dataform.TypeForm || q.Form.FormType() != "jabber:iq:register" ||
		q.Form.Field("username") == nil || !q.Form.Field("username").Required || q.Form.Field("password").Type != dataform.TextPrivate {
		t.Errorf("registration form: %s", sts[0].Raw)
	}
	for i, cond := range []string{"bad-request", "bad-request", "bad-request", "not-acceptable"} {
		if st := sts[1+i]; st.Type != "error" || !client.Contains(st, "<"+cond+" ") {
			t.Errorf("%s: want %s, got %s", st.ID, cond, st.Raw)
		}
	}
	if st := sts[5]; st.Type != "result" {
		t.Fatalf("submitted form: %s", st.Raw)
	}
	c := e.LoginWith(cfgFor(e, "dave", "long-enough-pw"))
	// Only dave was created.
	if _, err := client.Dial(ctx, cfgFor(e, "erin", "long-enough-pw")); !errors.As(err, new(*client.AuthError)) {
		t.Fatalf("erin: %v", err)
	}
	// Password change with the changepassword form (XEP-0077 §3.3).
	st, err := c.IQ(timeout, submit("pw", "jabber:iq:register:changepassword", field("username", "dave")+field("password", "new-password-1")), "pw")
	if err != nil || st.Type != "result" {
		t.Fatalf("password change by form: %v %v", err, st)
	}
	st, err = c.IQ(timeout, submit("pw2", "jabber:iq:register:changepassword", field("username", "dave")+"<field var='password' type='text-private'><value>a</value><value>b</value></field>"), "pw2")
	if err != nil || st.Type != "error" || !strings.Contains(string(st.Raw), "<bad-request ") {
		t.Fatalf("two passwords: %v %v", err, st)
	}
	c.Close()
	e.LoginWith(cfgFor(e, "dave", "new-password-1"))
}
