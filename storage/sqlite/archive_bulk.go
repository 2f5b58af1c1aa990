package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/xmppd/xmppd/storage"
)

// BulkAppend stores msgs in s's archive as Append would (the same Seq and
// Stamp for each: its stamp, or now, moved just after the newest when it
// is not after it), but in one transaction straight into the indexed
// archive instead of through the tail, with a 256 MiB page cache: each
// owner's index leaves are written once per call instead of once per tail
// merge, and no row is written twice. It is for filling an archive offline
// (cmd/archivegen, the big-archive benchmarks) with calls of a few hundred
// thousand rows; the server uses Append. Every owner must have an account
// (the whole call fails otherwise), and nothing else may append to the
// archive meanwhile. The tail is merged first.
func (s *Store) BulkAppend(ctx context.Context, msgs []storage.ArchiveMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	a := s.Archive().(*archive)
	if err := a.MergeTail(ctx); err != nil {
		return err
	}
	a.mu.Lock()
	if err := a.load(ctx); err != nil {
		a.mu.Unlock()
		return err
	}
	if len(a.queue) > 0 {
		a.mu.Unlock()
		return fmt.Errorf("sqlite: BulkAppend: appends are queued")
	}
	now := time.Now().UnixMicro()
	for i := range msgs {
		m := &msgs[i]
		if !m.Retracted.IsZero() {
			a.mu.Unlock()
			return fmt.Errorf("sqlite: BulkAppend: Retracted must be zero")
		}
		seq := now
		if !m.Stamp.IsZero() {
			seq = m.Stamp.UnixMicro()
		}
		seq = max(seq, a.newest+1)
		a.newest = seq
		m.Seq, m.Stamp = seq, fromMicros(seq)
	}
	a.mu.Unlock()

	tx, err := a.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "PRAGMA cache_size = -262144"); err != nil {
		return err
	}
	var last int64
	if err := tx.QueryRowContext(ctx, newestSQL).Scan(&last); err != nil {
		return err
	}
	if last >= msgs[0].Seq {
		return fmt.Errorf("sqlite: BulkAppend: seq %d already on disk (another process appends to the archive)", last)
	}
	const chunk = 128
	full, one := insertSQL("archive", chunk), insertSQL("archive", 1)
	vals := make([]any, 0, 8*chunk)
	for i := range msgs {
		m := &msgs[i]
		bare, res := splitJID(m.With)
		vals = append(vals, m.Seq, m.Owner, bare, res, m.Outgoing, m.MessageID, m.OriginID, encodeStanza(m.Stanza))
		if len(vals) == cap(vals) {
			if _, err := tx.ExecContext(ctx, full, vals...); err != nil {
				return err
			}
			vals = vals[:0]
		}
	}
	for ; len(vals) > 0; vals = vals[8:] {
		if _, err := tx.ExecContext(ctx, one, vals[:8]...); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	// Back to the merge's cache size for the writer connection.
	_, err = a.w.ExecContext(ctx, "PRAGMA cache_size = -65536")
	return err
}
