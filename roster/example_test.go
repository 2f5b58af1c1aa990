package roster_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/xmppd/xmppd/roster"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

type noAccounts struct{}

func (noAccounts) Exists(context.Context, string) bool { return false }

// The module registers itself on the router; c2s advertises its stream
// features after binding.
func Example() {
	r := router.New(slog.Default(), func(d string) bool { return d == "example.com" }, noAccounts{})
	var store storage.Roster // storage/sqlite's Store.Roster() in the server
	m := roster.New(r, store, slog.Default(), roster.Options{MaxItems: 1000, Versioning: true})
	fmt.Println(string(m.StreamFeatures()))
	// Output: <ver xmlns='urn:xmpp:features:rosterver'/><sub xmlns='urn:xmpp:features:pre-approval'/>
}
