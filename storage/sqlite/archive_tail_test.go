package sqlite

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/storage"
)

func tailCount(t *testing.T, s *Store, owner string) int {
	t.Helper()
	var n int
	if err := s.w.QueryRow("SELECT count(*) FROM archive_tail WHERE owner = ?", owner).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func seqsOf(p storage.ArchivePage) []int64 {
	var out []int64
	for _, m := range p.Messages {
		out = append(out, m.Seq)
	}
	return out
}

// TestArchiveTail: appends go to the unindexed tail; a read of an owner
// moves its rows (and the tail before them) into the archive first; the
// owners with tail rows are found again after a restart; deleting an
// account deletes its tail rows; a large tail is merged without a read.
func TestArchiveTail(t *testing.T) {
	s, path := openTemp(t)
	ctx := t.Context()
	users := []string{"a@example.com", "b@example.com", "c@example.com"}
	for _, u := range users {
		if err := s.Accounts().Create(ctx, storage.Account{JID: u}); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string][]int64{}
	add := func(s *Store, n int) {
		t.Helper()
		for i := range n {
			m := queueMsg(users[i%3], i)
			if err := s.Archive().Append(ctx, m); err != nil {
				t.Fatal(err)
			}
			want[m[0].Owner] = append(want[m[0].Owner], m[0].Seq)
		}
	}
	add(s, 30)
	for _, u := range users {
		if n := tailCount(t, s, u); n != 10 {
			t.Fatalf("%s has %d rows in the tail after 10 appends, want 10", u, n)
		}
	}
	p, err := s.Archive().Query(ctx, storage.ArchiveQuery{Owner: users[0], Max: 100})
	if err != nil || !slices.Equal(seqsOf(p), want[users[0]]) {
		t.Fatalf("Query(a) = %v, %v; want %v", seqsOf(p), err, want[users[0]])
	}
	if n := tailCount(t, s, users[0]); n != 0 {
		t.Errorf("a still has %d rows in the tail after a read", n)
	}

	// A restart with rows in the tail: reads still see them.
	add(s, 6)
	mustClose(t, s)
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, s)
	if n := tailCount(t, s, users[1]); n == 0 {
		t.Fatal("b has no rows in the tail before the restart's first read")
	}
	for _, u := range users[1:] {
		p, err := s.Archive().Query(ctx, storage.ArchiveQuery{Owner: u, Max: 100})
		if err != nil || !slices.Equal(seqsOf(p), want[u]) {
			t.Fatalf("after a restart Query(%s) = %v, %v; want %v", u, seqsOf(p), err, want[u])
		}
	}
	// And new ids go after the tail's.
	add(s, 3)
	// Deleting an account deletes its tail rows; the others still merge.
	if err := s.Accounts().Delete(ctx, users[2]); err != nil {
		t.Fatal(err)
	}
	if n := tailCount(t, s, users[2]); n != 0 {
		t.Errorf("a deleted account keeps %d tail rows", n)
	}
	for _, u := range users[:2] {
		p, err := s.Archive().Query(ctx, storage.ArchiveQuery{Owner: u, Max: 100})
		if err != nil || !slices.Equal(seqsOf(p), want[u]) {
			t.Fatalf("Query(%s) = %v, %v; want %v", u, seqsOf(p), err, want[u])
		}
	}

	// A tail of mergeAt rows is merged by the writer, in chunks.
	a := s.Archive().(*archive)
	a.mu.Lock()
	a.mergeAt, a.mergeChunk = 20, 8
	a.mu.Unlock()
	var chans []<-chan error
	for i := range 100 {
		chans = append(chans, s.Archive().Enqueue(ctx, queueMsg(users[i%2], 1000+i)))
	}
	for _, ch := range chans {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	// One more append lets the writer run a merge after it; a read of
	// nobody's archive does not merge.
	if err := s.Archive().Append(ctx, queueMsg(users[0], 2000)); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.w.QueryRow("SELECT count(*) FROM archive_tail").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n >= 100 {
		t.Errorf("the tail holds %d rows after passing mergeAt=20; want it merged", n)
	}
	total := 0
	for _, u := range users[:2] {
		p, err := s.Archive().Query(ctx, storage.ArchiveQuery{Owner: u, Max: 1000})
		if err != nil {
			t.Fatal(err)
		}
		total += len(p.Messages)
	}
	if want := len(want[users[0]]) + len(want[users[1]]) + 101; total != want {
		t.Errorf("%d messages after merging, want %d", total, want)
	}
}

// TestUpgradeArchiveTail opens a database at schema 0009 holding archived
// messages: after migration 0010 every page of every archive is the same,
// and new messages follow them.
func TestUpgradeArchiveTail(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	n := slices.IndexFunc(ms, func(m migration) bool { return strings.HasSuffix(m.name, "_archive_tail.sql") })
	if n < 0 {
		t.Fatal("no archive_tail migration")
	}
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite3", "file:"+escapePath(path)+"?_foreign_keys=on")
	if err != nil {
		t.Fatal(err)
	}
	qs := []string{"CREATE TABLE schema_version (version INTEGER NOT NULL PRIMARY KEY, applied_us INTEGER NOT NULL)"}
	for _, m := range ms[:n] {
		qs = append(qs, m.sql, "INSERT INTO schema_version VALUES ("+strconv.Itoa(m.version)+", 0)")
	}
	users := []string{"a@example.com", "b@example.com"}
	for _, u := range users {
		qs = append(qs, "INSERT INTO accounts (jid, domain, created_us) VALUES ('"+u+"', 'example.com', 1)")
	}
	for i := range 300 {
		qs = append(qs, fmt.Sprintf(`INSERT INTO archive (seq, owner, with_bare, with_res, outgoing, msg_id, origin_id, retracted_us, stanza)
			VALUES (%d, '%s', 'c%d@example.net', 'r', %d, 'm%d', 'o%d', %s, '<message id=''m%d''/>')`,
			1_700_000_000_000_000+int64(i)*1000, users[i%2], i%5, i%2, i, i, map[bool]string{true: "1700000000000500", false: "NULL"}[i%50 == 0], i))
	}
	for _, q := range qs {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// What pages of 7 look like, read with plain SQL from the old file.
	old, err := sql.Open("sqlite3", "file:"+escapePath(path)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		seq     int64
		with    string
		out     bool
		id, oid string
		retr    sql.NullInt64
		stanza  string
	}
	wantRows := map[string][]row{}
	for _, u := range users {
		rs, err := old.Query("SELECT seq, with_bare || '/' || with_res, outgoing, msg_id, origin_id, retracted_us, stanza FROM archive WHERE owner = ? ORDER BY seq", u)
		if err != nil {
			t.Fatal(err)
		}
		for rs.Next() {
			var r row
			if err := rs.Scan(&r.seq, &r.with, &r.out, &r.id, &r.oid, &r.retr, &r.stanza); err != nil {
				t.Fatal(err)
			}
			wantRows[u] = append(wantRows[u], r)
		}
		rs.Close()
	}
	old.Close()

	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, s)
	ctx := t.Context()
	for _, u := range users {
		var got []row
		var after int64
		for {
			p, err := s.Archive().Query(ctx, storage.ArchiveQuery{Owner: u, PageAfter: after, Max: 7, CountLimit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			if p.Count != len(wantRows[u]) {
				t.Errorf("%s: count %d, want %d", u, p.Count, len(wantRows[u]))
			}
			for _, m := range p.Messages {
				r := row{seq: m.Seq, with: m.With, out: m.Outgoing, id: m.MessageID, oid: m.OriginID, stanza: string(m.Stanza)}
				if !m.Retracted.IsZero() {
					r.retr = sql.NullInt64{Int64: m.Retracted.UnixMicro(), Valid: true}
				}
				got = append(got, r)
			}
			if p.Complete {
				break
			}
			after = p.Messages[len(p.Messages)-1].Seq
		}
		if !slices.Equal(got, wantRows[u]) {
			t.Errorf("%s: pages after the upgrade differ:\n got %v\nwant %v", u, got, wantRows[u])
		}
	}
	m := queueMsg(users[0], 1)
	if err := s.Archive().Append(ctx, m); err != nil {
		t.Fatal(err)
	}
	if last := wantRows[users[0]][len(wantRows[users[0]])-1].seq; m[0].Seq <= last {
		t.Errorf("new Seq %d not after the upgraded archive's %d", m[0].Seq, last)
	}
}
