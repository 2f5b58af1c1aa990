package server_test

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/wire"
)

// BenchmarkChatMemory measures what chat costs in memory with the archive
// on and off (issue: 23.1 KiB per session with MAM, 17.0 without, in the
// chat scenario), at two session counts that move the same number of
// messages (chatMessages: each session sends chatMessages/sessions rounds
// of one 64-byte message to the next one), so the archive does the same
// work at both: a cost that is the same at both counts is fixed (the
// archive's queue, SQLite's caches), one that grows with them is per
// session. Each b.N iteration is one such chat on a fresh server.
// Reported, chat minus before (after the logins), per session and in all:
//   - live-B/session: Go heap live after a GC;
//   - end-B/session: Go heap in use right after the chat, before a GC (live
//     data plus the garbage of the message path, which sets how far the
//     heap, and with it RSS, grows);
//   - stack-B/session: goroutine stacks;
//   - rss-B/session, rss-KiB: the process's resident memory, which also
//     holds what SQLite (C) allocates;
//   - go-KiB: what the Go runtime holds from the system at the end of the
//     chat (Sys − HeapReleased): rss-KiB − go-KiB is memory outside Go
//     (SQLite's page caches).
//
// Clients run in the same process; their part is the same with and
// without the archive, so the archive's cost is the difference of the
// mam=true and mam=false rows at one count.
//
// Servers of a run stay up until its end, so run each row in its own
// process, as bench/chatmem.sh does:
//
//	go test -run XXX -bench 'ChatMemory/sessions=2000/mam=true$' -benchtime 1x ./server/
func BenchmarkChatMemory(b *testing.B) {
	for _, k := range []int{500, 2000} {
		for _, mam := range []bool{true, false} {
			b.Run("sessions="+strconv.Itoa(k)+"/mam="+strconv.FormatBool(mam), func(b *testing.B) {
				benchChatMemory(b, mam, k)
			})
		}
	}
}

// chatMessages is what one chat of BenchmarkChatMemory sends: 80,000
// archive rows, enough for the archive to merge its tail into the main
// table several times (every 16,384 rows), as a long chat does.
const chatMessages = 40000

func memNow(gc bool) runtime.MemStats {
	if gc {
		runtime.GC()
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

// rssBytes is this process's resident memory (0 if /proc cannot say).
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v << 10
		}
	}
	return 0
}

func benchChatMemory(b *testing.B, mam bool, k int) {
	var live, end, stack, rss, goMem float64
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		l, e, s, r, g := chatMemoryOnce(b, mam, k)
		live, end, stack, rss, goMem = live+l, end+e, stack+s, rss+r, goMem+g
	}
	f := float64(b.N)
	b.ReportMetric(live/f/float64(k), "live-B/session")
	b.ReportMetric(end/f/float64(k), "end-B/session")
	b.ReportMetric(stack/f/float64(k), "stack-B/session")
	b.ReportMetric(rss/f/float64(k), "rss-B/session")
	b.ReportMetric(rss/f/1024, "rss-KiB")
	b.ReportMetric(goMem/f/1024, "go-KiB")
}

// chatMemoryOnce runs one chat on a fresh server and returns the growth
// (bytes) of the live heap, the heap in use at the end, the stacks and RSS.
func chatMemoryOnce(b *testing.B, mam bool, k int) (live, end, stack, rss, goMem float64) {
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
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	// Return what earlier runs in this process freed to the system, so
	// that RSS grows by what this chat needs.
	debug.FreeOSMemory()
	before := memNow(true)
	rss0 := rssBytes()
	b.StartTimer()
	for round := 0; round < chatMessages/k; round++ {
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
	rss1 := rssBytes()
	after := memNow(true)
	d := func(a, b uint64) float64 { return float64(int64(a) - int64(b)) }
	return d(after.HeapInuse, before.HeapInuse), d(peak.HeapInuse, before.HeapInuse),
		d(after.StackInuse, before.StackInuse), float64(rss1 - rss0),
		d(peak.Sys-peak.HeapReleased, before.Sys-before.HeapReleased)
}
