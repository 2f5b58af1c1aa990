package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/xmppd/xmppd/storage"
)

type private struct{ s *Store }

// Private implements storage.Store.
func (s *Store) Private() storage.Private { return private{s} }

func (p private) Get(ctx context.Context, owner, ns string) ([]byte, error) {
	var xml []byte
	err := p.s.r.QueryRowContext(ctx, "SELECT xml FROM private_xml WHERE owner = ? AND ns = ?", owner, ns).Scan(&xml)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, storage.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return xml, nil
}

// Put applies every item and checks the owner's total in one write
// transaction (BEGIN IMMEDIATE): the limit holds against concurrent Puts.
func (p private) Put(ctx context.Context, owner string, items []storage.PrivateItem, limit int) error {
	return p.s.write(ctx, func(tx *sql.Tx) error {
		if err := mustExist(ctx, tx, owner); err != nil {
			return err
		}
		for _, it := range items {
			var err error
			if len(it.XML) == 0 {
				_, err = tx.ExecContext(ctx, "DELETE FROM private_xml WHERE owner = ? AND ns = ?", owner, it.NS)
			} else {
				_, err = tx.ExecContext(ctx, `INSERT INTO private_xml (owner, ns, xml) VALUES (?, ?, ?)
					ON CONFLICT (owner, ns) DO UPDATE SET xml = excluded.xml`, owner, it.NS, it.XML)
			}
			if err != nil {
				return err
			}
		}
		if limit > 0 {
			var total int64
			if err := tx.QueryRowContext(ctx,
				"SELECT COALESCE(SUM(length(xml)), 0) FROM private_xml WHERE owner = ?", owner).Scan(&total); err != nil {
				return err
			}
			if total > int64(limit) {
				return storage.ErrQuotaExceeded
			}
		}
		return nil
	})
}

func (p private) Delete(ctx context.Context, owner, ns string) error {
	res, err := p.s.w.ExecContext(ctx, "DELETE FROM private_xml WHERE owner = ? AND ns = ?", owner, ns)
	return oneRow(res, err, owner)
}
