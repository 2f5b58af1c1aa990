package push

import (
	"context"
	"sync"
	"testing"
	"time"
)

// For the external tests (package push_test), which run a whole server.

type (
	StandIn   = standIn
	VendorReq = vendorReq
)

func NewStandIn(t testing.TB) *StandIn { return newStandIn(t) }

func AppServerConfigFor(t testing.TB, s *StandIn) AppServerConfig { return appServerConfig(t, s) }

func (s *standIn) WaitAPNs(t testing.TB, n int) []VendorReq { t.Helper(); return s.waitAPNs(t, n) }
func (s *standIn) WaitFCM(t testing.TB, n int) []VendorReq  { t.Helper(); return s.waitFCM(t, n) }

// AnswerAPNs makes APNs answer requests for token with status and reason.
func (s *standIn) AnswerAPNs(token string, status int, reason string) {
	s.mu.Lock()
	s.apnsAnswer[token] = [2]any{status, reason}
	s.mu.Unlock()
}

const (
	TestBundle = testBundle
)

// SetIdle tells the stand-in how to wait for a server's push queues.
func (s *standIn) SetIdle(f func(context.Context) error) { s.idle = f }

// HoldAPNs makes APNs answers wait until release is called; requests are
// still recorded (and signalled) when they arrive.
func (s *standIn) HoldAPNs() (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.gate = ch
	s.mu.Unlock()
	var once sync.Once
	release = func() {
		once.Do(func() {
			s.mu.Lock()
			s.gate = nil
			s.mu.Unlock()
			close(ch)
		})
	}
	s.t.Cleanup(release)
	return release
}

// Arrived waits until n APNs requests arrived (answered or held), without
// waiting for the server's queues.
func (s *standIn) Arrived(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(s.APNs()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("APNs received %d requests, want %d", len(s.APNs()), n)
		}
		select {
		case <-s.notify:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// AccountsIdle returns when no account's notifications wait to be counted.
func (m *Module) AccountsIdle(ctx context.Context) error { return m.accounts.wait(ctx) }
