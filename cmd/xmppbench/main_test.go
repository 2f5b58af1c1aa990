package main

import (
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/sasl"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/storage/sqlite"
)

// A message the server bounces (type='error', carrying the stamped body
// back) is counted as bounced, never as delivered.
func TestBouncesAreNotDelivered(t *testing.T) {
	e := servertest.Start(t, nil)
	e.AddUser("user1", "benchpass")
	e.AddUser("user2", "benchpass")
	a := e.Login("user1", "benchpass", "bench")
	b := e.Login("user2", "benchpass", "bench")
	var rec receipts
	var wg sync.WaitGroup
	aDone := make(chan struct{})
	wg.Add(2)
	go func() { defer wg.Done(); defer close(aDone); rec.receive(a, time.Now().Add(time.Minute)) }()
	go func() { defer wg.Done(); rec.receive(b, time.Now().Add(time.Minute)) }()
	stamped := func(to string) string {
		return "<message type='chat' to='" + to + "'><body>" + strconv.FormatInt(time.Now().UnixNano(), 10) + " x</body></message>"
	}
	_ = a.Send(stamped("nobody@localhost"))  // bounced: service-unavailable
	_ = a.Send(stamped(b.JID))               // delivered
	_ = a.Send(stamped("nobody2@localhost")) // bounced
	// Each receiver stops when the server closes its stream, which it does
	// after writing everything queued before: a's close comes after a's
	// messages were routed, b's after a's stream ended.
	_ = a.Send("</stream:stream>")
	<-aDone
	_ = b.Send("</stream:stream>")
	wg.Wait()
	if d, bo := rec.delivered.Load(), rec.bounced.Load(); d != 1 || bo != 2 || len(rec.lats) != 1 {
		t.Fatalf("delivered %d, bounced %d, %d latencies; want 1, 2, 1", d, bo, len(rec.lats))
	}
}

// With one login at a time and all due at once, every login but the first
// waits for the ones before it, and that wait is login time: the summary's
// login p99 (the third of four) covers three logins' connect-to-bind times,
// so it exceeds the p99 of connect-to-bind alone.
func TestLoginClockCountsQueueing(t *testing.T) {
	e := servertest.Start(t, nil)
	for i := 1; i <= 4; i++ {
		e.AddUser("user"+strconv.Itoa(i), "benchpass")
	}
	o := options{addr: e.StartTLS, domain: e.Domain, prefix: "user", password: "benchpass", mode: "starttls",
		mech: "SCRAM-SHA-256", scenario: "idle", n: 4, first: 1, concurrency: 1, rate: 1e9}
	ls, _, failed := logins(o, sasl.NewSaltedPasswordCache(4))
	if failed != 0 {
		t.Fatalf("%d logins failed", failed)
	}
	for i, l := range ls {
		defer l.c.Close()
		if l.connect.Before(l.due) || l.done.Before(l.connect) {
			t.Fatalf("login %d: due %v, connect %v, done %v", i, l.due, l.connect, l.done)
		}
	}
	sum := summarizeLogins(ls)
	if sum.LoginP99ms <= sum.ConnectP99ms {
		t.Fatalf("login p99 %.2f ms from when due, %.2f ms from the connect: queueing not counted", sum.LoginP99ms, sum.ConnectP99ms)
	}
}

// -warm logs every user in once before measuring: the measured logins are
// those of returning clients, whose salted passwords are cached (one entry
// per user and salt), and the warm-up's sessions are closed.
func TestWarmUpFillsCache(t *testing.T) {
	e := servertest.Start(t, nil)
	for i := 1; i <= 3; i++ {
		e.AddUser("user"+strconv.Itoa(i), "benchpass")
	}
	o := options{addr: e.StartTLS, domain: e.Domain, prefix: "user", password: "benchpass", mode: "starttls",
		mech: "SCRAM-SHA-256", scenario: "idle", n: 3, first: 1, concurrency: 2}
	cache := sasl.NewSaltedPasswordCache(8)
	if err := warmUp(o, cache); err != nil {
		t.Fatal(err)
	}
	if cache.Len() != 3 {
		t.Fatalf("%d salted passwords cached after the warm-up, want 3", cache.Len())
	}
	ls, _, failed := logins(o, cache)
	if failed != 0 {
		t.Fatalf("%d logins failed", failed)
	}
	for _, l := range ls {
		l.c.Close()
	}
	if cache.Len() != 3 {
		t.Fatalf("%d salted passwords cached after the measured logins, want still 3", cache.Len())
	}
}

// cpuTicks reads this process's CPU time, which grows with work done.
func TestCPUTicks(t *testing.T) {
	pid := os.Getpid()
	t0 := cpuTicks(pid)
	for i := 0; cpuTicks(pid) <= t0; i++ {
		if i > 1e6 { // a million reads of /proc take seconds of CPU
			t.Fatalf("cpuTicks stayed at %v", t0)
		}
	}
	if cpuTicks(0) != 0 {
		t.Fatal("cpuTicks(0) must be 0 (no server pid)")
	}
}

// chatSMRun logs in n users of e and runs the closed-loop chat on them.
func chatSMRun(t *testing.T, e *servertest.Env, n int, o options) *summary {
	t.Helper()
	var cs []*client.Client
	for i := 1; i <= n; i++ {
		e.AddUser("user"+strconv.Itoa(i), "benchpass")
		c := e.Login("user"+strconv.Itoa(i), "benchpass", "bench")
		defer c.Close()
		cs = append(cs, c)
	}
	sum := &summary{}
	if err := chatSM(o, cs, sum); err != nil {
		t.Fatal(err)
	}
	return sum
}

// -sm-window: every message the server acknowledged reached its recipient
// once, and the run accounts for all of it (sent, acknowledged, received).
func TestSMWindowAccounts(t *testing.T) {
	e := servertest.Start(t, nil)
	sum := chatSMRun(t, e, 4, options{smWindow: 3, interval: 10 * time.Millisecond, duration: 300 * time.Millisecond,
		drain: time.Minute, size: 64})
	if sum.Sent == 0 || sum.Acked != sum.Sent || sum.Delivered != sum.Sent || !sum.DrainedAllAcked {
		t.Fatalf("sent %d, acked %d, delivered %d, drained %v: want all sent acknowledged and delivered",
			sum.Sent, sum.Acked, sum.Delivered, sum.DrainedAllAcked)
	}
	if sum.Lost != 0 || sum.Duplicates != 0 || sum.Bounced != 0 {
		t.Fatalf("lost %d, duplicated %d, bounced %d", sum.Lost, sum.Duplicates, sum.Bounced)
	}
	if sum.AckP99ms <= 0 || sum.LatP99ms <= 0 || sum.OfferedPerSec != 400 {
		t.Fatalf("ack p99 %v, latency p99 %v, offered %v/s", sum.AckP99ms, sum.LatP99ms, sum.OfferedPerSec)
	}
}

// -sm-window is closed-loop: while the server acknowledges nothing (its
// archive holds every commit), no sender has more than the window
// unacknowledged, and every one of them waits; once the archive commits
// again everything sent is acknowledged and delivered once.
func TestSMWindowStopsSenders(t *testing.T) {
	e := servertest.Start(t, nil)
	release := sqlite.HoldArchiveCommits(e.Srv.Store.Archive())
	const n, window = 3, 2
	smSent = func(r *smChat) {
		for i, s := range r.senders {
			s.mu.Lock()
			sent, acked := len(s.wrote), s.acked
			s.mu.Unlock()
			if sent > window || acked != 0 {
				t.Errorf("sender %d: %d sent, %d acknowledged while the archive held every commit; window %d", i, sent, acked, window)
			}
		}
		release()
	}
	defer func() { smSent = nil }()
	sum := chatSMRun(t, e, n, options{smWindow: window, interval: time.Millisecond, duration: 200 * time.Millisecond,
		drain: time.Minute, size: 64})
	if sum.Sent == 0 || sum.Acked != sum.Sent || sum.Delivered != sum.Sent || sum.Lost != 0 || sum.Duplicates != 0 {
		t.Fatalf("sent %d, acked %d, delivered %d, lost %d, duplicated %d", sum.Sent, sum.Acked, sum.Delivered, sum.Lost, sum.Duplicates)
	}
	if sum.WindowBlocked <= 0 {
		t.Fatalf("window blocked share %v: the senders never waited", sum.WindowBlocked)
	}
}
