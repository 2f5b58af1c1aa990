package c2s

import (
	"net/netip"
	"sync"
	"time"
)

// authLimiter counts failed authentications in one-minute windows, per
// source address and per (source address, account). There is deliberately
// no account-wide counter: it would let anyone lock the owner out by
// guessing from elsewhere (see README.md, "Failed logins").
type authLimiter struct {
	perIP, perIPAccount int
	mu                  sync.Mutex
	window              time.Time
	ips                 map[string]int
	pairs               map[ipAccount]int
}

type ipAccount struct{ ip, account string }

func newAuthLimiter(perIP, perIPAccount int) *authLimiter {
	return &authLimiter{perIP: perIP, perIPAccount: perIPAccount, ips: map[string]int{}, pairs: map[ipAccount]int{}}
}

// limitKey is the source a failure is charged to: the address itself for
// IPv4, its /64 for IPv6 (one host usually holds a whole /64).
func limitKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	if a = a.Unmap(); a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

func (l *authLimiter) roll() {
	if now := time.Now(); now.Sub(l.window) >= time.Minute {
		l.window = now
		clear(l.ips)
		clear(l.pairs)
	}
}

// fail counts a failed attempt from ip against account ("" when the
// attempt named no account).
func (l *authLimiter) fail(ip, account string) {
	ip = limitKey(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll()
	l.ips[ip]++
	if account != "" {
		l.pairs[ipAccount{ip, account}]++
	}
}

// blockedIP reports whether ip used up its failures for this window.
func (l *authLimiter) blockedIP(ip string) bool {
	ip = limitKey(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll()
	return l.perIP > 0 && l.ips[ip] >= l.perIP
}

// blockedFrom reports whether ip used up its failures against account for
// this window. Other addresses are not affected.
func (l *authLimiter) blockedFrom(ip, account string) bool {
	ip = limitKey(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll()
	return l.perIPAccount > 0 && l.pairs[ipAccount{ip, account}] >= l.perIPAccount
}

// bucket is a token bucket: rate tokens per second, up to burst.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newBucket(rate, burst float64) *bucket {
	if rate <= 0 {
		return nil
	}
	return &bucket{rate: rate, burst: burst, tokens: burst, last: time.Now()}
}

// take spends n tokens and returns how long to wait before going on.
func (b *bucket) take(n float64) time.Duration {
	if b == nil {
		return 0
	}
	now := time.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	b.tokens -= n
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}
