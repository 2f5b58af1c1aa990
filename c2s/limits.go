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
