package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/xmppd/xmppd/storage"
)

type vcards struct{ s *Store }

// VCards implements storage.Store.
func (s *Store) VCards() storage.VCards { return vcards{s} }

func (v vcards) Get(ctx context.Context, owner string) (storage.VCard, error) {
	var c storage.VCard
	var updated int64
	err := v.s.r.QueryRowContext(ctx, "SELECT xml, photo_hash, updated_us FROM vcards WHERE owner = ?", owner).
		Scan(&c.XML, &c.PhotoHash, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.VCard{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.VCard{}, err
	}
	c.Updated = fromMicros(updated)
	return c, nil
}

func (v vcards) Put(ctx context.Context, owner string, c storage.VCard) error {
	updated := c.Updated
	if updated.IsZero() {
		updated = time.Now()
	}
	_, err := v.s.w.ExecContext(ctx, `INSERT INTO vcards (owner, xml, photo_hash, updated_us) VALUES (?, ?, ?, ?)
		ON CONFLICT (owner) DO UPDATE SET xml = excluded.xml, photo_hash = excluded.photo_hash, updated_us = excluded.updated_us`,
		owner, nonNil(c.XML), c.PhotoHash, toMicros(updated))
	if isConstraint(err, sqlite3.ErrConstraintForeignKey) {
		return storage.ErrNotFound
	}
	return err
}

func (v vcards) Delete(ctx context.Context, owner string) error {
	res, err := v.s.w.ExecContext(ctx, "DELETE FROM vcards WHERE owner = ?", owner)
	return oneRow(res, err, owner)
}

func (v vcards) PhotoHash(ctx context.Context, owner string) (string, error) {
	var h string
	err := v.s.r.QueryRowContext(ctx, "SELECT photo_hash FROM vcards WHERE owner = ?", owner).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", storage.ErrNotFound
	}
	return h, err
}
