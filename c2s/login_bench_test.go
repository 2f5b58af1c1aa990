package c2s_test

import (
	"context"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/sasl"
	"github.com/xmppd/xmppd/server/servertest"
)

// BenchmarkLogin logs returning clients in over STARTTLS with
// SCRAM-SHA-256 (their salted password cached, as real clients keep it),
// binds, and closes: a login storm, client and server in one process. Use
// -cpuprofile and look at the server's share (c2s, sasl, crypto/tls
// server side) to see what a login costs the server.
func BenchmarkLogin(b *testing.B) {
	for _, mech := range []string{"SCRAM-SHA-256", "PLAIN"} {
		b.Run(mech, func(b *testing.B) { benchLogin(b, mech) })
	}
}

func benchLogin(b *testing.B, mech string) {
	const users = 64
	e := servertest.Start(b, func(c *conf.Config) {
		c.Limits.MaxConnectionsPerIP = 0
		c.Log.Level = slog.LevelError
	})
	for i := range users {
		e.AddUser("u"+strconv.Itoa(i), "pw")
	}
	cache := sasl.NewSaltedPasswordCache(users)
	login := func(i int) error {
		cfg := e.ClientConfig("u"+strconv.Itoa(i%users), "pw", "r"+strconv.Itoa(i))
		cfg.Mechanism, cfg.Cache = mech, cache
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, err := client.Dial(ctx, cfg)
		if err != nil {
			return err
		}
		return c.Close()
	}
	for i := range users { // fill the cache: returning clients
		if err := login(i); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := login(int(next.Add(1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
}
