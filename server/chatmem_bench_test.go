package server_test

import (
	"runtime"
	"strconv"
	"testing"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/wire"
)

// BenchmarkChatMemory measures what chat costs in memory per session with
// the archive on and off (issue: 23.1 KiB per session with MAM, 17.0
// without, in the chat scenario). 1000 sessions log in over plain TCP and
// each sends b.N rounds of one 64-byte message to the next one; reported
// per session: live-B (Go heap live after GC, chat minus before) and
// end-B (heap in use right after the chat, before a collection: live data
// plus the garbage of the message path, which sets how far the heap, and
// with it RSS, grows).
// Clients run in the same process; their part is the same in both runs.
//
//	go test -run XXX -bench ChatMemory -benchtime 3x ./server/
func BenchmarkChatMemory(b *testing.B) {
	for _, mam := range []bool{true, false} {
		b.Run("mam="+strconv.FormatBool(mam), func(b *testing.B) { benchChatMemory(b, mam, 1000) })
	}
}

func memNow(gc bool) runtime.MemStats {
	if gc {
		runtime.GC()
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

func benchChatMemory(b *testing.B, mam bool, k int) {
	e := servertest.Start(b, func(c *conf.Config) {
		c.Auth.RequireTLS = false
		c.Limits.MaxConnectionsPerIP = 0
		if !mam {
			c.Module("mam").(interface{ SetEnabled(bool) }).SetEnabled(false)
		}
	})
	cs := make([]*client.Client, k)
	for i := range cs {
		e.AddUser("u"+strconv.Itoa(i), "secret-pw")
	}
	for i := range cs {
		cfg := e.ClientConfig("u"+strconv.Itoa(i), "secret-pw", "r")
		cfg.Mode, cfg.Addr, cfg.TLS, cfg.Mechanism = client.Plain, e.Plain, nil, "PLAIN"
		cs[i] = e.LoginWith(cfg)
		_ = cs[i].Send("<presence/>")
	}
	before := memNow(true)
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for i, c := range cs {
			_ = c.Send("<message type='chat' to='u" + strconv.Itoa((i+1)%k) + "@localhost/r'><body>0123456789012345678901234567890123456789012345678901234567890123</body></message>")
		}
		for _, c := range cs {
			if _, err := c.Expect(timeout, client.Kind(wire.KindMessage)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	peak := memNow(false)
	live := memNow(true)
	b.ReportMetric(float64(int64(live.HeapInuse)-int64(before.HeapInuse))/float64(k), "live-B/session")
	b.ReportMetric(float64(int64(peak.HeapInuse)-int64(before.HeapInuse))/float64(k), "end-B/session")
}
