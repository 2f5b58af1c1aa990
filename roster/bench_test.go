package roster

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/sqlite"
)

// BenchmarkSubscriptionHandshake runs complete RFC 6121 handshakes (A
// subscribe, B subscribed, B subscribe, A subscribed: four stanzas, eight
// roster changes) between distinct pairs of 2,000 users on the real SQLite
// store, many at once, as a subscription flood does. It reports handshakes
// per second (wall clock: noisy on a shared machine) and the process's CPU
// time per handshake (steadier).
//
//	go test -run '^$' -bench SubscriptionHandshake -benchtime 20000x ./roster
func BenchmarkSubscriptionHandshake(b *testing.B) {
	const users = 2000
	st, err := sqlite.Open(filepath.Join(b.TempDir(), "x.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	jids := make([]string, users)
	for i := range jids {
		jids[i] = fmt.Sprintf("u%d@example.com", i)
		if err := st.Accounts().Create(b.Context(), storage.Account{JID: jids[i]}); err != nil {
			b.Fatal(err)
		}
	}
	t := &testing.T{}
	e := newEnvWith(t, Options{}, st.Roster(), sqliteAccounts{st.Accounts()})
	sess := make([]*fakeSession, users)
	for i := range sess {
		sess[i] = e.bind(jids[i] + "/r")
	}
	var next atomic.Int64
	b.SetParallelism(128)
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := int(next.Add(1) - 1)
			a, c := k%users, (k%users+1+k/users)%users
			e.send(sess[a], `<presence type='subscribe' to='`+jids[c]+`'/>`)
			e.send(sess[c], `<presence type='subscribed' to='`+jids[a]+`'/>`)
			e.send(sess[c], `<presence type='subscribe' to='`+jids[a]+`'/>`)
			e.send(sess[a], `<presence type='subscribed' to='`+jids[c]+`'/>`)
			sess[a].Take(t)
			sess[c].Take(t)
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/handshake")
	for k := range min(b.N, 50) {
		a, c := k%users, (k%users+1+k/users)%users
		if subOf(e, jids[a], jids[c]) != "Both" || subOf(e, jids[c], jids[a]) != "Both" {
			b.Fatalf("pair %d: %s / %s", k, subOf(e, jids[a], jids[c]), subOf(e, jids[c], jids[a]))
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
