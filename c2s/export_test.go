package c2s

import "testing"

// OnBOSHHolding calls f with the session id each time a BOSH request is
// held with nothing to send, until the test ends.
func OnBOSHHolding(t testing.TB, f func(sid string)) {
	boshHolding.Store(&f)
	t.Cleanup(func() { boshHolding.Store(nil) })
}

// OnBOSHFull calls f with the session id each time a writer waits for a
// BOSH client to fetch what is queued for it, until the test ends.
func OnBOSHFull(t testing.TB, f func(sid string)) {
	boshFull.Store(&f)
	t.Cleanup(func() { boshFull.Store(nil) })
}

// OnHoldPause calls f with the session's JID each time a session stops
// reading because limits unacked-writes of its stanzas wait for durable
// writes, until the test ends.
func OnHoldPause(t testing.TB, f func(jid string)) {
	holdPaused.Store(&f)
	t.Cleanup(func() { holdPaused.Store(nil) })
}

// OnRestack calls f each time an idle link's reading moves to a fresh
// goroutine, until the test ends.
func OnRestack(t testing.TB, f func()) {
	restackHook.Store(&f)
	t.Cleanup(func() { restackHook.Store(nil) })
}

// OnIdleCheck calls f with the session's JID each time its keepalive timer
// fires, until the test ends.
func OnIdleCheck(t testing.TB, f func(jid string)) {
	idleChecked.Store(&f)
	t.Cleanup(func() { idleChecked.Store(nil) })
}
