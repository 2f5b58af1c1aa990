package roster

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/router/routertest"
)

// brokenAccounts is an account store whose database cannot answer.
type brokenAccounts struct{}

func (brokenAccounts) Exists(context.Context, string) bool { return false }
func (brokenAccounts) Check(context.Context, string) (bool, error) {
	return false, errors.New("database is locked")
}

// TestStorageFailureIsNotUnsubscribed: when the account check fails, a
// contact's probe and subscription request are not answered as if the
// account did not exist ("unsubscribed" would make the contact's server
// drop a subscription that still stands); the request gets a wait error
// the contact can retry on.
func TestStorageFailureIsNotUnsubscribed(t *testing.T) {
	e := newEnvWith(t, Options{}, newMemRoster("alice@example.com", "bob@example.com"), brokenAccounts{})
	// A remote contact's probe: no answer rather than a false "unsubscribed".
	e.deliver("<presence type='probe' from='carol@spy.example' to='alice@example.com'/>")
	for _, st := range e.spied() {
		if st.Type == "unsubscribed" {
			t.Fatalf("storage failure answered as no such user: %s", st.Raw)
		}
	}
	// A local contact's request: a wait error, never "unsubscribed".
	bob := e.bind("bob@example.com/phone")
	e.send(bob, "<presence/>") // available: errors to his bare JID reach him
	bob.Take(t)
	e.send(bob, "<presence type='subscribe' id='s1' to='alice@example.com'/>")
	var errs int
	for _, st := range bob.Take(t) {
		switch {
		case st.Type == "unsubscribed":
			t.Fatalf("storage failure answered as no such user: %s", st.Raw)
		case st.Type == "error":
			if st.ID != "s1" || routertest.Condition(st) != "internal-server-error" || !strings.Contains(string(st.Raw), "type='wait'") {
				t.Fatalf("want a wait internal-server-error for s1, got %s", st.Raw)
			}
			errs++
		}
	}
	if errs != 1 {
		t.Fatalf("want one error for the subscription request, got %d", errs)
	}
}
