package c2s_test

import (
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	gosync "sync"
	"syscall"
	"testing"
	"time"

	"github.com/xmppd/xmppd/c2s"
	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/server/servertest"
)

// procKiB reads a field (VmRSS, VmHWM) of /proc/self/status, in KiB.
func procKiB(b *testing.B, field string) int {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skip("no /proc: ", err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	b.Skip("no " + field)
	return 0
}

// BenchmarkSlowConsumers logs in 1,000 sessions that then stop reading (a
// 4 KiB receive buffer, nothing read) and floods each with 64 KiB
// messages, session-buffer's worth and 4 more, from 10 senders. Every consumer
// is dropped at its budget; the process's peak RSS must stay within
// sessions × session-buffer × (1 + gc-percent/100) over the RSS after the
// logins (the Go heap may grow that much over live data before a
// collection). It reports peak_MiB (peak RSS over the baseline) and
// bound_MiB. Run it alone: go test -run - -bench SlowConsumers -benchtime 1x ./c2s/
func BenchmarkSlowConsumers(b *testing.B) {
	const (
		consumers = 1000
		senders   = 10
		size      = 64 << 10
		budget    = 1 << 20
	)
	e := servertest.Start(b, func(c *conf.Config) {
		c.Auth.RequireTLS = false
		c.Limits.MaxConnectionsPerIP = 0
		c.Limits.BytesPerSecond = 0 // the senders flood at full speed
		c.Limits.SessionBuffer = budget
		// Memory is measured, not storage: no archive, no offline
		// storage (what cannot be delivered is bounced).
		delete(c.Modules, "mam")
		delete(c.Modules, "offline")
	})
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) {
				_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			})
		}}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &gatedConn{Conn: c, stop: make(chan struct{}), closed: make(chan struct{})}, nil
	}
	login := func(user string, gated bool) *client.Client {
		e.AddUser(user, "pw-"+user)
		cfg := e.ClientConfig(user, "pw-"+user, "r")
		cfg.Mode, cfg.Addr = client.Plain, e.Plain
		var gate *gatedConn
		if gated {
			cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := dial(ctx, network, addr)
				if err == nil {
					gate = c.(*gatedConn)
				}
				return c, err
			}
		}
		c := e.LoginWith(cfg)
		if gate != nil {
			close(gate.stop)
		}
		return c
	}
	var mu gosync.Mutex
	sessions := make([]*c2s.Session, consumers)
	var wg gosync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range consumers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			u := "c" + strconv.Itoa(i)
			login(u, true)
			s, _ := e.Srv.Router.Resource(u+"@localhost", "r").(*c2s.Session)
			mu.Lock()
			sessions[i] = s
			mu.Unlock()
		}()
	}
	wg.Wait()
	b.Logf("%d consumers logged in", consumers)
	for i, s := range sessions {
		if s == nil {
			b.Fatalf("consumer %d has no session", i)
		}
	}
	var from []*client.Client
	for i := range senders {
		from = append(from, login("s"+strconv.Itoa(i), false))
	}
	// The baseline: the process with every session logged in. Resetting
	// the peak (clear_refs 5) makes VmHWM the peak from here on.
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	base := procKiB(b, "VmRSS")
	body := strings.Repeat("x", size)
	rounds := budget/size + 4
	b.ResetTimer()
	start := time.Now()
	for k, c := range from {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				for i := k; i < consumers; i += senders {
					if err := c.Send("<message type='chat' to='c" + strconv.Itoa(i) + "@localhost/r' id='m" + strconv.Itoa(r) + "'><body>" + body + "</body></message>"); err != nil {
						b.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	for i, s := range sessions {
		select {
		case <-s.Done():
		case <-time.After(time.Minute):
			b.Fatalf("consumer %d was never dropped", i)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	peak := procKiB(b, "VmHWM")
	gc := e.Config.Limits.GCPercent
	bound := consumers * budget / 1024 * (100 + gc) / 100
	b.ReportMetric(float64(peak-base)/1024, "peak_MiB")
	b.ReportMetric(float64(bound)/1024, "bound_MiB")
	b.ReportMetric(float64(base)/1024, "baseline_MiB")
	b.ReportMetric(float64(consumers*rounds*size)/(1<<20)/elapsed.Seconds(), "flood_MiB/s")
	if peak-base > bound {
		b.Errorf("peak RSS %d MiB over the baseline, bound %d MiB", (peak-base)/1024, bound/1024)
	}
}
