package sqlite

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/xmppd/xmppd/storage"
)

// Run with: go test -run '^$' -bench . -benchtime 3s ./storage/sqlite

func benchStore(b *testing.B, synchronous string, users ...string) *Store {
	b.Helper()
	s, err := open(filepath.Join(b.TempDir(), "bench.db"), synchronous)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	for _, u := range users {
		if err := s.Accounts().Create(b.Context(), storage.Account{JID: u}); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// measure starts measuring just before the timed loop; the function it
// returns, called right after the loop, reports ops/s (wall clock) and the
// process's CPU time per operation (all threads, SQLite's included), which
// other load on the machine distorts less than wall time.
func measure(b *testing.B) (done func()) {
	cpu0 := processCPU()
	return func() {
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		if cpu := processCPU() - cpu0; cpu > 0 {
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
		}
	}
}

// A typical chat message with a body, an origin-id and a receipt request.
var benchStanza = []byte(`<message xmlns='jabber:client' from='romeo@montague.example/orchard' to='juliet@capulet.example' type='chat' id='5f3a0a6e-2c59-4d2b-9a0e-2e9c3b1f7c11'><body>` +
	strings.Repeat("But soft, what light through yonder window breaks? ", 3) +
	`</body><origin-id xmlns='urn:xmpp:sid:0' id='5f3a0a6e-2c59-4d2b-9a0e-2e9c3b1f7c11'/><request xmlns='urn:xmpp:receipts'/></message>`)

func benchMsg() storage.OfflineMessage {
	return storage.OfflineMessage{From: "romeo@montague.example/orchard", Stanza: benchStanza}
}

// BenchmarkOfflineStore is one writer storing messages for one user, each
// call a committed transaction.
func BenchmarkOfflineStore(b *testing.B) {
	for _, sync := range []string{"NORMAL", "FULL"} {
		b.Run("sync="+sync, func(b *testing.B) {
			s := benchStore(b, sync, "juliet@capulet.example")
			ctx := b.Context()
			done := measure(b)
			for b.Loop() {
				if err := s.Offline().Store(ctx, "juliet@capulet.example", benchMsg(), 0); err != nil {
					b.Fatal(err)
				}
			}
			done()
		})
	}
}

// BenchmarkOfflineStoreLimit stores under a limit of 1000 (each Store counts
// the queue first); the queue is emptied every 500 messages, so it holds
// 250 on average.
func BenchmarkOfflineStoreLimit(b *testing.B) {
	s := benchStore(b, "NORMAL", "juliet@capulet.example")
	ctx := b.Context()
	i := 0
	done := measure(b)
	for b.Loop() {
		if err := s.Offline().Store(ctx, "juliet@capulet.example", benchMsg(), 1000); err != nil {
			b.Fatal(err)
		}
		if i++; i%500 == 0 {
			if err := s.Offline().Delete(ctx, "juliet@capulet.example", 1<<62); err != nil {
				b.Fatal(err)
			}
		}
	}
	done()
}

// BenchmarkOfflineStoreParallel is many goroutines (GOMAXPROCS × 8 with
// -cpu defaults) storing for 64 users at once: they all queue for the one
// writer connection.
func BenchmarkOfflineStoreParallel(b *testing.B) {
	var users []string
	for i := range 64 {
		users = append(users, fmt.Sprintf("u%d@example.com", i))
	}
	s := benchStore(b, "NORMAL", users...)
	ctx := b.Context()
	var next atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	done := measure(b)
	b.RunParallel(func(pb *testing.PB) {
		u := users[next.Add(1)%int64(len(users))]
		for pb.Next() {
			if err := s.Offline().Store(ctx, u, benchMsg(), 10000); err != nil {
				b.Error(err)
				return
			}
		}
	})
	done()
}

// BenchmarkRosterPut replaces items (with two groups each) in a 100-item
// roster, bumping its version each time.
func BenchmarkRosterPut(b *testing.B) {
	s := benchStore(b, "NORMAL", "romeo@montague.example")
	ctx := b.Context()
	i := 0
	done := measure(b)
	for b.Loop() {
		_, err := s.Roster().Put(ctx, "romeo@montague.example", storage.RosterItem{
			JID:          fmt.Sprintf("contact%03d@example.com", i%100),
			Name:         "Contact",
			Subscription: storage.SubBoth,
			Groups:       []string{"Friends", fmt.Sprint("G", i%7)},
		})
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
	done()
}

// BenchmarkRosterItems reads a 100-item roster, as every login does.
func BenchmarkRosterItems(b *testing.B) {
	s := benchStore(b, "NORMAL", "romeo@montague.example")
	ctx := b.Context()
	for i := range 100 {
		if _, err := s.Roster().Put(ctx, "romeo@montague.example", storage.RosterItem{
			JID: fmt.Sprintf("contact%03d@example.com", i), Subscription: storage.SubBoth,
			Groups: []string{"Friends", fmt.Sprint("G", i%7)},
		}); err != nil {
			b.Fatal(err)
		}
	}
	done := measure(b)
	for b.Loop() {
		items, _, err := s.Roster().Items(ctx, "romeo@montague.example")
		if err != nil || len(items) != 100 {
			b.Fatal(len(items), err)
		}
	}
	done()
}

// BenchmarkArchiveAppendSync is what <storage sync="full"/> costs on the
// archive, the hottest write path: one appender (each Append its own
// commit) and 64 concurrent appenders (group commit shares the commits,
// and with them the fsyncs), with synchronous=NORMAL and FULL.
func BenchmarkArchiveAppendSync(b *testing.B) {
	var users []string
	for i := range 64 {
		users = append(users, fmt.Sprintf("u%d@example.com", i))
	}
	for _, mode := range []string{"NORMAL", "FULL"} {
		for _, appenders := range []int{1, 64} {
			b.Run(fmt.Sprintf("sync=%s/appenders=%d", mode, appenders), func(b *testing.B) {
				s := benchStore(b, mode, users...)
				a := s.Archive()
				ctx := b.Context()
				var next atomic.Int64
				var wg sync.WaitGroup
				done := measure(b)
				b.ResetTimer()
				for g := range appenders {
					wg.Add(1)
					go func() {
						defer wg.Done()
						u := users[g%len(users)]
						for next.Add(1) <= int64(b.N) {
							m := []storage.ArchiveMessage{{Owner: u, With: "romeo@montague.example/orchard", MessageID: "x", Stanza: benchStanza}}
							if err := a.Append(ctx, m); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				done()
			})
		}
	}
}

// BenchmarkRosterPutParallel is a subscription flood at the storage: many
// users' changes at once (each goroutine one of 2,000 owners, new contacts
// each time, as a ring of subscriptions writes them). Group commit shares
// one transaction among the changes queued while the previous one commits.
func BenchmarkRosterPutParallel(b *testing.B) {
	const owners = 2000
	users := make([]string, owners)
	for i := range users {
		users[i] = fmt.Sprintf("user%d@bench.example", i)
	}
	s := benchStore(b, "NORMAL", users...)
	ctx := b.Context()
	var next atomic.Int64
	b.SetParallelism(256) // goroutines per GOMAXPROCS: thousands of sessions at once
	done := measure(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			if _, err := s.Roster().Put(ctx, users[i%owners], storage.RosterItem{
				JID:          fmt.Sprintf("contact%d@bench.example", i/owners),
				Subscription: storage.SubNone, Ask: true,
			}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	done()
}
