package c2s

import "testing"

func TestAuthLimiterKeys(t *testing.T) {
	l := newAuthLimiter(2, 1)
	l.fail("2001:db8:1:2::a", "alice@localhost")
	// The same /64 shares the counters; another /64 does not.
	if !l.blockedFrom("2001:db8:1:2::b", "alice@localhost") {
		t.Error("another address of the same IPv6 /64 is not throttled for alice")
	}
	if l.blockedFrom("2001:db8:1:3::a", "alice@localhost") || l.blockedIP("2001:db8:1:3::a") {
		t.Error("another /64 is throttled")
	}
	l.fail("2001:db8:1:2::c", "")
	if !l.blockedIP("2001:db8:1:2::d") {
		t.Error("the /64 is not throttled after two failures")
	}
	// IPv4 (and IPv4-mapped IPv6) addresses count one by one.
	l.fail("192.0.2.1", "bob@localhost")
	if l.blockedFrom("192.0.2.2", "bob@localhost") || !l.blockedFrom("::ffff:192.0.2.1", "bob@localhost") {
		t.Error("IPv4 keys")
	}
	// Nothing is kept per account alone.
	if l.blockedFrom("198.51.100.1", "alice@localhost") {
		t.Error("alice is throttled from an address that never failed")
	}
}
