package sqlite

// The archive at size: the figures the archive must keep flat as it grows.
//
//	XMPPD_BENCH_BIGARCHIVE=/tmp/bigarchive/cache \
//	XMPPD_BENCH_BIGARCHIVE_ROWS=1000000,3000000,10000000 \
//	go test -run '^$' -bench BigArchive -benchtime 200x -timeout 0 ./storage/sqlite
//
// Each size is an archive built by internal/archivegen (5,000 accounts,
// skewed activity and contacts, stamps 180 days / the largest size apart),
// cached in XMPPD_BENCH_BIGARCHIVE/rows-N (the layout cmd/archivegen
// writes with -data; default: a directory under the system's temporary
// one) and grown from the next smaller cached size when missing. The
// default size, 100,000 rows, builds in seconds. Benchmarks that write
// (append, retention) run on a copy made for the run.

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/internal/archivegen"
	"github.com/xmppd/xmppd/storage"
)

func bigArchiveSizes(b *testing.B) []int64 {
	env := os.Getenv("XMPPD_BENCH_BIGARCHIVE_ROWS")
	if env == "" {
		return []int64{100_000}
	}
	var out []int64
	for f := range strings.SplitSeq(env, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("XMPPD_BENCH_BIGARCHIVE_ROWS: bad size %q", f)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

var bigArchiveMu sync.Mutex

// bigArchive returns the database path and the generator state of a cached
// archive of rows rows, building or growing it if needed.
func bigArchive(b *testing.B, rows, plan int64) (string, archivegen.State) {
	bigArchiveMu.Lock()
	defer bigArchiveMu.Unlock()
	dir := os.Getenv("XMPPD_BENCH_BIGARCHIVE")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "xmppd-bigarchive")
	}
	dbPath := func(n int64) string { return filepath.Join(dir, fmt.Sprintf("rows-%d", n), "xmppd.db") }
	path := dbPath(rows)
	st, ok, err := archivegen.LoadState(path)
	if err != nil {
		b.Fatal(err)
	}
	if ok && st.Rows >= rows {
		return path, st
	}
	if !ok {
		// Grow a copy of the largest smaller archive, if there is one.
		ents, _ := os.ReadDir(dir)
		var best int64
		for _, e := range ents {
			n, err := strconv.ParseInt(strings.TrimPrefix(e.Name(), "rows-"), 10, 64)
			if err != nil || n >= rows || n <= best {
				continue
			}
			if s, ok, _ := archivegen.LoadState(dbPath(n)); ok && s.Rows >= n {
				best = n
			}
		}
		if best > 0 {
			b.Logf("copying the %d-row archive to grow it to %d", best, rows)
			copyDB(b, dbPath(best), path)
			st, _, err = archivegen.LoadState(path)
			if err != nil {
				b.Fatal(err)
			}
		} else {
			st = archivegen.NewState(plan, 180*24*time.Hour)
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				b.Fatal(err)
			}
		}
	}
	s, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := archivegen.CreateAccounts(ctx, s, &st); err != nil {
		b.Fatal(err)
	}
	t0, from := time.Now(), st.Rows
	err = archivegen.Fill(ctx, s, &st, rows, func(archivegen.Progress) {
		if err := archivegen.SaveState(path, st); err != nil {
			b.Fatal(err)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("built rows %d…%d of %s in %v", from, rows, path, time.Since(t0).Round(time.Second))
	return path, st
}

// copyDB copies a database (and its WAL, if any) and its generator state;
// nothing may be writing it.
func copyDB(b *testing.B, from, to string) {
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		b.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal", archivegen.StatePath("")} {
		src, err := os.Open(from + suffix)
		if os.IsNotExist(err) {
			os.Remove(to + suffix)
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		dst, err := os.OpenFile(to+suffix, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err == nil {
			_, err = io.Copy(dst, src)
			if err2 := dst.Close(); err == nil {
				err = err2
			}
		}
		src.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
}

// diskBytes is the size of a database and its WAL.
func diskBytes(path string) int64 {
	var n int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// BenchmarkBigArchive: at each size, the storage side of
//
//   - append: archiving as the server does it, one message per Append
//     from 64 goroutines (group commit), to owners of the generated shape;
//   - page-with: a MAM page of 50 of one conversation (the busiest
//     account and its closest contact), at random <after/> positions;
//   - page-time: a page of 50 of the busiest account from a random point
//     in time (start only);
//   - count-above / count-below: a page of 50 with the count-limit query:
//     the busiest account's whole archive with count-limit 5,000 (it holds
//     more from 1M rows on, so the count stops at the limit), and one day
//     of it with the default 10,000 (fewer: counted, with the index);
//   - find-missing: FindByMessageID (XEP-0424) of an id that is not in
//     the busiest conversation;
//   - retention: DeleteBefore advancing one day per op (the same number of
//     rows at every size: the stamps' spacing does not depend on it);
//
// and the disk bytes per row (database + WAL).
func BenchmarkBigArchive(b *testing.B) {
	sizes := bigArchiveSizes(b)
	plan := slices.Max(sizes)
	for _, rows := range sizes {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			path, st := bigArchive(b, rows, plan)
			benchBigArchive(b, path, st)
		})
	}
}

func benchBigArchive(b *testing.B, path string, st archivegen.State) {
	owner := st.Account(1)
	with := st.Contact(1, 0)
	first, last := st.Stamp(0), st.Stamp(st.Rows)
	// count-below uses the default count-limit; count-above a smaller one,
	// so that the busiest archive (0.65 % of the rows) is above it from
	// 1,000,000 rows on.
	const countLimit, countAbove = 10000, 5000
	day := 24 * time.Hour

	read := func(b *testing.B) *Store {
		s, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}
	// seqs of a selection, in order.
	seqs := func(b *testing.B, s *Store, q storage.ArchiveQuery) []int64 {
		var out []int64
		q.Max = 10000
		for {
			p, err := s.Archive().Query(b.Context(), q)
			if err != nil {
				b.Fatal(err)
			}
			for _, m := range p.Messages {
				out = append(out, m.Seq)
			}
			if p.Complete {
				return out
			}
			q.PageAfter = out[len(out)-1]
		}
	}
	page := func(b *testing.B, s *Store, q storage.ArchiveQuery, cursors []int64) {
		rng := rand.New(rand.NewPCG(1, 2))
		q.Max = 50
		done := measure(b)
		for b.Loop() {
			if cursors != nil {
				q.PageAfter = cursors[rng.IntN(max(1, len(cursors)-50))]
			} else {
				q.Start = first.Add(time.Duration(rng.Int64N(int64(last.Sub(first) - day)))).Truncate(time.Hour)
			}
			p, err := s.Archive().Query(b.Context(), q)
			if err != nil {
				b.Fatal(err)
			}
			if len(p.Messages) == 0 {
				b.Fatalf("empty page for %+v", q)
			}
		}
		done()
	}

	b.Run("page-with", func(b *testing.B) {
		s := read(b)
		q := storage.ArchiveQuery{Owner: owner, With: with}
		cur := seqs(b, s, q)
		page(b, s, q, cur)
		b.ReportMetric(float64(len(cur)), "set-rows")
	})
	b.Run("page-time", func(b *testing.B) {
		s := read(b)
		page(b, s, storage.ArchiveQuery{Owner: owner}, nil)
	})
	b.Run("count-above", func(b *testing.B) {
		s := read(b)
		q := storage.ArchiveQuery{Owner: owner, CountLimit: countAbove}
		cur := seqs(b, s, storage.ArchiveQuery{Owner: owner})
		if len(cur) <= countAbove {
			b.Skipf("the busiest archive holds %d rows, not more than %d", len(cur), countAbove)
		}
		page(b, s, q, cur)
	})
	b.Run("count-below", func(b *testing.B) {
		s := read(b)
		rng := rand.New(rand.NewPCG(3, 4))
		q := storage.ArchiveQuery{Owner: owner, CountLimit: countLimit, Max: 50}
		done := measure(b)
		for b.Loop() {
			q.Start = first.Add(time.Duration(rng.Int64N(int64(last.Sub(first) - day)))).Truncate(time.Hour)
			q.End = q.Start.Add(day)
			p, err := s.Archive().Query(b.Context(), q)
			if err != nil {
				b.Fatal(err)
			}
			if p.Count < 0 || p.Count > countLimit {
				b.Fatalf("count %d for a day", p.Count)
			}
		}
		done()
	})
	b.Run("find-missing", func(b *testing.B) {
		// A retraction naming an id that is not in the busiest
		// conversation (what anyone can send): the lookup's whole cost.
		s := read(b)
		done := measure(b)
		for b.Loop() {
			_, err := s.Archive().FindByMessageID(b.Context(), owner, with, false, "no-such-id")
			if err != storage.ErrNotFound {
				b.Fatal(err)
			}
		}
		done()
	})
	b.Run("disk", func(b *testing.B) {
		for b.Loop() {
		}
		b.ReportMetric(float64(diskBytes(path))/float64(st.Rows), "bytes/row")
	})

	// The writing benchmarks, on a copy.
	scratch := filepath.Join(b.TempDir(), "xmppd.db")
	copyDB(b, path, scratch)
	b.Run("append", func(b *testing.B) {
		s, err := Open(scratch)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		// Messages of the generated shape, stamped now.
		var msgs []storage.ArchiveMessage
		for k := int64(0); len(msgs) < 20000; k++ {
			msgs = append(msgs, st.BatchRows(st.Rows/int64(st.Batch)+k)...)
		}
		var next int64
		var mu sync.Mutex
		take := func() (storage.ArchiveMessage, bool) {
			mu.Lock()
			defer mu.Unlock()
			if next >= int64(b.N) {
				return storage.ArchiveMessage{}, false
			}
			m := msgs[next%int64(len(msgs))]
			next++
			m.Stamp = time.Time{}
			return m, true
		}
		var wg sync.WaitGroup
		b.ResetTimer()
		done := measure(b)
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					m, ok := take()
					if !ok {
						return
					}
					if err := s.Archive().Append(context.Background(), []storage.ArchiveMessage{m}); err != nil {
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
	b.Run("retention", func(b *testing.B) {
		s, err := Open(scratch)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		cut := first
		var deleted int64
		cpu0 := processCPU()
		for b.Loop() {
			cut = cut.Add(day)
			n, err := s.Archive().DeleteBefore(b.Context(), cut)
			if err != nil {
				b.Fatal(err)
			}
			deleted += n
		}
		if deleted == 0 {
			b.Fatal("nothing deleted")
		}
		b.ReportMetric(float64(deleted)/float64(b.N), "rows/op")
		b.ReportMetric(float64(deleted)/b.Elapsed().Seconds(), "rows/s")
		b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(deleted), "cpu-µs/row")
	})
}
