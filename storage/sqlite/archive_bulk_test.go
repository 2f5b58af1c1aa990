package sqlite

import (
	"database/sql"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/xmppd/xmppd/internal/archivegen"
	"github.com/xmppd/xmppd/storage"
)

// TestBulkFillEqualsAppend: archivegen's fill through BulkAppend (in calls
// of many batches, resumed midway) gives the same rows, seqs and stored
// stanzas as the same fill through Append, and the archive reads back
// the same.
func TestBulkFillEqualsAppend(t *testing.T) {
	ctx := t.Context()
	type appendOnly struct{ storage.Store } // hides BulkAppend
	st := archivegen.NewState(25000, 24*time.Hour)
	st.Accounts, st.Batch = 50, 1000
	fill := func(s storage.Store, steps ...int64) archivegen.State {
		t.Helper()
		st := st
		if err := archivegen.CreateAccounts(ctx, s, &st); err != nil {
			t.Fatal(err)
		}
		for _, n := range steps {
			if err := archivegen.Fill(ctx, s, &st, n, nil); err != nil {
				t.Fatal(err)
			}
		}
		return st
	}
	bulk, _ := openTemp(t)
	defer mustClose(t, bulk)
	plain, _ := openTemp(t)
	defer mustClose(t, plain)
	if _, ok := storage.Store(bulk).(archivegen.BulkAppender); !ok {
		t.Fatal("*Store is not a BulkAppender")
	}
	sb := fill(bulk, 12000, 25000)
	sp := fill(appendOnly{plain}, 25000)
	if sb.Rows != 25000 || sp.Rows != 25000 {
		t.Fatalf("rows %d, %d", sb.Rows, sp.Rows)
	}
	dump := func(db *sql.DB) []string {
		t.Helper()
		rows, err := db.Query(`SELECT seq, owner, with_bare, with_res, outgoing, msg_id, origin_id, hex(stanza) FROM archive
			UNION ALL SELECT seq, owner, with_bare, with_res, outgoing, msg_id, origin_id, hex(stanza) FROM archive_tail ORDER BY seq`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var seq, out1 int64
			var o, wb, wr, id, oid, st string
			if err := rows.Scan(&seq, &o, &wb, &wr, &out1, &id, &oid, &st); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprint(seq, o, wb, wr, out1, id, oid, st))
		}
		return out
	}
	b, p := dump(bulk.r), dump(plain.r)
	if len(b) != 25000 || !slices.Equal(b, p) {
		i := 0
		for i < min(len(b), len(p)) && b[i] == p[i] {
			i++
		}
		t.Fatalf("bulk fill: %d rows, append fill: %d; first difference at row %d", len(b), len(p), i)
	}
	var tail int
	if err := bulk.r.QueryRow("SELECT count(*) FROM archive_tail").Scan(&tail); err != nil || tail != 0 {
		t.Fatalf("bulk fill left %d rows in the tail (%v)", tail, err)
	}
	// Reads see the same pages.
	q := storage.ArchiveQuery{Owner: st.Account(1), With: st.Contact(1, 0), Max: 50, FromEnd: true, CountLimit: 100000}
	pb, err := bulk.Archive().Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	pp, err := plain.Archive().Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seqsOf(pb), seqsOf(pp)) || pb.Count != pp.Count || pb.Count == 0 {
		t.Errorf("pages differ: %v (%d) and %v (%d)", seqsOf(pb), pb.Count, seqsOf(pp), pp.Count)
	}
}
