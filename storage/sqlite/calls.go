package sqlite

import (
	"context"
	"database/sql"
	"strings"

	"github.com/xmppd/xmppd/storage"
)

type calls struct{ s *Store }

// Calls implements storage.Store.
func (s *Store) Calls() storage.Calls { return &calls{s} }

func bareOf(j string) string {
	if i := strings.IndexByte(j, '/'); i >= 0 {
		return j[:i]
	}
	return j
}

func (c *calls) Put(ctx context.Context, r storage.CallRecord) error {
	return c.s.write(ctx, func(tx *sql.Tx) error {
		// The key is (caller_bare, id): a record is replaced only by one of
		// the same caller.
		_, err := tx.ExecContext(ctx, `INSERT INTO calls
			(id, caller, callee, caller_bare, callee_bare, media, start_us, answer_us, end_us, end_reason)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (caller_bare, id) DO UPDATE SET caller = excluded.caller, callee = excluded.callee,
				callee_bare = excluded.callee_bare, media = excluded.media, start_us = excluded.start_us,
				answer_us = excluded.answer_us, end_us = excluded.end_us, end_reason = excluded.end_reason`,
			r.ID, r.Caller, r.Callee, bareOf(r.Caller), bareOf(r.Callee), strings.Join(r.Media, " "),
			toMicros(r.Start), nullMicros(r.Answer), nullMicros(r.End), r.EndReason)
		return err
	})
}

func (c *calls) List(ctx context.Context, jid string, limit int) ([]storage.CallRecord, error) {
	q := "SELECT id, caller, callee, media, start_us, answer_us, end_us, end_reason FROM calls"
	var args []any
	if jid != "" {
		q += " WHERE caller_bare = ? OR callee_bare = ?"
		args = append(args, jid, jid)
	}
	q += " ORDER BY start_us DESC, caller_bare, id"
	if limit > 0 {
		q += " LIMIT ?"
		args = append(args, limit)
	}
	rows, err := c.s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storage.CallRecord
	for rows.Next() {
		var r storage.CallRecord
		var media string
		var start int64
		var answer, end sql.NullInt64
		if err := rows.Scan(&r.ID, &r.Caller, &r.Callee, &media, &start, &answer, &end, &r.EndReason); err != nil {
			return nil, err
		}
		if media != "" {
			r.Media = strings.Split(media, " ")
		}
		r.Start, r.Answer, r.End = fromMicros(start), fromNullMicros(answer), fromNullMicros(end)
		out = append(out, r)
	}
	return out, rows.Err()
}
