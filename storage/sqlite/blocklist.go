package sqlite

import (
	"context"
	"database/sql"
	"slices"

	"github.com/xmppd/xmppd/storage"
)

type blocklist struct{ s *Store }

// Blocklist implements storage.Store.
func (s *Store) Blocklist() storage.Blocklist { return blocklist{s} }

func (b blocklist) List(ctx context.Context, owner string) ([]string, error) {
	rows, err := b.s.r.QueryContext(ctx, "SELECT jid FROM blocklist WHERE owner = ? ORDER BY jid", owner)
	if err != nil {
		return nil, err
	}
	return scanStrings(rows)
}

// Block inserts in one write transaction (BEGIN IMMEDIATE), so the count
// that enforces the limit sees exactly this change.
func (b blocklist) Block(ctx context.Context, owner string, jids []string, limit int) ([]string, error) {
	var added []string
	err := b.s.write(ctx, func(tx *sql.Tx) error {
		added = nil
		if err := mustExist(ctx, tx, owner); err != nil {
			return err
		}
		for _, j := range jids {
			res, err := tx.ExecContext(ctx, "INSERT OR IGNORE INTO blocklist (owner, jid) VALUES (?, ?)", owner, j)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n > 0 {
				added = append(added, j)
			}
		}
		if limit > 0 && len(added) > 0 {
			var n int
			if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM blocklist WHERE owner = ?", owner).Scan(&n); err != nil {
				return err
			}
			if n > limit {
				return storage.ErrQuotaExceeded
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return added, nil
}

func (b blocklist) Unblock(ctx context.Context, owner string, jids []string) ([]string, error) {
	var removed []string
	err := b.s.write(ctx, func(tx *sql.Tx) error {
		removed = nil
		for _, j := range jids {
			res, err := tx.ExecContext(ctx, "DELETE FROM blocklist WHERE owner = ? AND jid = ?", owner, j)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n > 0 {
				removed = append(removed, j)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return removed, nil
}

func (b blocklist) UnblockAll(ctx context.Context, owner string) ([]string, error) {
	var removed []string
	err := b.s.write(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, "DELETE FROM blocklist WHERE owner = ? RETURNING jid", owner)
		if err != nil {
			return err
		}
		removed, err = scanStrings(rows)
		return err
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(removed)
	return removed, nil
}

// scanStrings collects a one-column result and closes rows.
func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
