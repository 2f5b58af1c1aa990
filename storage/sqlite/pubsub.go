package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/xmppd/xmppd/storage"
)

type pubsub struct{ s *Store }

// PubSub implements storage.Store.
func (s *Store) PubSub() storage.PubSub { return pubsub{s} }

func encodeConfig(c map[string][]string) (string, error) {
	if len(c) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(c)
	return string(b), err
}

func decodeConfig(s string) (map[string][]string, error) {
	c := map[string][]string{}
	if s == "" || s == "{}" {
		return c, nil
	}
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return nil, err
	}
	return c, nil
}

// CreateNode counts and inserts in one write transaction (BEGIN
// IMMEDIATE), so the limit holds against concurrent creations.
func (p pubsub) CreateNode(ctx context.Context, owner string, n storage.PubSubNode, maxNodes int) error {
	cfg, err := encodeConfig(n.Config)
	if err != nil {
		return err
	}
	created := n.Created
	if created.IsZero() {
		created = time.Now()
	}
	return p.s.write(ctx, func(tx *sql.Tx) error {
		if err := mustExist(ctx, tx, owner); err != nil {
			return err
		}
		if maxNodes > 0 {
			var count int
			if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM pubsub_nodes WHERE owner = ?", owner).Scan(&count); err != nil {
				return err
			}
			if count >= maxNodes {
				var one int
				err := tx.QueryRowContext(ctx, "SELECT 1 FROM pubsub_nodes WHERE owner = ? AND node = ?", owner, n.Name).Scan(&one)
				if err == nil {
					return storage.ErrExists
				}
				if !errors.Is(err, sql.ErrNoRows) {
					return err
				}
				return storage.ErrQuotaExceeded
			}
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO pubsub_nodes (owner, node, config, created_us) VALUES (?, ?, ?, ?)",
			owner, n.Name, cfg, toMicros(created))
		if isConstraint(err, sqlite3.ErrConstraintPrimaryKey) {
			return storage.ErrExists
		}
		return err
	})
}

func scanNode(sc interface{ Scan(...any) error }) (storage.PubSubNode, error) {
	var n storage.PubSubNode
	var cfg string
	var created int64
	if err := sc.Scan(&n.Name, &cfg, &created); err != nil {
		return n, err
	}
	c, err := decodeConfig(cfg)
	if err != nil {
		return n, err
	}
	n.Config, n.Created = c, fromMicros(created)
	return n, nil
}

func (p pubsub) Node(ctx context.Context, owner, name string) (storage.PubSubNode, error) {
	n, err := scanNode(p.s.r.QueryRowContext(ctx,
		"SELECT node, config, created_us FROM pubsub_nodes WHERE owner = ? AND node = ?", owner, name))
	if errors.Is(err, sql.ErrNoRows) {
		return storage.PubSubNode{}, storage.ErrNotFound
	}
	return n, err
}

func (p pubsub) Nodes(ctx context.Context, owner string) ([]storage.PubSubNode, error) {
	rows, err := p.s.r.QueryContext(ctx,
		"SELECT node, config, created_us FROM pubsub_nodes WHERE owner = ? ORDER BY node", owner)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storage.PubSubNode
	for rows.Next() {
		n, err := scanNode(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// trim deletes the oldest items of a node beyond max (max <= 0: none).
func trim(ctx context.Context, tx *sql.Tx, owner, node string, max int) error {
	if max <= 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM pubsub_items WHERE owner = ?1 AND node = ?2 AND seq <= (
		SELECT seq FROM pubsub_items WHERE owner = ?1 AND node = ?2 ORDER BY seq DESC LIMIT 1 OFFSET ?3)`,
		owner, node, max)
	return err
}

func (p pubsub) ConfigureNode(ctx context.Context, owner, name string, config map[string][]string, maxItems int) error {
	cfg, err := encodeConfig(config)
	if err != nil {
		return err
	}
	return p.s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE pubsub_nodes SET config = ? WHERE owner = ? AND node = ?", cfg, owner, name)
		if err := oneRow(res, err, owner); err != nil {
			return err
		}
		return trim(ctx, tx, owner, name, maxItems)
	})
}

// DeleteNode deletes the node row; ON DELETE CASCADE removes its items in
// the same statement.
func (p pubsub) DeleteNode(ctx context.Context, owner, name string) error {
	res, err := p.s.w.ExecContext(ctx, "DELETE FROM pubsub_nodes WHERE owner = ? AND node = ?", owner, name)
	return oneRow(res, err, owner)
}

func nodeExists(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, owner, node string) error {
	var one int
	err := q.QueryRowContext(ctx, "SELECT 1 FROM pubsub_nodes WHERE owner = ? AND node = ?", owner, node).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.ErrNotFound
	}
	return err
}

func (p pubsub) Publish(ctx context.Context, owner, node string, it storage.PubSubItem, maxItems int) error {
	published := it.Published
	if published.IsZero() {
		published = time.Now()
	}
	payload := it.Payload
	if payload == nil {
		payload = []byte{}
	}
	return p.s.write(ctx, func(tx *sql.Tx) error {
		if err := nodeExists(ctx, tx, owner, node); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM pubsub_items WHERE owner = ? AND node = ? AND id = ?", owner, node, it.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO pubsub_items (owner, node, id, publisher, published_us, payload)
			VALUES (?, ?, ?, ?, ?, ?)`, owner, node, it.ID, it.Publisher, toMicros(published), payload); err != nil {
			return err
		}
		return trim(ctx, tx, owner, node, maxItems)
	})
}

func scanPubSubItems(rows *sql.Rows) ([]storage.PubSubItem, error) {
	defer rows.Close()
	var out []storage.PubSubItem
	for rows.Next() {
		var it storage.PubSubItem
		var us int64
		if err := rows.Scan(&it.ID, &it.Publisher, &us, &it.Payload); err != nil {
			return nil, err
		}
		it.Published = fromMicros(us)
		out = append(out, it)
	}
	return out, rows.Err()
}

func (p pubsub) Items(ctx context.Context, owner, node string, max int) ([]storage.PubSubItem, error) {
	var out []storage.PubSubItem
	err := p.s.read(ctx, func(tx *sql.Tx) error {
		if err := nodeExists(ctx, tx, owner, node); err != nil {
			return err
		}
		limit := -1
		if max > 0 {
			limit = max
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, publisher, published_us, payload FROM (
			SELECT seq, id, publisher, published_us, payload FROM pubsub_items
			WHERE owner = ? AND node = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq`, owner, node, limit)
		if err != nil {
			return err
		}
		out, err = scanPubSubItems(rows)
		return err
	})
	return out, err
}

func (p pubsub) ItemsByID(ctx context.Context, owner, node string, ids []string) ([]storage.PubSubItem, error) {
	var out []storage.PubSubItem
	err := p.s.read(ctx, func(tx *sql.Tx) error {
		if err := nodeExists(ctx, tx, owner, node); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		b, err := json.Marshal(ids)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, publisher, published_us, payload FROM pubsub_items
			WHERE owner = ? AND node = ? AND id IN (SELECT value FROM json_each(?)) ORDER BY seq`, owner, node, string(b))
		if err != nil {
			return err
		}
		out, err = scanPubSubItems(rows)
		return err
	})
	return out, err
}

func (p pubsub) Retract(ctx context.Context, owner, node, id string) error {
	return p.s.write(ctx, func(tx *sql.Tx) error {
		if err := nodeExists(ctx, tx, owner, node); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM pubsub_items WHERE owner = ? AND node = ? AND id = ?", owner, node, id)
		return oneRow(res, err, owner)
	})
}

func (p pubsub) Purge(ctx context.Context, owner, node string) error {
	return p.s.write(ctx, func(tx *sql.Tx) error {
		if err := nodeExists(ctx, tx, owner, node); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "DELETE FROM pubsub_items WHERE owner = ? AND node = ?", owner, node)
		return err
	})
}

// LastItems finds each node's newest item on the (owner, node, seq) index.
func (p pubsub) LastItems(ctx context.Context, owner string, nodes []string) ([]storage.PubSubLast, error) {
	if nodes != nil && len(nodes) == 0 {
		return nil, nil
	}
	var q strings.Builder
	q.WriteString(`SELECT n.node, n.config, n.created_us, i.id, i.publisher, i.published_us, i.payload
		FROM pubsub_nodes n JOIN pubsub_items i ON i.seq = (
			SELECT seq FROM pubsub_items WHERE owner = n.owner AND node = n.node ORDER BY seq DESC LIMIT 1)
		WHERE n.owner = ?`)
	args := []any{owner}
	if nodes != nil {
		b, err := json.Marshal(nodes)
		if err != nil {
			return nil, err
		}
		q.WriteString(" AND n.node IN (SELECT value FROM json_each(?))")
		args = append(args, string(b))
	}
	q.WriteString(" ORDER BY n.node")
	rows, err := p.s.r.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storage.PubSubLast
	for rows.Next() {
		var l storage.PubSubLast
		var cfg string
		var created, published int64
		if err := rows.Scan(&l.Node.Name, &cfg, &created, &l.Item.ID, &l.Item.Publisher, &published, &l.Item.Payload); err != nil {
			return nil, err
		}
		c, err := decodeConfig(cfg)
		if err != nil {
			return nil, err
		}
		l.Node.Config, l.Node.Created = c, fromMicros(created)
		l.Item.Published = fromMicros(published)
		out = append(out, l)
	}
	return out, rows.Err()
}
