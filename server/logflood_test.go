package server_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/internal/lograte"
	"github.com/xmppd/xmppd/server"
	"github.com/xmppd/xmppd/server/servertest"
)

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) count(substr string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), substr)
}

// TestFailedLoginsDoNotFloodTheLog: a client guessing passwords (here 200
// times on one stream, max-failures="0") is refused every time, and the log
// holds a bounded number of "authentication failed" lines.
func TestFailedLoginsDoNotFloodTheLog(t *testing.T) {
	var logs lockedBuffer
	cfg := conf.Default(t.TempDir())
	cfg.Listeners.C2S = []conf.C2SListener{{Address: "127.0.0.1:0", TLS: conf.TLSDirect}}
	cfg.Listeners.HTTP = nil
	cfg.Auth.FailureDelay = 0
	cfg.Auth.MaxFailures = 0
	cfg.Auth.IPFailuresPerMinute, cfg.Auth.AccountFailuresPerMinute = 0, 0
	cfg.Limits.NegotiationTimeout = time.Hour // a loaded machine is slow; the stream must outlive the guesses
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	e := &servertest.Env{T: t, Srv: srv, Config: cfg, Domain: cfg.Hosts[0], DirectTLS: srv.C2SAddrs()[0].String()}

	const attempts = 200
	start := time.Now()
	r := dialRaw(t, e)
	for i := range attempts {
		r.send(plain("nobody", "guess"))
		if st := r.next(); st.Name != "failure" {
			t.Fatalf("attempt %d: %s", i+1, st.Raw)
		}
	}
	elapsed := time.Since(start)
	n := logs.count("authentication failed")
	bound := lograte.Burst * (int(elapsed/lograte.Window) + 1)
	if n == 0 || n > bound {
		t.Fatalf("%d log lines for %d failed logins in %v, want 1..%d", n, attempts, elapsed, bound)
	}
	t.Logf("%d log lines for %d failed logins in %v", n, attempts, elapsed)
}
