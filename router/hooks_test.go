package router

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/xmppd/xmppd/wire"
)

// A module may register a callback or a hook while sessions come and go and
// stanzas are routed; under -race this test reports a read of the lists
// outside the hook lock. Every callback registered before a call runs in it.
func TestRegisterWhileRunning(t *testing.T) {
	r, phone, _, _, _ := world(t)
	const n = 200
	var calls atomic.Int64
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range n {
			r.OnUnbound(func(Session) { calls.Add(1) })
			r.OnBound(func(Session) {})
			r.OnOutbound(wire.KindMessage, func(*Context) bool { return false })
			r.OnOffline(func(*Context) bool { return false })
		}
	}()
	go func() {
		defer wg.Done()
		for range n {
			r.SessionUnbound(phone)
			r.SessionBound(phone)
			route(t, r, phone, "<message to='bob@localhost' type='chat'><body>x</body></message>")
		}
	}()
	wg.Wait()
	before := calls.Load()
	r.SessionUnbound(phone)
	if got := calls.Load() - before; got != n {
		t.Fatalf("one unbind ran %d callbacks, want the %d registered", got, n)
	}
}
