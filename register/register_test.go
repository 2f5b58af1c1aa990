package register_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/server/servertest"
)

const timeout = 10 * time.Second

func cfgFor(e *servertest.Env, user, pw string) client.Config {
	return client.Config{Addr: e.StartTLS, Domain: e.Domain, Username: user, Password: pw, Resource: "r",
		TLS: &tls.Config{ServerName: e.Domain, InsecureSkipVerify: true}} //nolint:gosec // self-signed
}

func TestInBandRegistration(t *testing.T) {
	e := servertest.Start(t, func(c *conf.Config) {
		c.Registration.Enabled = true
		c.Registration.PerIPPerHour = 2
	})
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := client.Register(ctx, cfgFor(e, "carol", "carol-password")); err != nil {
		t.Fatal(err)
	}
	// The new account logs in.
	c := e.LoginWith(cfgFor(e, "carol", "carol-password"))
	if c.JID != "carol@localhost/r" {
		t.Fatalf("bound %q", c.JID)
	}
	// Taken names, short passwords, bad names and floods are refused.
	for _, tc := range []struct{ user, pw, cond string }{
		{"carol", "another-password", "conflict"},
		{"dave", "short", "not-acceptable"},
		{"bad@name", "long-enough-pw", "jid-malformed"},
		{"erin", "long-enough-pw", "resource-constraint"}, // third from this IP this hour
	} {
		err := client.Register(ctx, cfgFor(e, tc.user, tc.pw))
		if err == nil || !strings.Contains(err.Error(), "<"+tc.cond) {
			t.Errorf("%s: want %s, got %v", tc.user, tc.cond, err)
		}
	}
	// Password change in band, then removal.
	if st, err := c.IQ(timeout, "<iq type='set' id='pw'><query xmlns='jabber:iq:register'><username>carol</username><password>new-password-1</password></query></iq>", "pw"); err != nil || st.Type != "result" {
		t.Fatalf("password change: %v %v", err, st)
	}
	c.Close()
	_, err := client.Dial(ctx, cfgFor(e, "carol", "carol-password"))
	var ae *client.AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("old password still works: %v", err)
	}
	c = e.LoginWith(cfgFor(e, "carol", "new-password-1"))
	if st, err := c.IQ(timeout, "<iq type='set' id='rm'><query xmlns='jabber:iq:register'><remove/></query></iq>", "rm"); err != nil || st.Type != "result" {
		t.Fatalf("removal: %v %v", err, st)
	}
	if st, err := c.Next(timeout); err != nil || !client.Contains(st, "<not-authorized") {
		t.Fatalf("session of the removed account not ended: %v %v", err, st)
	}
	if _, err := client.Dial(ctx, cfgFor(e, "carol", "new-password-1")); !errors.As(err, &ae) {
		t.Fatalf("removed account still logs in: %v", err)
	}
}

func TestRegistrationOffByDefault(t *testing.T) {
	e := servertest.Start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := client.Register(ctx, cfgFor(e, "mallory", "long-enough-pw"))
	if err == nil {
		t.Fatal("registration worked while disabled")
	}
	var ne net.Error
	if errors.As(err, &ne) {
		t.Fatalf("want a stream or stanza error, got network error %v", err)
	}
}
