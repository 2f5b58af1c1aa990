package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"weak"

	"github.com/mattn/go-sqlite3"

	"github.com/xmppd/xmppd/storage"
)

// The archive (storage.Archive) keeps one row per archived message; see
// migrations/0003_archive.sql. Its seq is the rowid and the receive time in
// microseconds, so time filters and retention are rowid ranges.
//
// Appends are group-committed: every Append queues its messages and waits;
// a writer goroutine, running only while there is something to write, takes
// everything queued (up to maxBatch messages) into one transaction on the
// writer connection, commits once, and releases each waiter with its own
// result. While it commits, new appends queue up for the next batch, so the
// batch size follows the load without any timer. Requests for unknown
// owners are found by one query per batch and fail alone; the rows of the
// others go in with multi-row INSERTs.

// maxBatch bounds the messages written in one transaction.
const maxBatch = 2048

type archive struct {
	w, r *sql.DB // the Store's pools (not the Store: see archives)

	mu      sync.Mutex
	queue   []*appendReq
	writing bool
	// loaded: newest holds the newest Seq assigned (read from the database
	// at the first Enqueue, then kept here).
	loaded bool
	newest int64
	// pendMsgs and pendBytes count what Enqueue took and no commit has
	// finished with yet (queued, or in the batch being written); Enqueue
	// waits while they pass maxMsgs or maxBytes, on space, which a
	// finished commit closes.
	pendMsgs  int
	pendBytes int64
	// waiters are the Enqueues waiting for room, in arrival order.
	waiters  []*spaceWait
	maxMsgs  int
	maxBytes int64
	space    chan struct{}
	// owners maps an owner to the newest request holding one of its
	// messages that is not committed yet: reads for that owner wait for it
	// first (read-your-writes; commits are in queue order).
	owners map[string]*appendReq
	// The tail (migrations/0010): tailOwners maps each owner with rows in
	// archive_tail to its newest seq there, tailRows counts them (loaded
	// with newest). merges are reads waiting for the tail to be moved up
	// to a seq.
	tailOwners map[string]int64
	tailRows   int
	merges     []mergeWait
	// mergeAt and mergeChunk (tests lower them).
	mergeAt, mergeChunk int
	// sweeps are the retention sweeps (DeleteBefore) waiting for the
	// writer, which runs one chunk of the first between batches
	// (archive_retention.go).
	sweeps []*sweepReq
	// Test seams (HoldArchiveCommits, ArchiveQueueFull, ArchiveReadWaits,
	// ArchiveSweepQueued).
	held, full, readWaits, sweepQueued chan struct{}
	// spareQ is the writer's last batch, reused for the queue.
	spareQ []*appendReq
	// encBuf is the writer's buffer for a batch's encoded stanzas.
	encBuf []byte
	// ckpt copies the WAL into the database file in the background
	// (archive_checkpoint.go); started with load, nil if it could not be.
	ckpt *checkpointer
}

type appendReq struct {
	ctx   context.Context
	msgs  []storage.ArchiveMessage
	bytes int64
	err   error
	res   chan error // yields err, then closed
	// done, made only when a read or a flush waits for this request (most
	// never are), is closed once the commit is over (res has its value).
	// Guarded by archive.mu.
	done chan struct{}
}

// doneChan returns a channel closed once r's commit is over (a.mu held, r
// not committed yet).
func (r *appendReq) doneChan() chan struct{} {
	if r.done == nil {
		r.done = make(chan struct{})
	}
	return r.done
}

// mergeWait is a read waiting until the tail is merged up to upTo.
type mergeWait struct {
	upTo int64
	done chan error
}

// The tail is merged when it holds mergeAt rows (or a read needs it), in
// transactions of at most mergeChunk rows, between append batches.
const (
	mergeAt    = 16384
	mergeChunk = 16384
)

// Default bounds of the uncommitted queue (SetQueueLimit; the mam module
// sets its configured ones): four full batches, and 64 MiB of stanzas.
const (
	defaultQueueMsgs  = 4 * maxBatch
	defaultQueueBytes = 64 << 20
)

// archives holds each Store's archive (its queue is per database). The key
// is weak and the value does not point back at the Store, so a Store nobody
// uses any more is collected and its entry removed.
var archives sync.Map // weak.Pointer[Store] → *archive

// Archive implements storage.Store.
func (s *Store) Archive() storage.Archive {
	k := weak.Make(s)
	if a, ok := archives.Load(k); ok {
		return a.(*archive)
	}
	a, loaded := archives.LoadOrStore(k, &archive{w: s.w, r: s.r, maxMsgs: defaultQueueMsgs, maxBytes: defaultQueueBytes, mergeAt: mergeAt, mergeChunk: mergeChunk})
	if !loaded {
		ar := a.(*archive)
		runtime.AddCleanup(s, func(k weak.Pointer[Store]) {
			archives.Delete(k)
			ar.stopCheckpointer()
		}, k)
	}
	return a.(*archive)
}

// flushArchive waits until the archive writes s's Enqueue took are
// committed (Close calls it, so a shutdown loses none of them).
func flushArchive(s *Store) {
	v, ok := archives.Load(weak.Make(s))
	if !ok {
		return
	}
	a := v.(*archive)
	for {
		a.mu.Lock()
		if len(a.queue) == 0 && a.pendMsgs == 0 {
			a.mu.Unlock()
			a.stopCheckpointer()
			return
		}
		var last *appendReq
		if len(a.queue) > 0 {
			last = a.queue[len(a.queue)-1]
		}
		space := a.space
		if last == nil && space == nil {
			a.space = make(chan struct{})
			space = a.space
		}
		var done chan struct{}
		if last != nil {
			done = last.doneChan()
		}
		a.mu.Unlock()
		if done != nil {
			<-done
		} else {
			<-space // the batch being written finishes
		}
	}
}

const archiveCols = "seq, owner, with_bare, with_res, outgoing, msg_id, origin_id, retracted_us, stanza"

func scanArchive(sc interface{ Scan(...any) error }) (storage.ArchiveMessage, error) {
	var m storage.ArchiveMessage
	var bare, res string
	var retracted sql.NullInt64
	if err := sc.Scan(&m.Seq, &m.Owner, &bare, &res, &m.Outgoing, &m.MessageID, &m.OriginID, &retracted, &m.Stanza); err != nil {
		return m, err
	}
	m.Stamp = fromMicros(m.Seq)
	m.With = bare
	if res != "" {
		m.With = bare + "/" + res
	}
	m.Retracted = fromNullMicros(retracted)
	var err error
	m.Stanza, err = decodeStanza(m.Stanza)
	return m, err
}

// splitJID splits a canonical JID into its bare part and resource.
func splitJID(j string) (bare, res string) {
	if i := strings.IndexByte(j, '/'); i >= 0 {
		return j[:i], j[i+1:]
	}
	return j, ""
}

func (a *archive) Append(ctx context.Context, msgs []storage.ArchiveMessage) error {
	return <-a.Enqueue(ctx, msgs)
}

// failed is a channel that yields err at once.
func failed(err error) <-chan error {
	ch := make(chan error, 1)
	ch <- err
	close(ch)
	return ch
}

func (a *archive) SetQueueLimit(msgs int, bytes int64) {
	a.mu.Lock()
	a.maxMsgs, a.maxBytes = msgs, bytes
	a.freeSpace()
	a.mu.Unlock()
}

// freeSpace wakes what waits for room: the Enqueues that now fit, in
// arrival order, and a flush waiting for the batch being written (a.mu
// held).
func (a *archive) freeSpace() {
	a.grant()
	if a.space != nil {
		close(a.space)
		a.space = nil
	}
}

// spaceWait is an Enqueue waiting for room in the queue.
type spaceWait struct {
	n       int
	size    int64
	ch      chan struct{} // closed when granted
	granted bool          // its messages and bytes are counted in pend*
}

// grant gives room to the waiting Enqueues that fit, first come first
// served, counting theirs in the queue (a.mu held).
func (a *archive) grant() {
	for len(a.waiters) > 0 {
		w := a.waiters[0]
		if a.over(w.n, w.size) {
			return
		}
		a.pendMsgs += w.n
		a.pendBytes += w.size
		w.granted = true
		close(w.ch)
		a.waiters[0] = nil
		a.waiters = a.waiters[1:]
	}
}

// over tells whether n more messages of size bytes would pass the queue's
// bounds (a.mu held). A call larger than the bounds passes alone.
func (a *archive) over(n int, size int64) bool {
	return a.pendMsgs > 0 && (a.maxMsgs > 0 && a.pendMsgs+n > a.maxMsgs || a.maxBytes > 0 && a.pendBytes+size > a.maxBytes)
}

func (a *archive) Enqueue(ctx context.Context, msgs []storage.ArchiveMessage) <-chan error {
	if len(msgs) == 0 {
		return failed(nil)
	}
	var size int64
	for i := range msgs {
		if !msgs[i].Retracted.IsZero() {
			return failed(errors.New("sqlite: Append: Retracted must be zero"))
		}
		size += int64(len(msgs[i].Stanza))
	}
	if err := ctx.Err(); err != nil {
		return failed(err)
	}
	a.mu.Lock()
	if len(a.waiters) > 0 || a.over(len(msgs), size) {
		// Wait in line: the writer grants room to waiters in arrival order
		// as commits free it, waking only those that fit (not every waiter
		// at every commit).
		w := &spaceWait{n: len(msgs), size: size, ch: make(chan struct{})}
		a.waiters = append(a.waiters, w)
		if a.full != nil {
			close(a.full)
			a.full = nil
		}
		a.mu.Unlock()
		select {
		case <-w.ch:
			a.mu.Lock()
		case <-ctx.Done():
			a.mu.Lock()
			if w.granted {
				a.pendMsgs -= w.n
				a.pendBytes -= w.size
			} else if i := slices.Index(a.waiters, w); i >= 0 {
				a.waiters = slices.Delete(a.waiters, i, i+1)
			}
			a.grant()
			a.mu.Unlock()
			return failed(ctx.Err())
		}
	} else {
		a.pendMsgs += len(msgs)
		a.pendBytes += size
	}
	if err := a.load(ctx); err != nil {
		a.pendMsgs -= len(msgs)
		a.pendBytes -= size
		a.grant()
		a.mu.Unlock()
		return failed(err)
	}
	now := time.Now().UnixMicro()
	for i := range msgs {
		m := &msgs[i]
		seq := now
		if !m.Stamp.IsZero() {
			seq = m.Stamp.UnixMicro()
		}
		seq = max(seq, a.newest+1)
		a.newest = seq
		m.Seq, m.Stamp = seq, fromMicros(seq)
	}
	req := &appendReq{ctx: ctx, msgs: msgs, bytes: size, res: make(chan error, 1)}
	a.queue = append(a.queue, req)
	if a.owners == nil {
		a.owners = make(map[string]*appendReq)
	}
	for i := range msgs {
		a.owners[msgs[i].Owner] = req
	}
	a.startWriter()
	a.mu.Unlock()
	return req.res
}

// newestSQL is the newest seq on disk, in either table.
const newestSQL = "SELECT max(COALESCE((SELECT max(seq) FROM archive), 0), COALESCE((SELECT max(seq) FROM archive_tail), 0))"

// load reads, once per Store, the newest Seq on disk and which owners have
// rows in the tail (a.mu held).
func (a *archive) load(ctx context.Context) error {
	if a.loaded {
		return nil
	}
	if err := a.r.QueryRowContext(ctx, newestSQL).Scan(&a.newest); err != nil {
		return err
	}
	rows, err := a.r.QueryContext(ctx, "SELECT owner, max(seq), count(*) FROM archive_tail GROUP BY owner")
	if err != nil {
		return err
	}
	defer rows.Close()
	a.tailOwners = make(map[string]int64)
	a.tailRows = 0
	for rows.Next() {
		var o string
		var seq int64
		var n int
		if err := rows.Scan(&o, &seq, &n); err != nil {
			return err
		}
		a.tailOwners[o] = seq
		a.tailRows += n
	}
	if err := rows.Err(); err != nil {
		return err
	}
	a.loaded = true
	if c, err := startCheckpointer(ctx, a.r); err == nil {
		// The checkpointer copies the WAL from now on; the writer's own
		// checkpoint is only a safety net (archive_checkpoint.go).
		if _, err := a.w.ExecContext(ctx, "PRAGMA wal_autocheckpoint = "+strconv.Itoa(writerSafetyCheckpointPages)); err == nil {
			a.ckpt = c
		} else {
			c.close()
		}
	}
	return nil
}

// stopCheckpointer stops the background checkpoints (the Store closes).
func (a *archive) stopCheckpointer() {
	a.mu.Lock()
	c := a.ckpt
	a.ckpt = nil
	a.mu.Unlock()
	c.close()
}

// settle waits until every message Enqueue took for owner so far is
// committed (or failed) and moved from the tail into the indexed archive,
// so that a read sees them.
func (a *archive) settle(ctx context.Context, owner string) error {
	a.mu.Lock()
	if err := a.load(ctx); err != nil {
		a.mu.Unlock()
		return err
	}
	var done chan struct{}
	if r := a.owners[owner]; r != nil {
		done = r.doneChan()
		if a.readWaits != nil {
			close(a.readWaits)
			a.readWaits = nil
		}
	}
	a.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	a.mu.Lock()
	upTo := a.tailOwners[owner]
	if upTo == 0 {
		a.mu.Unlock()
		return nil
	}
	return a.awaitMerge(ctx, upTo)
}

// MergeTail moves the whole tail, as far as it was committed when called,
// into the indexed archive and returns once it is done (benchmarks count
// the merge's cost with it).
func (a *archive) MergeTail(ctx context.Context) error {
	a.mu.Lock()
	if err := a.load(ctx); err != nil {
		a.mu.Unlock()
		return err
	}
	var upTo int64
	for _, s := range a.tailOwners {
		upTo = max(upTo, s)
	}
	if upTo == 0 {
		a.mu.Unlock()
		return nil
	}
	return a.awaitMerge(ctx, upTo)
}

// awaitMerge asks the writer to merge the tail up to upTo and waits for
// it (called with a.mu held; returns with it released).
func (a *archive) awaitMerge(ctx context.Context, upTo int64) error {
	w := mergeWait{upTo: upTo, done: make(chan error, 1)}
	a.merges = append(a.merges, w)
	a.startWriter()
	a.mu.Unlock()
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startWriter starts the writer goroutine unless it runs (a.mu held).
func (a *archive) startWriter() {
	if !a.writing {
		a.writing = true
		go a.writer()
	}
}

// wantMerge tells whether the writer should merge the tail now (a.mu held).
func (a *archive) wantMerge() bool {
	return len(a.merges) > 0 || a.tailRows >= a.mergeAt
}

// merge moves one chunk of the tail into archive, up to what the waiting
// reads need (or the whole tail when it is large), and releases the reads
// it satisfied.
func (a *archive) merge() {
	a.mu.Lock()
	var target int64
	for _, w := range a.merges {
		target = max(target, w.upTo)
	}
	if a.tailRows >= a.mergeAt {
		target = a.newest
	}
	chunk := a.mergeChunk
	a.mu.Unlock()

	hi, n, err := a.mergeUpTo(target, chunk)

	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		// The reads waiting fail; the rows stay in the tail, and the next
		// read (not the size) tries again, so a failing merge does not
		// spin.
		for _, w := range a.merges {
			w.done <- err
		}
		a.merges = nil
		a.tailRows = 0
		return
	}
	a.tailRows = max(0, a.tailRows-n)
	for o, s := range a.tailOwners {
		if s <= hi {
			delete(a.tailOwners, o)
		}
	}
	left := a.merges[:0]
	for _, w := range a.merges {
		if w.upTo <= hi {
			w.done <- nil
		} else {
			left = append(left, w)
		}
	}
	clear(a.merges[len(left):])
	a.merges = left
}

// mergeUpTo moves the tail's rows with seq <= target, at most chunk of
// them, into archive in one transaction; it returns the highest seq now
// merged (every tail row up to it is in archive) and how many rows moved.
func (a *archive) mergeUpTo(target int64, chunk int) (hi int64, n int, err error) {
	ctx := context.Background()
	tx, err := a.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback()
	// Enough page cache for the index leaves of every owner in a chunk,
	// so that each is written once (the setting is per connection).
	if _, err := tx.ExecContext(ctx, "PRAGMA cache_size = -65536"); err != nil {
		return 0, 0, err
	}
	err = tx.QueryRowContext(ctx, "SELECT seq FROM archive_tail WHERE seq <= ? ORDER BY seq LIMIT 1 OFFSET ?", target, chunk-1).Scan(&hi)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		hi = target
	case err != nil:
		return 0, 0, err
	}
	// In owner order: each owner's index entries go in together, one leaf
	// page each, and the pages are written once at the commit.
	res, err := tx.ExecContext(ctx, `INSERT INTO archive (seq, owner, with_bare, with_res, outgoing, msg_id, origin_id, stanza)
		SELECT seq, owner, with_bare, with_res, outgoing, msg_id, origin_id, stanza FROM archive_tail WHERE seq <= ? ORDER BY owner, seq`, hi)
	if err != nil {
		return 0, 0, err
	}
	moved, err := res.RowsAffected()
	if err != nil {
		return 0, 0, err
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM archive_tail WHERE seq <= ?", hi); err != nil {
		return 0, 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, err
	}
	return hi, int(moved), nil
}

// writer commits batches until the queue is empty.
func (a *archive) writer() {
	prev := 0 // requests in the last batch
	for {
		// When the last batch was shared, give the callers it released a
		// moment to queue their next messages, so batches stay large.
		for k := 0; prev > 1 && k < lingerYields && a.pending() < prev/2; k++ {
			runtime.Gosched()
		}
		a.mu.Lock()
		for a.held != nil {
			h := a.held
			a.mu.Unlock()
			<-h
			a.mu.Lock()
		}
		n, i := 0, 0
		for i < len(a.queue) && (i == 0 || n+len(a.queue[i].msgs) <= maxBatch) {
			n += len(a.queue[i].msgs)
			i++
		}
		merge := a.wantMerge()
		sweep := len(a.sweeps) > 0
		if i == 0 && !merge && !sweep {
			a.writing = false
			a.queue = nil
			a.mu.Unlock()
			return
		}
		var batch []*appendReq
		if i == len(a.queue) {
			// The whole queue: take it and queue into the spare slice, so
			// that neither is reallocated at load.
			batch = a.queue
			a.queue, a.spareQ = a.spareQ[:0], nil
		} else {
			batch = slices.Clone(a.queue[:i])
			a.queue = a.queue[i:]
		}
		a.mu.Unlock()

		if len(batch) > 0 {
			a.commit(batch)
			// The tail's bookkeeping comes before the results, so a read
			// released by one looks for the rows where they are.
			a.mu.Lock()
			for _, r := range batch {
				a.pendMsgs -= len(r.msgs)
				a.pendBytes -= r.bytes
				for j := range r.msgs {
					m := &r.msgs[j]
					if r.err == nil {
						if _, ok := a.tailOwners[m.Owner]; !ok {
							a.tailOwners[m.Owner] = 0
						}
						a.tailOwners[m.Owner] = max(a.tailOwners[m.Owner], m.Seq)
						a.tailRows++
					}
					if a.owners[m.Owner] == r {
						delete(a.owners, m.Owner)
					}
				}
				r.res <- r.err // buffered: never blocks
				close(r.res)
				if r.done != nil {
					close(r.done)
				}
			}
			a.freeSpace()
			ckpt := a.ckpt
			clear(batch)
			if cap(batch) <= 4*maxBatch {
				a.spareQ = batch[:0]
			}
			a.mu.Unlock()
			ckpt.want()
		}
		if merge {
			a.mu.Lock()
			ckpt := a.ckpt
			a.mu.Unlock()
			// The merge is the largest commit: start it on a fresh WAL,
			// and let the background checkpoints copy it.
			ckpt.catchUp()
			a.merge()
			ckpt.want()
		}
		if sweep {
			a.sweepChunk()
		}
		prev = len(batch)
	}
}

// lingerYields bounds how often the writer yields to let released callers
// queue up before it takes the next batch (no timer: at most a few
// scheduler rounds, and only when the last batch was shared).
const lingerYields = 4

func (a *archive) pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.queue)
}

// maxEncBuf bounds the encoding buffer the writer keeps between batches.
const maxEncBuf = 4 << 20

// insertChunk is how many rows one INSERT statement writes at most (8
// parameters each, well under SQLite's limit of 32766).
const insertChunk = 128

// insertSQL returns the INSERT statement for n rows into table (archive_tail,
// or archive for BulkAppend).
func insertSQL(table string, n int) string {
	var b strings.Builder
	b.Grow(96 + n*18)
	b.WriteString("INSERT INTO " + table + " (seq, owner, with_bare, with_res, outgoing, msg_id, origin_id, stanza) VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?,?)")
	}
	return b.String()
}

// insertSQLs[k] is the INSERT statement for 1<<k rows. A batch is written
// in chunks of these sizes only (its row count in binary), so the writer
// connection's statement cache holds every statement the archive needs and
// no batch prepares one: before, the statement for a batch's last, partial
// chunk (and the owner check's IN list) had a different text for nearly
// every batch, was prepared for it and pushed other statements out of the
// cache.
var insertSQLs = func() (s [8]string) {
	for k := range s {
		s[k] = insertSQL("archive_tail", 1<<k)
	}
	return s
}()

func init() {
	if 1<<(len(insertSQLs)-1) != insertChunk {
		panic("sqlite: insertSQLs does not end at insertChunk")
	}
}

// ownersSQL reads which of a JSON array of JIDs have an account: one
// statement text whatever the batch holds.
const (
	ownersSQL = "SELECT jid FROM accounts WHERE jid IN (SELECT value FROM json_each(?))"
	ownerSQL  = "SELECT jid FROM accounts WHERE jid = ?"
)

// commit writes one batch in one transaction and sets each request's result.
//
// Owners are checked first (one query for the batch's distinct owners,
// under the write lock), so a request for an unknown owner fails alone and
// the rows of the others go in with multi-row INSERTs.
func (a *archive) commit(batch []*appendReq) {
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	fail := func(err error) {
		for _, r := range live {
			if r.err == nil {
				r.err = err
			}
		}
	}
	ctx := context.Background() // the batch is not any one caller's
	tx, err := a.w.BeginTx(ctx, nil)
	if err != nil {
		fail(err)
		return
	}
	defer tx.Rollback()

	// Which owners exist.
	owners := make(map[string]bool, 8)
	list := make([]string, 0, 8)
	for _, r := range live {
		for i := range r.msgs {
			if _, ok := owners[r.msgs[i].Owner]; !ok {
				owners[r.msgs[i].Owner] = false
				list = append(list, r.msgs[i].Owner)
			}
		}
	}
	var rows *sql.Rows
	if len(list) == 1 { // a lone appender: no JSON to build and parse
		rows, err = tx.QueryContext(ctx, ownerSQL, list[0])
	} else {
		var js []byte
		if js, err = json.Marshal(list); err == nil {
			rows, err = tx.QueryContext(ctx, ownersSQL, string(js))
		}
	}
	if err != nil {
		fail(err)
		return
	}
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			rows.Close()
			fail(err)
			return
		}
		owners[o] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		fail(err)
		return
	}

	// Seqs were assigned in memory; one that is not after what is on disk
	// means another Store appended to this file (only the server appends):
	// fail the batch rather than break the order, and move past it.
	var last int64
	if err := tx.QueryRowContext(ctx, newestSQL).Scan(&last); err != nil {
		fail(err)
		return
	}
	if last >= live[0].msgs[0].Seq {
		a.mu.Lock()
		a.newest = max(a.newest, last)
		a.mu.Unlock()
		fail(fmt.Errorf("sqlite: archive: seq %d already on disk (another process appends to the archive)", last))
		return
	}
	vals := make([]any, 0, 8*insertChunk)
	// The batch's stanzas are encoded into one buffer, kept for the next
	// batch (SQLite copies a bound value). A local message's two rows (the
	// sender's and the recipient's) usually share one stanza slice (the mam
	// module reuses it): it is encoded once.
	enc := a.encBuf[:0]
	type span struct{ at, end, src int } // enc[at:end] encodes src bytes
	shared := make(map[*byte]span, 8)
	defer func() {
		if cap(enc) <= maxEncBuf {
			a.encBuf = enc[:0]
		}
	}()
	// flush writes the rows in vals, in chunks of a power of two.
	flush := func() error {
		for len(vals) > 0 {
			k := len(insertSQLs) - 1
			for 8<<k > len(vals) {
				k--
			}
			if _, err := tx.ExecContext(ctx, insertSQLs[k], vals[:8<<k]...); err != nil {
				return err
			}
			vals = vals[:copy(vals, vals[8<<k:])]
		}
		return nil
	}
	for _, r := range live {
		ok := true
		for i := range r.msgs {
			ok = ok && owners[r.msgs[i].Owner]
		}
		if !ok {
			r.err = storage.ErrNotFound
			continue
		}
		for i := range r.msgs {
			m := &r.msgs[i]
			bare, res := splitJID(m.With)
			var v []byte
			if len(m.Stanza) == 0 {
				v = []byte{}
			} else if sp, ok := shared[&m.Stanza[0]]; ok && sp.src == len(m.Stanza) {
				v = enc[sp.at:sp.end:sp.end]
			}
			if v == nil {
				at := len(enc)
				enc = appendStanza(enc, m.Stanza)
				v = enc[at:len(enc):len(enc)]
				shared[&m.Stanza[0]] = span{at, len(enc), len(m.Stanza)}
			}
			vals = append(vals, m.Seq, m.Owner, bare, res, m.Outgoing, m.MessageID, m.OriginID, v)
			if len(vals) == cap(vals) {
				if err := flush(); err != nil {
					fail(err)
					return
				}
			}
		}
	}
	err = flush()
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		fail(err)
	}
}

func (a *archive) Get(ctx context.Context, owner string, seq int64) (storage.ArchiveMessage, error) {
	if err := a.settle(ctx, owner); err != nil {
		return storage.ArchiveMessage{}, err
	}
	m, err := scanArchive(a.r.QueryRowContext(ctx, "SELECT "+archiveCols+" FROM archive WHERE seq = ? AND owner = ?", seq, owner))
	if errors.Is(err, sql.ErrNoRows) {
		return m, storage.ErrNotFound
	}
	return m, err
}

// build writes the selection of aq (without paging) as SQL and arguments.
func (q *archiveSel) build(aq storage.ArchiveQuery) {
	q.where = append(q.where[:0], "owner = ?"...)
	q.args = append(q.args[:0], aq.Owner)
	if aq.With != "" {
		bare, res := splitJID(aq.With)
		q.where = append(q.where, " AND with_bare = ?"...)
		q.args = append(q.args, bare)
		if res != "" {
			q.where = append(q.where, " AND with_res = ?"...)
			q.args = append(q.args, res)
		}
	}
	lo, hi := int64(-1<<63), int64(1<<63-1)
	if !aq.Start.IsZero() {
		lo = max(lo, microsCeil(aq.Start))
	}
	if aq.After != 0 {
		lo = max(lo, aq.After+1)
	}
	if !aq.End.IsZero() {
		hi = min(hi, aq.End.UnixMicro())
	}
	if aq.Before != 0 {
		hi = min(hi, aq.Before-1)
	}
	if lo != -1<<63 {
		q.where = append(q.where, " AND seq >= ?"...)
		q.args = append(q.args, lo)
	}
	if hi != 1<<63-1 {
		q.where = append(q.where, " AND seq <= ?"...)
		q.args = append(q.args, hi)
	}
	if aq.IDs != nil {
		if len(aq.IDs) == 0 {
			q.where = append(q.where, " AND 0"...)
		} else {
			q.where = append(q.where, " AND seq IN ("...)
			for i, id := range aq.IDs {
				if i > 0 {
					q.where = append(q.where, ',')
				}
				q.where = strconv.AppendInt(q.where, id, 10)
			}
			q.where = append(q.where, ')')
		}
	}
}

type archiveSel struct {
	where []byte
	args  []any
}

// microsCeil is t in microseconds, rounded up (a start bound at 1.5 µs
// keeps 2 µs, not 1 µs).
func microsCeil(t time.Time) int64 {
	us := t.UnixMicro()
	if time.UnixMicro(us).Before(t) {
		us++
	}
	return us
}

func (a *archive) Query(ctx context.Context, aq storage.ArchiveQuery) (storage.ArchivePage, error) {
	page := storage.ArchivePage{Count: -1, Index: -1}
	if aq.Max < 0 || aq.Offset < 0 || aq.CountLimit < 0 {
		return page, errors.New("sqlite: Query: negative Max, Offset or CountLimit")
	}
	if err := a.settle(ctx, aq.Owner); err != nil {
		return page, err
	}
	tx, err := a.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return page, err
	}
	defer tx.Rollback()

	// The ids the query names must all be in the archive.
	var need []int64
	for _, id := range []int64{aq.After, aq.Before, aq.PageAfter, aq.PageBefore} {
		if id != 0 {
			need = append(need, id)
		}
	}
	need = append(need, aq.IDs...)
	slices.Sort(need)
	need = slices.Compact(need)
	if len(need) > 0 {
		var b strings.Builder
		b.WriteString("SELECT count(*) FROM archive WHERE owner = ? AND seq IN (")
		for i, id := range need {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatInt(id, 10))
		}
		b.WriteByte(')')
		var n int
		if err := tx.QueryRowContext(ctx, b.String(), aq.Owner).Scan(&n); err != nil {
			return page, err
		}
		if n != len(need) {
			return page, storage.ErrNotFound
		}
	}

	var sel archiveSel
	sel.build(aq)
	where := string(sel.where) // the selection
	pageWhere := where         // and the page's part of it
	if aq.PageAfter != 0 {
		pageWhere += " AND seq > " + strconv.FormatInt(aq.PageAfter, 10)
	}
	if aq.PageBefore != 0 {
		pageWhere += " AND seq < " + strconv.FormatInt(aq.PageBefore, 10)
	}
	order := " ORDER BY seq"
	if aq.FromEnd {
		order = " ORDER BY seq DESC"
	}
	if aq.Max > 0 {
		rows, err := tx.QueryContext(ctx, "SELECT "+archiveCols+" FROM archive WHERE "+pageWhere+order+" LIMIT ? OFFSET ?",
			append(sel.args, aq.Max+1, aq.Offset)...)
		if err != nil {
			return page, err
		}
		for rows.Next() {
			m, err := scanArchive(rows)
			if err != nil {
				rows.Close()
				return page, err
			}
			page.Messages = append(page.Messages, m)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return page, err
		}
		page.Complete = len(page.Messages) <= aq.Max
		if !page.Complete {
			page.Messages = page.Messages[:aq.Max]
		}
		if aq.FromEnd {
			slices.Reverse(page.Messages)
		}
	} else {
		var one int
		err := tx.QueryRowContext(ctx, "SELECT 1 FROM archive WHERE "+pageWhere+" LIMIT 1 OFFSET ?", append(sel.args, aq.Offset)...).Scan(&one)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return page, err
		}
		page.Complete = errors.Is(err, sql.ErrNoRows)
	}
	if aq.CountLimit > 0 {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM (SELECT 1 FROM archive WHERE "+where+" LIMIT ?)",
			append(sel.args, aq.CountLimit+1)...).Scan(&n); err != nil {
			return page, err
		}
		if n <= aq.CountLimit {
			page.Count = n
			if len(page.Messages) > 0 {
				if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM archive WHERE "+where+" AND seq < ?",
					append(sel.args, page.Messages[0].Seq)...).Scan(&page.Index); err != nil {
					return page, err
				}
			}
		}
	}
	return page, tx.Commit()
}

// secureDelete runs fn with SQLite's secure_delete on for the writer
// connection: the content of deleted or replaced rows is overwritten with
// zeros in the database pages instead of lingering in free space.
func secureDelete(ctx context.Context, tx *sql.Tx, fn func() error) error {
	if _, err := tx.ExecContext(ctx, "PRAGMA secure_delete = ON"); err != nil {
		return err
	}
	err := fn()
	if _, err2 := tx.ExecContext(ctx, "PRAGMA secure_delete = OFF"); err == nil {
		err = err2
	}
	return err
}

func (a *archive) Retract(ctx context.Context, owner string, seq int64, tombstone []byte, at time.Time) error {
	if at.IsZero() {
		at = time.Now()
	}
	if err := a.settle(ctx, owner); err != nil {
		return err
	}
	tx, err := a.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	err = secureDelete(ctx, tx, func() error {
		res, err := tx.ExecContext(ctx, "UPDATE archive SET stanza = ?, retracted_us = ? WHERE seq = ? AND owner = ?",
			encodeStanza(tombstone), toMicros(at), seq, owner)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return cmp(err, storage.ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tx.Commit()
}

// cmp returns err, or alt when err is nil.
func cmp(err, alt error) error {
	if err != nil {
		return err
	}
	return alt
}

func (a *archive) Prefs(ctx context.Context, owner string) (storage.ArchivePrefs, error) {
	var p storage.ArchivePrefs
	var always, never string
	err := a.r.QueryRowContext(ctx, "SELECT default_mode, always, never FROM archive_prefs WHERE owner = ?", owner).Scan(&p.Default, &always, &never)
	if errors.Is(err, sql.ErrNoRows) {
		return p, nil
	}
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal([]byte(always), &p.Always); err != nil {
		return p, fmt.Errorf("sqlite: archive_prefs.always of %s: %w", owner, err)
	}
	if err := json.Unmarshal([]byte(never), &p.Never); err != nil {
		return p, fmt.Errorf("sqlite: archive_prefs.never of %s: %w", owner, err)
	}
	if len(p.Always) == 0 {
		p.Always = nil
	}
	if len(p.Never) == 0 {
		p.Never = nil
	}
	return p, nil
}

func sortedUnique(l []string) []string {
	out := slices.Clone(l)
	slices.Sort(out)
	out = slices.Compact(out)
	if out == nil {
		out = []string{}
	}
	return out
}

func (a *archive) SetPrefs(ctx context.Context, owner string, p storage.ArchivePrefs) error {
	switch p.Default {
	case "", "always", "never", "roster":
	default:
		return fmt.Errorf("sqlite: SetPrefs: bad default %q", p.Default)
	}
	always, _ := json.Marshal(sortedUnique(p.Always))
	never, _ := json.Marshal(sortedUnique(p.Never))
	_, err := a.w.ExecContext(ctx, `INSERT INTO archive_prefs (owner, default_mode, always, never) VALUES (?, ?, ?, ?)
		ON CONFLICT (owner) DO UPDATE SET default_mode = excluded.default_mode, always = excluded.always, never = excluded.never`,
		owner, p.Default, string(always), string(never))
	if isConstraint(err, sqlite3.ErrConstraintForeignKey) {
		return storage.ErrNotFound
	}
	return err
}
