package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/xmppd/xmppd/storage"
)

// Roster writes (Put, Remove) are group-committed like archive appends: each
// call queues its change and waits; a writer goroutine, running only while
// there is something to write, takes everything queued (up to
// maxRosterBatch changes) into one transaction on the writer connection,
// each change inside a savepoint of its own, commits once and releases every
// caller with its own result. A change that fails (an unknown owner) is
// rolled back to its savepoint and fails alone. A caller returns only after
// the commit that holds its change, so a change is durable before the
// roster module pushes or answers it.
//
// Without it, every change was a transaction with its own commit, and a
// subscription flood (thousands of users subscribing at once: two changes
// per stanza) queued one commit per change on the single writer connection;
// the answers that complete a subscription waited behind all of it.
type roster struct {
	s *Store

	mu      sync.Mutex
	queue   []*rosterReq
	writing bool
}

// maxRosterBatch bounds the changes written in one transaction.
const maxRosterBatch = 1024

// rosterReq is one queued change: a Put (item set), a Remove or an Update.
type rosterReq struct {
	ctx     context.Context
	owner   string
	remove  bool
	item    storage.RosterItem // Put: Subscription normalized
	groups  []string           // Put: sorted, unique
	contact string             // Remove, Update
	update  storage.RosterUpdateFunc
	res     storage.RosterUpdate // Update's result
	ver     uint64
	err     error
	alone   bool // err concerns this change alone: the batch goes on
	done    chan struct{}
}

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
	it, found, err := readItem(ctx, r.s.r, owner, contact)
	if err == nil && !found {
		err = storage.ErrNotFound
	}
	return it, err
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

// normalize checks an item's subscription (empty: none) and returns its
// groups sorted and unique.
func normalize(item *storage.RosterItem) ([]string, error) {
	switch item.Subscription {
	case "":
		item.Subscription = storage.SubNone
	case storage.SubNone, storage.SubTo, storage.SubFrom, storage.SubBoth:
	default:
		return nil, fmt.Errorf("sqlite: roster item %s: invalid subscription %q", item.JID, item.Subscription)
	}
	groups := slices.Clone(item.Groups)
	slices.Sort(groups)
	return slices.Compact(groups), nil
}

func (r *roster) Put(ctx context.Context, owner string, item storage.RosterItem) (uint64, error) {
	groups, err := normalize(&item)
	if err != nil {
		return 0, err
	}
	return r.do(ctx, &rosterReq{owner: owner, item: item, groups: groups})
}

// Update implements storage.RosterUpdater. The item is read, changed and
// written by the writer goroutine, inside the batch transaction, on the
// writer connection: the read sees every change committed or queued before
// it, and costs no read-pool query (whose page cache every commit
// invalidates).
func (r *roster) Update(ctx context.Context, owner, contact string, fn storage.RosterUpdateFunc) (storage.RosterUpdate, error) {
	req := &rosterReq{owner: owner, contact: contact, update: fn}
	_, err := r.do(ctx, req)
	return req.res, err
}

// itemQuery reads one item, and whether it has groups. (The same read as a
// LEFT JOIN with roster_groups cost SQLite five times as much.)
const itemQuery = `SELECT name, subscription, ask, pending_in, pending_in_xml, approved, hidden,
		EXISTS (SELECT 1 FROM roster_groups g WHERE g.owner = i.owner AND g.contact = i.contact)
	FROM roster_items i WHERE owner = ? AND contact = ?`

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// readItem reads one item; found false (and a zero item with the
// contact's JID and SubNone) when there is none.
func readItem(ctx context.Context, q querier, owner, contact string) (storage.RosterItem, bool, error) {
	it := storage.RosterItem{JID: contact, Subscription: storage.SubNone}
	var (
		sub       string
		xml       []byte
		hasGroups bool
	)
	err := q.QueryRowContext(ctx, itemQuery, owner, contact).Scan(&it.Name, &sub, &it.Ask, &it.PendingIn, &xml,
		&it.Approved, &it.Hidden, &hasGroups)
	if errors.Is(err, sql.ErrNoRows) {
		return it, false, nil
	}
	if err != nil {
		return it, false, err
	}
	it.Subscription, it.PendingInXML = storage.Subscription(sub), xml
	if !hasGroups {
		return it, true, nil
	}
	rows, err := q.QueryContext(ctx, "SELECT grp FROM roster_groups WHERE owner = ? AND contact = ? ORDER BY grp", owner, contact)
	if err != nil {
		return it, false, err
	}
	defer rows.Close()
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return it, false, err
		}
		it.Groups = append(it.Groups, g)
	}
	return it, true, rows.Err()
}

// update runs one Update inside the batch transaction. Errors of the
// function, and a Put for an unknown owner (found before writing), concern
// this change alone (q.alone).
func update(ctx context.Context, tx *sql.Tx, q *rosterReq) error {
	cur, found, err := readItem(ctx, tx, q.owner, q.contact)
	if err != nil {
		return err
	}
	count := func() (all, visible int, err error) {
		err = tx.QueryRowContext(ctx,
			"SELECT count(*), coalesce(sum(hidden = 0), 0) FROM roster_items WHERE owner = ?", q.owner).Scan(&all, &visible)
		return all, visible, err
	}
	next, op, err := q.update(cur, found, count)
	q.res = storage.RosterUpdate{Before: cur, Found: found, After: cur, Op: storage.RosterKeep}
	if err != nil {
		q.alone = true
		return err
	}
	switch {
	case op == storage.RosterPut:
		next.JID = q.contact
		groups, err := normalize(&next)
		if err != nil {
			q.alone = true
			return err
		}
		next.Groups = groups
		var old []string
		if found {
			old = cur.Groups
		}
		ver, err := put(ctx, tx, q.owner, next, groups, old, true)
		if err != nil {
			q.alone = errors.Is(err, storage.ErrNotFound)
			return err
		}
		q.res.After, q.res.Op, q.res.Version = next, op, ver
	case op == storage.RosterRemove && found:
		ver, err := remove(ctx, tx, q.owner, q.contact)
		if err != nil {
			return err
		}
		q.res.Op, q.res.Version = op, ver
	}
	return nil
}

// put writes one item inside the batch transaction. When oldKnown, old are
// the groups the item has now (none when it does not exist: they go with
// their item), and the groups are rewritten only when they differ.
func put(ctx context.Context, tx *sql.Tx, owner string, item storage.RosterItem, groups, old []string, oldKnown bool) (uint64, error) {
	ver, err := bump(ctx, tx, owner)
	if err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO roster_items
		(owner, contact, name, subscription, ask, pending_in, pending_in_xml, approved, hidden)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (owner, contact) DO UPDATE SET
			name = excluded.name, subscription = excluded.subscription, ask = excluded.ask,
			pending_in = excluded.pending_in, pending_in_xml = excluded.pending_in_xml,
			approved = excluded.approved, hidden = excluded.hidden`,
		owner, item.JID, item.Name, string(item.Subscription), item.Ask, item.PendingIn, item.PendingInXML, item.Approved,
		item.Hidden); err != nil {
		return 0, err
	}
	if oldKnown && slices.Equal(old, groups) {
		return ver, nil
	}
	if !oldKnown || len(old) > 0 {
		if _, err := tx.ExecContext(ctx,
			"DELETE FROM roster_groups WHERE owner = ? AND contact = ?", owner, item.JID); err != nil {
			return 0, err
		}
	}
	for _, g := range groups {
		if _, err := tx.ExecContext(ctx,
			"INSERT INTO roster_groups (owner, contact, grp) VALUES (?, ?, ?)", owner, item.JID, g); err != nil {
			return 0, err
		}
	}
	return ver, nil
}

func (r *roster) Remove(ctx context.Context, owner, contact string) (uint64, error) {
	return r.do(ctx, &rosterReq{owner: owner, remove: true, contact: contact})
}

// remove deletes one item inside the batch transaction.
func remove(ctx context.Context, tx *sql.Tx, owner, contact string) (uint64, error) {
	res, err := tx.ExecContext(ctx, "DELETE FROM roster_items WHERE owner = ? AND contact = ?", owner, contact)
	if err != nil {
		return 0, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return 0, err
	} else if n == 0 {
		return 0, storage.ErrNotFound
	}
	return bump(ctx, tx, owner)
}

// do queues a change and waits for the commit that holds it.
func (r *roster) do(ctx context.Context, req *rosterReq) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	req.ctx, req.done = ctx, make(chan struct{})
	r.mu.Lock()
	r.queue = append(r.queue, req)
	if !r.writing {
		r.writing = true
		go r.writer()
	}
	r.mu.Unlock()
	<-req.done
	return req.ver, req.err
}

// writer commits batches until the queue is empty.
func (r *roster) writer() {
	for {
		r.mu.Lock()
		n := min(len(r.queue), maxRosterBatch)
		if n == 0 {
			r.writing = false
			r.queue = nil
			r.mu.Unlock()
			return
		}
		batch := slices.Clone(r.queue[:n])
		r.queue = r.queue[n:]
		r.mu.Unlock()

		r.commit(batch)
		for _, q := range batch {
			close(q.done)
		}
	}
}

// commit writes one batch in one transaction and sets each request's
// result. A request whose context ended while it was queued is not written.
//
// A change to an unknown owner fails before it writes anything (bump is
// its first statement for a Put; for a Remove, the missing item is found
// first), so it fails alone inside the shared transaction. Any other error
// rolls the batch back, and its changes are then written one transaction
// each, so that a change that cannot be written fails alone.
func (r *roster) commit(batch []*rosterReq) {
	live := batch[:0:0]
	for _, q := range batch {
		if q.err = q.ctx.Err(); q.err == nil {
			live = append(live, q)
		}
	}
	if len(live) == 0 {
		return
	}
	if len(live) > 1 {
		if r.commitAll(live) == nil {
			return
		}
	}
	for _, q := range live {
		r.commitAll([]*rosterReq{q})
	}
}

// commitAll writes reqs in one transaction. It returns a non-nil error
// (and sets it on every request) when the transaction failed as a whole.
func (r *roster) commitAll(reqs []*rosterReq) error {
	ctx := context.Background() // the batch is not any one caller's
	fail := func(err error) error {
		for _, q := range reqs {
			q.ver, q.err, q.res = 0, err, storage.RosterUpdate{}
		}
		return err
	}
	tx, err := r.s.w.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	for _, q := range reqs {
		q.alone = false
		switch {
		case q.update != nil:
			q.err = update(ctx, tx, q)
		case q.remove:
			q.ver, q.err = remove(ctx, tx, q.owner, q.contact)
		default:
			q.ver, q.err = put(ctx, tx, q.owner, q.item, q.groups, nil, false)
		}
		if q.err != nil && !q.alone && !errors.Is(q.err, storage.ErrNotFound) {
			err := q.err
			tx.Rollback()
			return fail(err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return nil
}

func (r *roster) Version(ctx context.Context, owner string) (uint64, error) {
	var ver uint64
	err := r.s.r.QueryRowContext(ctx, "SELECT roster_version FROM accounts WHERE jid = ?", owner).Scan(&ver)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return ver, err
}
