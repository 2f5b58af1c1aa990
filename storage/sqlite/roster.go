package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/xmppd/xmppd/storage"
)

type roster struct{ s *Store }

// itemsQuery reads an owner's account row joined with its items and their
// groups, one row per (item, group), ordered by contact then group. As one
// statement it reads one snapshot: version and items agree. No row means no
// account; a row with a NULL contact, an account with an empty roster.
const itemsQuery = `SELECT a.roster_version, i.contact, i.name, i.subscription, i.ask, i.pending_in,
		i.pending_in_xml, i.approved, i.hidden, g.grp
	FROM accounts a
	LEFT JOIN roster_items i ON i.owner = a.jid
	LEFT JOIN roster_groups g ON g.owner = i.owner AND g.contact = i.contact
	WHERE a.jid = ?`

// scanItems collects the rows of itemsQuery.
func scanItems(rows *sql.Rows) ([]storage.RosterItem, uint64, error) {
	defer rows.Close()
	var items []storage.RosterItem
	var ver uint64
	for rows.Next() {
		var (
			contact, name, sub, grp sql.NullString
			ask, pendingIn, appr    sql.NullBool
			hidden                  sql.NullBool
			xml                     sql.RawBytes
		)
		if err := rows.Scan(&ver, &contact, &name, &sub, &ask, &pendingIn, &xml, &appr, &hidden, &grp); err != nil {
			return nil, 0, err
		}
		if !contact.Valid {
			continue // the account has no items
		}
		if n := len(items); n == 0 || items[n-1].JID != contact.String {
			it := storage.RosterItem{
				JID: contact.String, Name: name.String, Subscription: storage.Subscription(sub.String),
				Ask: ask.Bool, PendingIn: pendingIn.Bool, Approved: appr.Bool, Hidden: hidden.Bool,
			}
			if xml != nil {
				it.PendingInXML = bytes.Clone(xml)
			}
			items = append(items, it)
		}
		if grp.Valid {
			items[len(items)-1].Groups = append(items[len(items)-1].Groups, grp.String)
		}
	}
	return items, ver, rows.Err()
}

func (r *roster) Items(ctx context.Context, owner string) ([]storage.RosterItem, uint64, error) {
	rows, err := r.s.r.QueryContext(ctx, itemsQuery+" ORDER BY i.contact, g.grp", owner)
	if err != nil {
		return nil, 0, err
	}
	return scanItems(rows)
}

func (r *roster) Item(ctx context.Context, owner, contact string) (storage.RosterItem, error) {
	rows, err := r.s.r.QueryContext(ctx, itemsQuery+" AND i.contact = ? ORDER BY g.grp", owner, contact)
	if err != nil {
		return storage.RosterItem{}, err
	}
	items, _, err := scanItems(rows)
	if err != nil {
		return storage.RosterItem{}, err
	}
	if len(items) == 0 {
		return storage.RosterItem{}, storage.ErrNotFound
	}
	return items[0], nil
}

// bump increments the owner's roster version inside tx; ErrNotFound when
// there is no such account.
func bump(ctx context.Context, tx *sql.Tx, owner string) (uint64, error) {
	var ver uint64
	err := tx.QueryRowContext(ctx,
		"UPDATE accounts SET roster_version = roster_version + 1 WHERE jid = ? RETURNING roster_version", owner).Scan(&ver)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, storage.ErrNotFound
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
			(owner, contact, name, subscription, ask, pending_in, pending_in_xml, approved, hidden)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (owner, contact) DO UPDATE SET
				name = excluded.name, subscription = excluded.subscription, ask = excluded.ask,
				pending_in = excluded.pending_in, pending_in_xml = excluded.pending_in_xml,
				approved = excluded.approved, hidden = excluded.hidden`,
			owner, item.JID, item.Name, string(sub), item.Ask, item.PendingIn, item.PendingInXML, item.Approved,
			item.Hidden); err != nil {
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
			return storage.ErrNotFound
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
