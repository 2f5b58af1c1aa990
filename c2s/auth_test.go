package c2s_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/server/servertest"
)

var (
	hostA = net.ParseIP("127.0.0.1") // the stranger
	hostB = net.ParseIP("127.0.0.2") // the owner (Linux routes 127/8 to lo)
)

// authFrom makes one login attempt from ip and returns the SASL failure
// condition, or "" when the client logged in.
func authFrom(t *testing.T, e *servertest.Env, ip net.IP, user, password string) string {
	t.Helper()
	cfg := e.ClientConfig(user, password, "r")
	cfg.LocalIP = ip
	c, err := client.Dial(context.Background(), cfg)
	if err == nil {
		c.Close()
		return ""
	}
	var ae *client.AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("login %s from %s: %v", user, ip, err)
	}
	for _, cond := range []string{"not-authorized", "temporary-auth-failure"} {
		if strings.Contains(ae.Raw, "<"+cond+"/>") {
			return cond
		}
	}
	t.Fatalf("login %s from %s: %s", user, ip, ae.Raw)
	return ""
}

// TestStrangerCannotLockOwnerOut: wrong guesses against alice from one
// address throttle that address (for alice, then for everyone), never
// alice herself logging in from another address.
func TestStrangerCannotLockOwnerOut(t *testing.T) {
	e := servertest.Start(t, func(c *conf.Config) {
		c.Auth.IPFailuresPerMinute = 20
		c.Auth.AccountFailuresPerMinute = 10
	})
	e.AddUser("alice", "secret-pw")
	e.AddUser("bob", "secret-pw")
	for i := 0; i < 10; i++ {
		if got := authFrom(t, e, hostA, "alice", "guess"); got != "not-authorized" {
			t.Fatalf("guess %d: %s", i, got)
		}
	}
	// The stranger is throttled for alice: even the right password fails.
	if got := authFrom(t, e, hostA, "alice", "secret-pw"); got != "temporary-auth-failure" {
		t.Fatalf("right password from the guessing address: %q, want temporary-auth-failure", got)
	}
	// The owner, elsewhere, logs in.
	if got := authFrom(t, e, hostB, "alice", "secret-pw"); got != "" {
		t.Fatalf("owner from another address: %s", got)
	}
	// The stranger's address as a whole: bob still logs in from it until
	// the per-address limit is used up, then nobody does.
	if got := authFrom(t, e, hostA, "bob", "secret-pw"); got != "" {
		t.Fatalf("bob from the guessing address before its limit: %s", got)
	}
	for i := 0; i < 10; i++ {
		if got := authFrom(t, e, hostA, "nobody", "guess"); got != "not-authorized" {
			t.Fatalf("guess %d against an unknown user: %s", i, got)
		}
	}
	if got := authFrom(t, e, hostA, "bob", "secret-pw"); got != "temporary-auth-failure" {
		t.Fatalf("bob from an address over its limit: %q, want temporary-auth-failure", got)
	}
	if got := authFrom(t, e, hostB, "bob", "secret-pw"); got != "" {
		t.Fatalf("bob from another address: %s", got)
	}
}
