package sqlite

import (
	"context"
	"time"
)

// Retention (DeleteBefore) deletes rowid ranges, oldest first, in
// transactions of at most deleteChunk rows, run by the archive's writer
// goroutine between append batches and tail merges, one chunk per turn:
// appends queued during a sweep go before its next chunk, so an append
// waits for one chunk at most, as it does for a merge. (Before, the sweep
// ran its transactions on the writer connection itself, and database/sql
// hands a released connection to a random waiter, so an append could wait
// behind several chunks in a row.)
//
// What a deleted row costs is mostly the pages it dirties: its table page
// and one leaf in each of archive_by_owner and archive_by_with, each
// written to the WAL at the commit and again at the checkpoint. Rows of one
// owner (and of one conversation) are next to each other in the indexes,
// so the more of an owner's rows one transaction deletes, the fewer pages
// per row it writes: the chunk is as large as a merge's (16,384 rows, so
// appends wait no longer behind a sweep than behind a merge), and each
// transaction gets the merge's 64 MiB page cache, so that a page dirtied
// by several of its rows is written once at the commit instead of being
// spilled (written) every time SQLite's default 2 MiB cache fills.
// Measured on a 1,000,000-row generated archive (docs/BENCHMARKS.md, "A
// large archive"): deleting in owner order, per owner, instead of in seq
// order, cost as much CPU per row (the table's pages are in seq order, so what
// the indexes gain the table loses); secure_delete costs about 5 %.
const deleteChunk = 16384

// sweepReq is a DeleteBefore waiting for the writer: it deletes table's
// rows below cut, a chunk per turn, the tail first.
type sweepReq struct {
	ctx   context.Context
	cut   int64
	table int // index in sweepTables
	total int64
	done  chan error // yields once, when the sweep is over
}

// The tail first (its rows are the newest, so only a cut in the future
// reaches them), then the indexed archive.
var sweepTables = [...]string{"archive_tail", "archive"}

func (a *archive) DeleteBefore(ctx context.Context, t time.Time) (int64, error) {
	r := &sweepReq{ctx: ctx, cut: microsCeil(t), done: make(chan error, 1)}
	a.mu.Lock()
	a.sweeps = append(a.sweeps, r)
	if a.sweepQueued != nil {
		close(a.sweepQueued)
		a.sweepQueued = nil
	}
	a.startWriter()
	a.mu.Unlock()
	// The writer stops the sweep at its next turn once ctx is done, and
	// reports what it deleted until then.
	err := <-r.done
	return r.total, err
}

// sweepChunk runs one chunk of the first waiting sweep (called by the
// writer between batches, so an append waits for one chunk at most, and
// appends queued meanwhile go before the next chunk).
func (a *archive) sweepChunk() {
	a.mu.Lock()
	r := a.sweeps[0]
	a.mu.Unlock()
	err := r.ctx.Err()
	var n int64
	if err == nil {
		n, err = a.deleteChunkBefore(context.Background(), sweepTables[r.table], r.cut)
		r.total += n
	}
	over := err != nil
	a.mu.Lock()
	if r.table == 0 {
		a.tailRows = max(0, a.tailRows-int(n))
	}
	if err == nil && n < deleteChunk {
		r.table++
		over = r.table == len(sweepTables)
	}
	if over {
		a.sweeps[0] = nil
		a.sweeps = a.sweeps[1:]
	}
	a.mu.Unlock()
	if over {
		r.done <- err
	}
}

// deleteChunkBefore deletes, in one transaction with secure_delete, at most
// deleteChunk of table's oldest rows whose seq is below cut.
func (a *archive) deleteChunkBefore(ctx context.Context, table string, cut int64) (int64, error) {
	tx, err := a.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	// The merge's page cache (the setting is per connection, and the one
	// writer connection is shared with merges).
	if _, err := tx.ExecContext(ctx, "PRAGMA cache_size = -65536"); err != nil {
		return 0, err
	}
	var n int64
	err = secureDelete(ctx, tx, func() error {
		res, err := tx.ExecContext(ctx, "DELETE FROM "+table+" WHERE seq < ? AND seq <= (SELECT seq FROM "+table+" WHERE seq < ? ORDER BY seq LIMIT 1 OFFSET ?)",
			cut, cut, deleteChunk-1)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		if err != nil || n > 0 {
			return err
		}
		// Fewer than deleteChunk rows left below cut: the rest.
		res, err = tx.ExecContext(ctx, "DELETE FROM "+table+" WHERE seq < ?", cut)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}
