package servertest

import (
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/router"
)

// Signal returns a channel closed the first time on — a router lifecycle
// registrar such as Router.OnUnbound or Router.OnAvailable — reports the
// session of the full JID full. Register it before the event can happen.
func Signal(on func(func(router.Session)), full string) <-chan struct{} {
	ch := make(chan struct{})
	var once sync.Once
	on(func(s router.Session) {
		if s.JID().String() == full {
			once.Do(func() { close(ch) })
		}
	})
	return ch
}

// Wait fails the test unless ch is closed within a generous bound (the
// bound only ends a test that would otherwise hang).
func Wait(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}
