package sqlite

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/xmppd/xmppd/storage"
)

// BenchmarkArchiveMerge is the tail merge alone, as the chat load of the
// perf harness makes it: 5,000 owners whose archives already hold 20
// messages each, and 16,384 new rows (one merge chunk) spread over all of
// them. Each op moves one chunk from the tail into the indexed archive and
// copies the WAL it wrote into the database file (the checkpointer's
// work); the appends that fill the tail are not timed. cpu-µs/row is the
// process's CPU (all threads) per merged row. XMPPD_BENCH_MERGE_CHUNK sets
// another chunk size.
//
//	go test -run '^$' -bench ArchiveMerge -benchtime 20x ./storage/sqlite
func BenchmarkArchiveMerge(b *testing.B) {
	const owners, prefill = 5000, 20
	users := make([]string, owners)
	for i := range users {
		users[i] = fmt.Sprintf("user%d@bench.localhost", i+1)
	}
	s := benchStore(b, "NORMAL", users...)
	a := s.Archive().(*archive)
	ctx := b.Context()
	k := 0
	fill := func(rows int) {
		batch := make([]storage.ArchiveMessage, 0, maxBatch)
		for range rows {
			batch = append(batch, storage.ArchiveMessage{Owner: users[k%owners], With: users[(k*7+1)%owners] + "/bench", MessageID: "m", Stanza: benchStanza})
			k++
			if len(batch) == cap(batch) {
				if err := a.Append(ctx, batch); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		if len(batch) > 0 {
			if err := a.Append(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
	}
	chunk := mergeChunk
	if v, err := strconv.Atoi(os.Getenv("XMPPD_BENCH_MERGE_CHUNK")); err == nil && v > 0 {
		chunk = v
	}
	a.mu.Lock()
	a.mergeAt = 1 << 30 // merges only when asked
	a.mergeChunk = chunk
	a.mu.Unlock()
	fill(owners * prefill)
	if err := a.MergeTail(ctx); err != nil {
		b.Fatal(err)
	}
	var cpu, wall time.Duration
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		fill(chunk)
		a.ckpt.checkpoint()
		b.StartTimer()
		c0, t0 := processCPU(), time.Now()
		if err := a.MergeTail(ctx); err != nil {
			b.Fatal(err)
		}
		a.ckpt.checkpoint()
		cpu += processCPU() - c0
		wall += time.Since(t0)
	}
	rows := float64(b.N * chunk)
	b.ReportMetric(float64(cpu.Microseconds())/rows, "cpu-µs/row")
	b.ReportMetric(rows/wall.Seconds(), "rows/s")
}
