package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/storagetest"
)

func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "xmppd.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s, path
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, _ := openTemp(t)
		return s
	})
}

func mustClose(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := t.Context()
	s, path := openTemp(t)
	if err := s.Accounts().Create(ctx, storage.Account{JID: "a@example.com", Keys: map[string]storage.SCRAMKeys{
		"SHA-256": {Salt: []byte("salt"), Iterations: 4096, StoredKey: []byte("sk"), ServerKey: []byte("vk")},
	}}); err != nil {
		t.Fatal(err)
	}
	ver, err := s.Roster().Put(ctx, "a@example.com", storage.RosterItem{JID: "b@example.com", Groups: []string{"G"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Offline().Store(ctx, "a@example.com", storage.OfflineMessage{From: "b@example.com/r", Stanza: []byte("<message/>")}, 0); err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, s)
	acc, err := s.Accounts().Get(ctx, "a@example.com")
	if err != nil || acc.Keys["SHA-256"].Iterations != 4096 {
		t.Errorf("Get after reopen = %+v, %v", acc, err)
	}
	items, v, err := s.Roster().Items(ctx, "a@example.com")
	if err != nil || len(items) != 1 || v != ver || items[0].Groups[0] != "G" {
		t.Errorf("Items after reopen = %+v, %d, %v; want b@example.com in G, version %d", items, v, err, ver)
	}
	if n, err := s.Offline().Count(ctx, "a@example.com"); err != nil || n != 1 {
		t.Errorf("Count after reopen = %d, %v", n, err)
	}
}

func schemaRows(t *testing.T, path string) []int {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT version FROM schema_version ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	return vs
}

func TestMigrationsIdempotent(t *testing.T) {
	s, path := openTemp(t)
	if err := migrate(t.Context(), s.w); err != nil {
		t.Fatalf("migrate on an up-to-date database: %v", err)
	}
	mustClose(t, s)
	for range 2 {
		s, err := Open(path)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		mustClose(t, s)
	}
	vs := schemaRows(t, path)
	if len(vs) != SchemaVersion() || vs[len(vs)-1] != SchemaVersion() {
		t.Errorf("schema_version rows = %v, want 1..%d once each", vs, SchemaVersion())
	}
}

func TestMigrationsWellFormed(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatal("no embedded migrations")
	}
	for i, m := range ms {
		if m.version != i+1 || strings.TrimSpace(m.sql) == "" {
			t.Errorf("migration %d: %s (version %d)", i, m.name, m.version)
		}
	}
}

// TestUpgradeFromSchema1 applies only the first migration to a new file,
// stores a roster item the way that schema could, and opens the file: the
// later migrations run and the old item comes back unchanged, not hidden.
func TestUpgradeFromSchema1(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite3", "file:"+escapePath(path)+"?_foreign_keys=on")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		ms[0].sql,
		"CREATE TABLE schema_version (version INTEGER NOT NULL PRIMARY KEY, applied_us INTEGER NOT NULL)",
		"INSERT INTO schema_version VALUES (1, 0)",
		"INSERT INTO accounts (jid, domain, created_us, roster_version) VALUES ('a@example.com', 'example.com', 0, 7)",
		`INSERT INTO roster_items (owner, contact, name, subscription, ask, pending_in, pending_in_xml, approved)
			VALUES ('a@example.com', 'b@example.com', '', 'none', 0, 1, X'3c702f3e', 0)`,
		"INSERT INTO roster_groups VALUES ('a@example.com', 'b@example.com', 'G')",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, s)
	if vs := schemaRows(t, path); len(vs) != SchemaVersion() {
		t.Errorf("schema_version rows = %v, want 1..%d", vs, SchemaVersion())
	}
	items, ver, err := s.Roster().Items(t.Context(), "a@example.com")
	want := storage.RosterItem{JID: "b@example.com", Subscription: storage.SubNone, PendingIn: true,
		PendingInXML: []byte("<p/>"), Groups: []string{"G"}}
	if err != nil || ver != 7 || len(items) != 1 || fmt.Sprint(items[0]) != fmt.Sprint(want) {
		t.Errorf("Items after upgrade = %+v, %d, %v; want [%+v], 7", items, ver, err, want)
	}
	// The new column is written and read like the others.
	want.Hidden = true
	if _, err := s.Roster().Put(t.Context(), "a@example.com", want); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Roster().Item(t.Context(), "a@example.com", "b@example.com"); err != nil || !got.Hidden {
		t.Errorf("Item after Put(Hidden) = %+v, %v", got, err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	s, path := openTemp(t)
	if _, err := s.w.Exec("INSERT INTO schema_version (version, applied_us) VALUES (?, 0)", SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)
	s, err := Open(path)
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded on a database with a newer schema")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open error = %v, want it to say the schema is newer", err)
	}
}

func TestPragmas(t *testing.T) {
	s, _ := openTemp(t)
	defer mustClose(t, s)
	for _, db := range []struct {
		name string
		db   *sql.DB
		want map[string]string
	}{
		{"writer", s.w, map[string]string{"journal_mode": "wal", "foreign_keys": "1", "synchronous": "1", "busy_timeout": "10000", "query_only": "0"}},
		{"reader", s.r, map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "10000", "query_only": "1"}},
	} {
		for p, want := range db.want {
			var got string
			if err := db.db.QueryRow("PRAGMA " + p).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("%s: PRAGMA %s = %s, want %s", db.name, p, got, want)
			}
		}
	}
	if _, err := s.r.Exec("DELETE FROM accounts"); err == nil {
		t.Error("the read pool accepted a write")
	}
}

// TestFullSync: OpenWith(FullSync) makes the writer fsync every commit
// (synchronous=FULL, 2), which is what survives power loss.
func TestFullSync(t *testing.T) {
	s, err := OpenWith(filepath.Join(t.TempDir(), "full.db"), Options{FullSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, s)
	var got string
	if err := s.w.QueryRow("PRAGMA synchronous").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "2" {
		t.Fatalf("PRAGMA synchronous = %s, want 2 (FULL)", got)
	}
}

func TestSecondProcess(t *testing.T) {
	// A second *Store on the same file stands in for the `xmppd user add`
	// CLI writing while the server runs.
	ctx := t.Context()
	server, path := openTemp(t)
	defer mustClose(t, server)
	if err := server.Accounts().Create(ctx, storage.Account{JID: "old@example.com"}); err != nil {
		t.Fatal(err)
	}
	cli, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Accounts().Create(ctx, storage.Account{JID: "new@example.com", Keys: map[string]storage.SCRAMKeys{
		"SHA-256": {Salt: []byte{1}, Iterations: 4096, StoredKey: []byte{2}, ServerKey: []byte{3}},
	}}); err != nil {
		t.Fatal(err)
	}
	mustClose(t, cli)
	acc, err := server.Accounts().Get(ctx, "new@example.com")
	if err != nil || acc.Keys["SHA-256"].Iterations != 4096 {
		t.Fatalf("server Get(account created by the CLI) = %+v, %v", acc, err)
	}
	list, err := server.Accounts().List(ctx, "example.com")
	if err != nil || len(list) != 2 {
		t.Errorf("server List = %q, %v", list, err)
	}
}

func TestTwoWritersOnOneFile(t *testing.T) {
	// Both stores write at the same time; the busy timeout and BEGIN
	// IMMEDIATE make them take turns instead of failing with SQLITE_BUSY,
	// and the per-user limit holds across them.
	ctx := t.Context()
	a, path := openTemp(t)
	defer mustClose(t, a)
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, b)
	if err := a.Accounts().Create(ctx, storage.Account{JID: "u@example.com"}); err != nil {
		t.Fatal(err)
	}
	const per, limit = 100, 150
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored, refused := 0, 0
	for i, s := range []*Store{a, b, a, b} {
		wg.Go(func() {
			for j := range per {
				err := s.Offline().Store(ctx, "u@example.com", storage.OfflineMessage{From: "x@y/z", Stanza: fmt.Append(nil, i, j)}, limit)
				if i%2 == 0 {
					// and some account churn from "the CLI"
					if err2 := s.Accounts().Create(ctx, storage.Account{JID: fmt.Sprintf("u%d-%d@example.com", i, j)}); err2 != nil {
						t.Error(err2)
					}
				}
				mu.Lock()
				switch {
				case err == nil:
					stored++
				case errors.Is(err, storage.ErrQuotaExceeded):
					refused++
				default:
					t.Errorf("Store: %v", err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if stored != limit || refused != 4*per-limit {
		t.Errorf("stored %d, refused %d; want %d, %d", stored, refused, limit, 4*per-limit)
	}
	for _, s := range []*Store{a, b} {
		if n, err := s.Offline().Count(ctx, "u@example.com"); err != nil || n != limit {
			t.Errorf("Count = %d, %v; want %d", n, err, limit)
		}
	}
}

func TestCredentialsOnlyKeys(t *testing.T) {
	// The schema has no place for a password: scram_keys holds exactly the
	// RFC 5802 values per (jid, hash).
	s, _ := openTemp(t)
	defer mustClose(t, s)
	rows, err := s.r.Query("SELECT name FROM pragma_table_info('scram_keys') ORDER BY cid")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		rows.Scan(&c)
		cols = append(cols, c)
	}
	if got := strings.Join(cols, ","); got != "jid,hash,salt,iterations,stored_key,server_key" {
		t.Errorf("scram_keys columns = %s", got)
	}
}

func TestBadJIDRefused(t *testing.T) {
	s, _ := openTemp(t)
	defer mustClose(t, s)
	for _, jid := range []string{"", "example.com", "@example.com", "user@"} {
		if err := s.Accounts().Create(t.Context(), storage.Account{JID: jid}); err == nil {
			t.Errorf("Create(%q) succeeded", jid)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db?mode=memory"} {
		if s, err := Open(p); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", p)
		}
	}
	// A directory that does not exist.
	if s, err := Open(filepath.Join(t.TempDir(), "missing", "x.db")); err == nil {
		s.Close()
		t.Error("Open in a missing directory succeeded")
	}
	// A file that is not a database.
	junk := filepath.Join(t.TempDir(), "junk.db")
	if err := os.WriteFile(junk, []byte(strings.Repeat("not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(junk); err == nil {
		s.Close()
		t.Error("Open on a junk file succeeded")
	}
}

func TestPathNeedingEscapes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a?b#c%20d")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "x.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not created at %s: %v", path, err)
	}
}

func TestTimesBeforeEpoch(t *testing.T) {
	s, _ := openTemp(t)
	defer mustClose(t, s)
	when := time.Date(1960, 1, 2, 3, 4, 5, 6_789_000, time.UTC)
	if err := s.Accounts().Create(t.Context(), storage.Account{JID: "old@example.com", Created: when}); err != nil {
		t.Fatal(err)
	}
	acc, err := s.Accounts().Get(t.Context(), "old@example.com")
	if err != nil || !acc.Created.Equal(when) {
		t.Errorf("Created = %v, %v; want %v", acc.Created, err, when)
	}
}

func TestFileModes(t *testing.T) {
	s, path := openTemp(t)
	defer mustClose(t, s)
	if err := s.Accounts().Create(t.Context(), storage.Account{JID: "a@example.com"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m&0o077 != 0 {
			t.Errorf("%s has mode %v, want no access for group and others", filepath.Base(p), m)
		}
	}
}
