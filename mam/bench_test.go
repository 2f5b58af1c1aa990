package mam_test

// Run with:
//
//	go test -run '^$' -bench . -benchtime 3s ./mam/
//
// BenchmarkQueryPage builds a 1,000,000-message archive first (about a
// minute on a 2-core VM); set XMPPD_BENCH_ARCHIVE to a file path to keep
// it between runs.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/mam"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/sqlite"
	"github.com/xmppd/xmppd/wire"
)

// processCPU is this process's user+system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processWritten is the bytes this process passed to write(2) and
// pwrite(2) so far (Linux: wchar in /proc/self/io; 0 elsewhere): for the
// archive, the WAL frames and checkpoints SQLite wrote.
func processWritten() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// measure reports ops/s (wall clock, scaled by perOp), CPU µs per op and
// bytes written per op.
func measure(b *testing.B, unit string, perOp float64) (done func()) {
	cpu0, w0 := processCPU(), processWritten()
	return func() {
		b.ReportMetric(float64(b.N)*perOp/b.Elapsed().Seconds(), unit)
		if cpu := processCPU() - cpu0; cpu > 0 {
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
		}
		if w := processWritten() - w0; w > 0 {
			b.ReportMetric(float64(w)/float64(b.N), "written-B/op")
		}
	}
}

func openStore(b *testing.B, path string, users ...string) *sqlite.Store {
	b.Helper()
	if path == "" {
		path = filepath.Join(b.TempDir(), "bench.db")
	}
	s, err := sqlite.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	for _, u := range users {
		if err := s.Accounts().Create(b.Context(), storage.Account{JID: u}); err != nil && err != storage.ErrExists {
			b.Fatal(err)
		}
	}
	return s
}

// A typical archived chat message (what the hooks store: standalone, with
// an origin-id and a receipt request).
var benchStanza = []byte(`<message xmlns='jabber:client' from='romeo@montague.example/orchard' to='juliet@capulet.example' type='chat' id='5f3a0a6e-2c59-4d2b-9a0e-2e9c3b1f7c11'><body>` +
	strings.Repeat("But soft, what light through yonder window breaks? ", 3) +
	`</body><origin-id xmlns='urn:xmpp:sid:0' id='5f3a0a6e-2c59-4d2b-9a0e-2e9c3b1f7c11'/><request xmlns='urn:xmpp:receipts'/></message>`)

// workers runs body on exactly n goroutines (b.RunParallel would start a
// multiple of GOMAXPROCS), which share b.N operations: each op is one true
// from next.
func workers(b *testing.B, n int, body func(worker int, next func() bool)) {
	var left atomic.Int64
	left.Store(int64(b.N))
	next := func() bool { return left.Add(-1) >= 0 }
	var wg sync.WaitGroup
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body(w, next)
		}()
	}
	wg.Wait()
}

// BenchmarkArchiveAppend is the storage side of archiving: each op is one
// Append of one message, as the hooks do, from exactly N goroutines at once
// (group commit gathers them into shared transactions; with one there is a
// commit per message). msgs/s is the archiving throughput.
func BenchmarkArchiveAppend(b *testing.B) {
	var users []string
	for i := range 64 {
		users = append(users, fmt.Sprintf("u%d@example.com", i))
	}
	for _, appenders := range []int{1, 16, 64, 256} {
		b.Run(fmt.Sprintf("appenders=%d", appenders), func(b *testing.B) {
			s := openStore(b, "", users...)
			a := s.Archive()
			ctx := context.Background()
			b.ResetTimer()
			done := measure(b, "msgs/s", 1)
			workers(b, appenders, func(w int, next func() bool) {
				u := users[(w+1)%len(users)]
				for next() {
					m := []storage.ArchiveMessage{{Owner: u, With: "romeo@montague.example/orchard", MessageID: "x", Stanza: benchStanza}}
					if err := a.Append(ctx, m); err != nil {
						b.Error(err)
						return
					}
				}
			})
			done()
		})
	}
}

// fakeSession is a bound, available session that keeps nothing it is sent.
type fakeSession struct {
	router.Values
	j    jid.JID
	sent atomic.Int64
}

var availablePresence = &wire.Stanza{Kind: wire.KindPresence, Name: "presence", Raw: []byte("<presence/>")}

func (s *fakeSession) JID() jid.JID                  { return s.j }
func (s *fakeSession) Send([]byte) bool              { s.sent.Add(1); return true }
func (s *fakeSession) Presence() *wire.Stanza        { return availablePresence }
func (s *fakeSession) Priority() int                 { return 0 }
func (s *fakeSession) SetPresence(*wire.Stanza, int) {}
func (s *fakeSession) Interested() bool              { return true }
func (s *fakeSession) SetInterested()                {}
func (s *fakeSession) Replace()                      {}

type allExist struct{}

func (allExist) Exists(context.Context, string) bool { return true }

// newRouter is a router with the mam module on store, for example.com.
func newRouter(store storage.Store, cfg *mam.Config) *router.Router {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := router.New(log, func(d string) bool { return d == "example.com" }, allExist{})
	mam.New(r, store, log, cfg)
	return r
}

// BenchmarkRouteArchived is archiving as the server does it: chat messages
// between local users routed through the router, each archived for its
// sender (outbound hook) and its recipient (inbound hook, stanza-id), from
// 128 senders at once. msgs/s counts routed messages; each is two rows;
// cpu-µs/op is the whole process's CPU per routed message.
//
// users=64 is a small, hot archive. users=5000 is the shape of a busy
// server (the perf harness runs 5,000 users): the archive starts with 20
// messages per user (100,000 rows), so that each user's newest index
// entries sit on index pages of their own, and the senders go round all
// 5,000 users.
func BenchmarkRouteArchived(b *testing.B) {
	for _, tc := range []struct{ users, prefill int }{{64, 0}, {5000, 20}} {
		b.Run(fmt.Sprintf("users=%d", tc.users), func(b *testing.B) {
			benchRouteArchived(b, tc.users, tc.prefill)
		})
	}
}

func benchRouteArchived(b *testing.B, users, prefill int) {
	var names []string
	for i := range users {
		names = append(names, fmt.Sprintf("u%d@example.com", i))
	}
	s := openStore(b, "", names...)
	if prefill > 0 {
		batch := make([]storage.ArchiveMessage, 0, 2000)
		for k := range prefill {
			for i, n := range names {
				batch = append(batch, storage.ArchiveMessage{Owner: n, With: names[(i+1+k)%users] + "/res", MessageID: "p", Stanza: benchStanza})
				if len(batch) == cap(batch) {
					if err := s.Archive().Append(b.Context(), batch); err != nil {
						b.Fatal(err)
					}
					batch = batch[:0]
				}
			}
		}
		if err := s.Archive().Append(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
	}
	r := newRouter(s, nil)
	sessions := make([]*fakeSession, users)
	for i := range sessions {
		sessions[i] = &fakeSession{j: jid.MustParse(names[i] + "/res")}
		r.Bind(sessions[i])
	}
	const senders = 128
	b.ResetTimer()
	done := measure(b, "msgs/s", 1)
	workers(b, senders, func(w int, next func() bool) {
		// Worker w sends from users w+1, w+1+senders, … in turn, each to
		// the next user.
		i := (w + 1) % users
		// The archive writes each message's routing holds (its ack waits
		// for them): the benchmark ends when all are committed.
		var holds []<-chan error
		defer func() {
			for _, h := range holds {
				if err := <-h; err != nil {
					b.Error(err)
				}
			}
		}()
		for next() {
			from, to := sessions[i], sessions[(i+1)%users]
			raw := []byte("<message type='chat' to='" + to.j.Bare().String() + "' id='m1'><body>" +
				strings.Repeat("But soft, what light through yonder window breaks? ", 3) + "</body><origin-id xmlns='urn:xmpp:sid:0' id='m1'/></message>")
			st, err := wire.ParseElement(raw, wire.NSClient)
			if err != nil {
				b.Error(err)
				return
			}
			st.SetAddrs(from.j.String(), to.j.Bare().String())
			c := &router.Context{Context: context.Background(), Router: r, Stanza: st, From: from.j, To: to.j.Bare(), Origin: from}
			r.Route(c)
			holds = append(holds, c.Holds()...)
			if users > senders {
				i = (i + senders) % users
			}
		}
	})
	// A store that defers index work (SQLite's tail) does it now, inside
	// the measurement.
	if m, ok := s.Archive().(interface{ MergeTail(context.Context) error }); ok {
		if err := m.MergeTail(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	done()
	var delivered int64
	for _, s := range sessions {
		delivered += s.sent.Load()
	}
	if delivered != int64(b.N) {
		b.Errorf("%d messages delivered, %d routed", delivered, b.N)
	}
}

const (
	bigArchive = 1_000_000
	bigOwner   = "juliet@example.com"
)

var bigOnce struct {
	sync.Mutex
	path string
	seqs []int64
}

// buildBig makes (once per process, or reuses XMPPD_BENCH_ARCHIVE) a store
// with 1,000,000 messages in juliet's archive, 20 contacts, stamps 50 ms
// apart, written in transactions of 10,000; it returns the path and the
// archive's seqs in order.
func buildBig(b *testing.B) (string, []int64) {
	bigOnce.Lock()
	defer bigOnce.Unlock()
	if bigOnce.path != "" {
		return bigOnce.path, bigOnce.seqs
	}
	path := os.Getenv("XMPPD_BENCH_ARCHIVE")
	if path == "" {
		dir, err := os.MkdirTemp("", "mam-bench")
		if err != nil {
			b.Fatal(err)
		}
		path = filepath.Join(dir, "big.db")
	}
	s, err := sqlite.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Accounts().Create(ctx, storage.Account{JID: bigOwner}); err != nil && err != storage.ErrExists {
		b.Fatal(err)
	}
	seqs := func() []int64 {
		var out []int64
		var after int64
		for {
			p, err := s.Archive().Query(ctx, storage.ArchiveQuery{Owner: bigOwner, PageAfter: after, Max: 10000})
			if err != nil {
				b.Fatal(err)
			}
			for _, m := range p.Messages {
				out = append(out, m.Seq)
			}
			if p.Complete {
				return out
			}
			after = out[len(out)-1]
		}
	}
	have := seqs()
	if len(have) < bigArchive {
		t0 := time.Now()
		start := time.Now().Add(-bigArchive * 50 * time.Millisecond)
		batch := make([]storage.ArchiveMessage, 0, 10000)
		for i := len(have); i < bigArchive; i++ {
			batch = append(batch, storage.ArchiveMessage{
				Owner: bigOwner, With: fmt.Sprintf("c%d@example.net/r", i%20), Outgoing: i%2 == 0,
				MessageID: fmt.Sprintf("m%d", i), Stamp: start.Add(time.Duration(i) * 50 * time.Millisecond), Stanza: benchStanza,
			})
			if len(batch) == cap(batch) || i == bigArchive-1 {
				if err := s.Archive().Append(ctx, batch); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		b.Logf("built a %d-message archive in %v", bigArchive, time.Since(t0).Round(time.Second))
		have = seqs()
	}
	bigOnce.path, bigOnce.seqs = path, have
	return path, have
}

// BenchmarkQueryPage is one MAM query for a page of 50 from a
// 1,000,000-message archive, through the router and the module (parsing
// the iq, the storage query, building the 50 result messages and the fin),
// at random positions, alternating forward (<after/>) and backward
// (<before/>) pages. With the default count-limit (10,000) the RSM count is
// attempted on every query; count-limit=0 shows the page alone.
func BenchmarkQueryPage(b *testing.B) {
	path, seqs := buildBig(b)
	for _, tc := range []struct {
		name       string
		countLimit int
		with       string
	}{
		{"count-limit=10000", 10000, ""},
		{"count-limit=0", 0, ""},
		{"with/count-limit=10000", 10000, "c7@example.net"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := openStore(b, path)
			cfg := mam.DefaultConfig()
			cfg.CountLimit = tc.countLimit
			r := newRouter(s, cfg)
			sess := &fakeSession{j: jid.MustParse(bigOwner + "/bench")}
			r.Bind(sess)
			form := ""
			if tc.with != "" {
				form = "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>" +
					"<field var='with'><value>" + tc.with + "</value></field></x>"
			}
			rng := rand.New(rand.NewPCG(1, 2))
			before := sess.sent.Load()
			done := measure(b, "pages/s", 1)
			i := 0
			for b.Loop() {
				pos := rng.IntN(len(seqs) - 2000)
				var rsm string
				if i%2 == 0 {
					rsm = "<after>" + mam.FormatID(seqs[pos]) + "</after>"
				} else {
					rsm = "<before>" + mam.FormatID(seqs[pos+1000]) + "</before>"
				}
				i++
				raw := "<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2' queryid='f'>" + form +
					"<set xmlns='http://jabber.org/protocol/rsm'><max>50</max>" + rsm + "</set></query></iq>"
				st, err := wire.ParseElement([]byte(raw), wire.NSClient)
				if err != nil {
					b.Fatal(err)
				}
				st.SetAddrs(sess.j.String(), "")
				r.Route(&router.Context{Context: context.Background(), Router: r, Stanza: st, From: sess.j, Origin: sess})
			}
			done()
			if got, want := sess.sent.Load()-before, int64(b.N)*51; got != want {
				b.Errorf("%d stanzas sent for %d queries, want %d (50 results and the fin each)", got, b.N, want)
			}
		})
	}
}

// TestWorkers: appenders=N in the benchmarks means N goroutines, whatever
// GOMAXPROCS is, and they do b.N operations between them.
func TestWorkers(t *testing.T) {
	for _, n := range []int{1, 3, 16} {
		var started, ops atomic.Int64
		var bn int
		testing.Benchmark(func(b *testing.B) {
			started.Store(0)
			ops.Store(0)
			bn = b.N
			workers(b, n, func(_ int, next func() bool) {
				started.Add(1)
				for next() {
					ops.Add(1)
				}
			})
		})
		if started.Load() != int64(n) || ops.Load() != int64(bn) {
			t.Errorf("workers(%d): %d goroutines did %d ops of b.N=%d", n, started.Load(), ops.Load(), bn)
		}
	}
}
