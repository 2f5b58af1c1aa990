package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/xmppd/xmppd/storage"
)

type roster struct{ s *Store }

func (r *roster) Items(ctx context.Context, owner string) ([]storage.RosterItem, uint64, error) {
	var items []storage.RosterItem
	var ver uint64
	err := r.s.read(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, "SELECT roster_version FROM accounts WHERE jid = ?", owner).Scan(&ver)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // no account: empty roster, version 0
		}
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT contact, name, subscription, ask, pending_in, pending_in_xml, approved
			FROM roster_items WHERE owner = ? ORDER BY contact`, owner)
		if err != nil {
			return err
		}
		defer rows.Close()
		byContact := make(map[string]int)
		for rows.Next() {
			it, err := scanItem(rows)
			if err != nil {
				return err
			}
			byContact[it.JID] = len(items)
			items = append(items, it)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()

		grows, err := tx.QueryContext(ctx,
			"SELECT contact, grp FROM roster_groups WHERE owner = ? ORDER BY contact, grp", owner)
		if err != nil {
			return err
		}
		defer grows.Close()
		for grows.Next() {
			var contact, grp string
			if err := grows.Scan(&contact, &grp); err != nil {
				return err
			}
			if i, ok := byContact[contact]; ok {
				items[i].Groups = append(items[i].Groups, grp)
			}
		}
		return grows.Err()
	})
	if err != nil {
		return nil, 0, err
	}
	return items, ver, nil
}

func scanItem(row interface{ Scan(...any) error }) (storage.RosterItem, error) {
	var it storage.RosterItem
	var sub string
	err := row.Scan(&it.JID, &it.Name, &sub, &it.Ask, &it.PendingIn, &it.PendingInXML, &it.Approved)
	it.Subscription = storage.Subscription(sub)
	return it, err
}

func (r *roster) Item(ctx context.Context, owner, contact string) (storage.RosterItem, error) {
	var it storage.RosterItem
	err := r.s.read(ctx, func(tx *sql.Tx) error {
		var err error
		it, err = scanItem(tx.QueryRowContext(ctx, `SELECT contact, name, subscription, ask, pending_in, pending_in_xml, approved
			FROM roster_items WHERE owner = ? AND contact = ?`, owner, contact))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("roster item %s of %s: %w", contact, owner, storage.ErrNotFound)
		}
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx,
			"SELECT grp FROM roster_groups WHERE owner = ? AND contact = ? ORDER BY grp", owner, contact)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var g string
			if err := rows.Scan(&g); err != nil {
				return err
			}
			it.Groups = append(it.Groups, g)
		}
		return rows.Err()
	})
	if err != nil {
		return storage.RosterItem{}, err
	}
	return it, nil
}

// bump increments the owner's roster version inside tx; ErrNotFound when
// there is no such account.
func bump(ctx context.Context, tx *sql.Tx, owner string) (uint64, error) {
	var ver uint64
	err := tx.QueryRowContext(ctx,
		"UPDATE accounts SET roster_version = roster_version + 1 WHERE jid = ? RETURNING roster_version", owner).Scan(&ver)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("roster of %s: account %w", owner, storage.ErrNotFound)
	}
	return ver, err
}

func (r *roster) Put(ctx context.Context, owner string, item storage.RosterItem) (uint64, error) {
	sub := item.Subscription
	switch sub {
	case "":
		sub = storage.SubNone
	case storage.SubNone, storage.SubTo, storage.SubFrom, storage.SubBoth:
	default:
		return 0, fmt.Errorf("sqlite: roster item %s: invalid subscription %q", item.JID, sub)
	}
	groups := slices.Clone(item.Groups)
	slices.Sort(groups)
	groups = slices.Compact(groups)

	var ver uint64
	err := r.s.write(ctx, func(tx *sql.Tx) error {
		var err error
		if ver, err = bump(ctx, tx, owner); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO roster_items
			(owner, contact, name, subscription, ask, pending_in, pending_in_xml, approved)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (owner, contact) DO UPDATE SET
				name = excluded.name, subscription = excluded.subscription, ask = excluded.ask,
				pending_in = excluded.pending_in, pending_in_xml = excluded.pending_in_xml,
				approved = excluded.approved`,
			owner, item.JID, item.Name, string(sub), item.Ask, item.PendingIn, item.PendingInXML, item.Approved); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			"DELETE FROM roster_groups WHERE owner = ? AND contact = ?", owner, item.JID); err != nil {
			return err
		}
		for _, g := range groups {
			if _, err := tx.ExecContext(ctx,
				"INSERT INTO roster_groups (owner, contact, grp) VALUES (?, ?, ?)", owner, item.JID, g); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return ver, nil
}

func (r *roster) Remove(ctx context.Context, owner, contact string) (uint64, error) {
	var ver uint64
	err := r.s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM roster_items WHERE owner = ? AND contact = ?", owner, contact)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("roster item %s of %s: %w", contact, owner, storage.ErrNotFound)
		}
		ver, err = bump(ctx, tx, owner)
		return err
	})
	if err != nil {
		return 0, err
	}
	return ver, nil
}

func (r *roster) Version(ctx context.Context, owner string) (uint64, error) {
	var ver uint64
	err := r.s.r.QueryRowContext(ctx, "SELECT roster_version FROM accounts WHERE jid = ?", owner).Scan(&ver)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return ver, err
}
