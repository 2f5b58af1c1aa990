package c2s

import (
	"sync"
	"time"
)

// authLimiter counts failed authentications per IP and per account in
// one-minute windows.
type authLimiter struct {
	perIP, perAccount int
	mu                sync.Mutex
	window            time.Time
	ips               map[string]int
	accounts          map[string]int
}

func newAuthLimiter(perIP, perAccount int) *authLimiter {
	return &authLimiter{perIP: perIP, perAccount: perAccount, ips: map[string]int{}, accounts: map[string]int{}}
}

func (l *authLimiter) roll() {
	if now := time.Now(); now.Sub(l.window) >= time.Minute {
		l.window = now
		clear(l.ips)
		clear(l.accounts)
	}
}

func (l *authLimiter) fail(ip, account string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll()
	l.ips[ip]++
	if account != "" {
		l.accounts[account]++
	}
}

func (l *authLimiter) blockedIP(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll()
	return l.perIP > 0 && l.ips[ip] >= l.perIP
}

func (l *authLimiter) blockedAccount(account string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll()
	return l.perAccount > 0 && l.accounts[account] >= l.perAccount
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
