package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/xmppd/xmppd/storage"
)

type accounts struct{ s *Store }

// domainOf returns the part of a bare JID after '@'.
func domainOf(jid string) (string, error) {
	_, domain, ok := strings.Cut(jid, "@")
	if !ok || domain == "" || strings.HasPrefix(jid, "@") {
		return "", fmt.Errorf("sqlite: account JID %q is not local@domain", jid)
	}
	return domain, nil
}

func (a *accounts) Create(ctx context.Context, acc storage.Account) error {
	domain, err := domainOf(acc.JID)
	if err != nil {
		return err
	}
	created := acc.Created
	if created.IsZero() {
		created = time.Now()
	}
	return a.s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			"INSERT INTO accounts (jid, domain, created_us, last_logout_us, last_status) VALUES (?, ?, ?, ?, ?)",
			acc.JID, domain, toMicros(created), nullMicros(acc.LastLogout), acc.LastStatus)
		if isConstraint(err, sqlite3.ErrConstraintPrimaryKey) {
			return storage.ErrExists
		}
		if err != nil {
			return err
		}
		return insertKeys(ctx, tx, acc.JID, acc.Keys)
	})
}

func insertKeys(ctx context.Context, tx *sql.Tx, jid string, keys map[string]storage.SCRAMKeys) error {
	for hash, k := range keys {
		if k.Iterations <= 0 {
			return fmt.Errorf("sqlite: SCRAM keys %s for %s: iterations must be positive", hash, jid)
		}
		_, err := tx.ExecContext(ctx,
			"INSERT INTO scram_keys (jid, hash, salt, iterations, stored_key, server_key) VALUES (?, ?, ?, ?, ?, ?)",
			jid, hash, nonNil(k.Salt), k.Iterations, nonNil(k.StoredKey), nonNil(k.ServerKey))
		if err != nil {
			return err
		}
	}
	return nil
}

// nonNil keeps a nil slice from being bound as NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func (a *accounts) Get(ctx context.Context, jid string) (storage.Account, error) {
	acc := storage.Account{JID: jid}
	err := a.s.read(ctx, func(tx *sql.Tx) error {
		var created int64
		var last sql.NullInt64
		err := tx.QueryRowContext(ctx,
			"SELECT created_us, last_logout_us, last_status FROM accounts WHERE jid = ?", jid).
			Scan(&created, &last, &acc.LastStatus)
		if errors.Is(err, sql.ErrNoRows) {
			return storage.ErrNotFound
		}
		if err != nil {
			return err
		}
		acc.Created, acc.LastLogout = fromMicros(created), fromNullMicros(last)

		rows, err := tx.QueryContext(ctx,
			"SELECT hash, salt, iterations, stored_key, server_key FROM scram_keys WHERE jid = ?", jid)
		if err != nil {
			return err
		}
		defer rows.Close()
		acc.Keys = make(map[string]storage.SCRAMKeys)
		for rows.Next() {
			var hash string
			var k storage.SCRAMKeys
			if err := rows.Scan(&hash, &k.Salt, &k.Iterations, &k.StoredKey, &k.ServerKey); err != nil {
				return err
			}
			acc.Keys[hash] = k
		}
		return rows.Err()
	})
	if err != nil {
		return storage.Account{}, err
	}
	return acc, nil
}

func (a *accounts) Exists(ctx context.Context, jid string) (bool, error) {
	var one int
	err := a.s.r.QueryRowContext(ctx, "SELECT 1 FROM accounts WHERE jid = ?", jid).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// Changes reads the counter that triggers on accounts bump with every
// insert and delete (migration 0009), whichever process made them.
func (a *accounts) Changes(ctx context.Context) (uint64, error) {
	var n int64
	err := a.s.r.QueryRowContext(ctx, "SELECT n FROM account_changes WHERE id = 1").Scan(&n)
	return uint64(n), err
}

func (a *accounts) SetKeys(ctx context.Context, jid string, keys map[string]storage.SCRAMKeys) error {
	return a.s.write(ctx, func(tx *sql.Tx) error {
		if err := mustExist(ctx, tx, jid); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM scram_keys WHERE jid = ?", jid); err != nil {
			return err
		}
		return insertKeys(ctx, tx, jid, keys)
	})
}

func mustExist(ctx context.Context, tx *sql.Tx, jid string) error {
	var one int
	err := tx.QueryRowContext(ctx, "SELECT 1 FROM accounts WHERE jid = ?", jid).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.ErrNotFound
	}
	return err
}

func (a *accounts) SetLast(ctx context.Context, jid string, t time.Time, status string) error {
	res, err := a.s.w.ExecContext(ctx,
		"UPDATE accounts SET last_logout_us = ?, last_status = ? WHERE jid = ?", nullMicros(t), status, jid)
	return oneRow(res, err, jid)
}

// oneRow turns "no row affected" into ErrNotFound.
func oneRow(res sql.Result, err error, jid string) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// Delete removes the account; ON DELETE CASCADE removes its keys, roster
// items (with groups and version) and offline messages in the same
// statement. Roster items of other users that point at jid stay.
func (a *accounts) Delete(ctx context.Context, jid string) error {
	res, err := a.s.w.ExecContext(ctx, "DELETE FROM accounts WHERE jid = ?", jid)
	return oneRow(res, err, jid)
}

func (a *accounts) List(ctx context.Context, domain string) ([]string, error) {
	var rows *sql.Rows
	var err error
	if domain == "" {
		rows, err = a.s.r.QueryContext(ctx, "SELECT jid FROM accounts ORDER BY jid")
	} else {
		rows, err = a.s.r.QueryContext(ctx, "SELECT jid FROM accounts WHERE domain = ? ORDER BY jid", domain)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var jids []string
	for rows.Next() {
		var jid string
		if err := rows.Scan(&jid); err != nil {
			return nil, err
		}
		jids = append(jids, jid)
	}
	return jids, rows.Err()
}
