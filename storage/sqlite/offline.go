package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/xmppd/xmppd/storage"
)

type offline struct{ s *Store }

// Store counts and appends in one write transaction. Write transactions are
// BEGIN IMMEDIATE, so they hold the database's write lock from the count to
// the commit: no other writer, in this process or another, can slip a
// message in between, and the limit holds.
func (o *offline) Store(ctx context.Context, owner string, m storage.OfflineMessage, limit int) error {
	stamp := m.Stamp
	if stamp.IsZero() {
		stamp = time.Now()
	}
	return o.s.write(ctx, func(tx *sql.Tx) error {
		if limit > 0 {
			var n int
			if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM offline WHERE owner = ?", owner).Scan(&n); err != nil {
				return err
			}
			if n >= limit {
				return storage.ErrQuotaExceeded
			}
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO offline (owner, stamp_us, from_jid, stanza) VALUES (?, ?, ?, ?)",
			owner, toMicros(stamp), m.From, nonNil(m.Stanza))
		if isConstraint(err, sqlite3.ErrConstraintForeignKey) {
			return storage.ErrNotFound
		}
		return err
	})
}

func (o *offline) List(ctx context.Context, owner string) ([]storage.OfflineMessage, error) {
	rows, err := o.s.r.QueryContext(ctx,
		"SELECT seq, stamp_us, from_jid, stanza FROM offline WHERE owner = ? ORDER BY seq", owner)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ms []storage.OfflineMessage
	for rows.Next() {
		var m storage.OfflineMessage
		var stamp int64
		if err := rows.Scan(&m.Seq, &stamp, &m.From, &m.Stanza); err != nil {
			return nil, err
		}
		m.Stamp = fromMicros(stamp)
		ms = append(ms, m)
	}
	return ms, rows.Err()
}

// ListAfter reads rows one by one and stops at the byte bound (one row past
// what it returns is read), so a chunk costs its own size, not the queue's.
func (o *offline) ListAfter(ctx context.Context, owner string, after int64, maxBytes int) ([]storage.OfflineMessage, error) {
	rows, err := o.s.r.QueryContext(ctx,
		"SELECT seq, stamp_us, from_jid, stanza FROM offline WHERE owner = ? AND seq > ? ORDER BY seq", owner, after)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ms []storage.OfflineMessage
	total := 0
	for rows.Next() {
		var m storage.OfflineMessage
		var stamp int64
		if err := rows.Scan(&m.Seq, &stamp, &m.From, &m.Stanza); err != nil {
			return nil, err
		}
		if maxBytes > 0 && len(ms) > 0 && total+len(m.Stanza) > maxBytes {
			break
		}
		total += len(m.Stanza)
		m.Stamp = fromMicros(stamp)
		ms = append(ms, m)
	}
	return ms, rows.Err()
}

func (o *offline) Delete(ctx context.Context, owner string, upTo int64) error {
	_, err := o.s.w.ExecContext(ctx, "DELETE FROM offline WHERE owner = ? AND seq <= ?", owner, upTo)
	return err
}

func (o *offline) Count(ctx context.Context, owner string) (int, error) {
	var n int
	err := o.s.r.QueryRowContext(ctx, "SELECT count(*) FROM offline WHERE owner = ?", owner).Scan(&n)
	return n, err
}
