package push

import "testing"

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
