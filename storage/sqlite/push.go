package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/xmppd/xmppd/storage"
)

type pushRegs struct{ s *Store }

// PushRegistrations implements storage.Store.
func (s *Store) PushRegistrations() storage.PushRegistrations { return pushRegs{s} }

// Put replaces in one write transaction (BEGIN IMMEDIATE): the delete of the
// old row, the count that enforces the limit and the insert see exactly this
// change.
func (p pushRegs) Put(ctx context.Context, reg storage.PushRegistration, limit int) (int64, error) {
	enabled := reg.Enabled
	if enabled.IsZero() {
		enabled = time.Now()
	}
	var id int64
	err := p.s.write(ctx, func(tx *sql.Tx) error {
		if err := mustExist(ctx, tx, reg.Owner); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM push_registrations WHERE owner = ? AND service = ? AND node = ?",
			reg.Owner, reg.Service, reg.Node)
		if err != nil {
			return err
		}
		replaced, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if limit > 0 && replaced == 0 {
			var n int
			if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM push_registrations WHERE owner = ?", reg.Owner).Scan(&n); err != nil {
				return err
			}
			if n >= limit {
				return storage.ErrQuotaExceeded
			}
		}
		res, err = tx.ExecContext(ctx, `INSERT INTO push_registrations (owner, service, node, form, resource, enabled_us)
			VALUES (?, ?, ?, ?, ?, ?)`, reg.Owner, reg.Service, reg.Node, nonNil(reg.Form), reg.Resource, toMicros(enabled))
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return 0, err
	}
	return id, nil
}

func (p pushRegs) List(ctx context.Context, owner string) ([]storage.PushRegistration, error) {
	rows, err := p.s.r.QueryContext(ctx, `SELECT id, service, node, form, resource, enabled_us
		FROM push_registrations WHERE owner = ? ORDER BY service, node`, owner)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storage.PushRegistration
	for rows.Next() {
		r := storage.PushRegistration{Owner: owner}
		var enabled int64
		if err := rows.Scan(&r.ID, &r.Service, &r.Node, &r.Form, &r.Resource, &enabled); err != nil {
			return nil, err
		}
		if len(r.Form) == 0 {
			r.Form = nil
		}
		r.Enabled = fromMicros(enabled)
		out = append(out, r)
	}
	return out, rows.Err()
}

func (p pushRegs) Remove(ctx context.Context, owner, service, node string) (int, error) {
	q, args := "DELETE FROM push_registrations WHERE owner = ? AND service = ? AND node = ?", []any{owner, service, node}
	if node == "" {
		q, args = "DELETE FROM push_registrations WHERE owner = ? AND service = ?", []any{owner, service}
	}
	res, err := p.s.w.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (p pushRegs) RemoveID(ctx context.Context, owner string, id int64) (bool, error) {
	res, err := p.s.w.ExecContext(ctx, "DELETE FROM push_registrations WHERE owner = ? AND id = ?", owner, id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}
