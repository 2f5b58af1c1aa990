package turn_test

import (
	"net"
	"testing"
	"time"

	"github.com/xmppd/xmppd/jingle/turn"
)

// TestMaxAllocationsZeroIsUnlimited: <turn max-allocations-per-user="0"/>
// is documented as unlimited: one user makes more live allocations than
// the default 10, through the configuration path the server uses.
func TestMaxAllocationsZeroIsUnlimited(t *testing.T) {
	_, m := startEnv(t, func(c *turn.Config) { c.MaxAllocationsPerUser = 0 })
	srv := m.Server()
	user, pass, _ := m.Credentials("alice@example.org", time.Hour)
	addr := srv.UDPAddr().(*net.UDPAddr)
	s := service{Type: "turn", Host: addr.IP.String(), Port: addr.Port, Transport: "udp", Username: user, Password: pass}
	for range 11 {
		allocate(t, s, nil)
	}
	if st := srv.Stats(); st.Allocations != 11 || st.QuotaRefused != 0 {
		t.Fatalf("allocations %d, refused %d", st.Allocations, st.QuotaRefused)
	}
}
