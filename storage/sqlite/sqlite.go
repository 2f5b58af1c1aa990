// Package sqlite is the embedded default storage backend of xmppd: one SQLite
// database file (github.com/mattn/go-sqlite3, cgo) in WAL mode.
//
// One *Store holds two connection pools on the same file: a writer pool with
// exactly one connection, so that writes from this process never compete for
// the database lock among themselves, and a read pool that, thanks to WAL,
// reads committed data concurrently with the writer. Other processes (the
// `xmppd user add` CLI) may open the same file at the same time; the
// busy_timeout makes either side wait for the other's write lock instead of
// failing.
//
// The schema is created and upgraded by the numbered migrations embedded
// from migrations/*.sql, applied in one transaction by Open.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/xmppd/xmppd/storage"
)

// BusyTimeout is how long a statement waits for a lock held by another
// connection (typically another process writing the same file) before it
// fails with SQLITE_BUSY.
const BusyTimeout = 10 * time.Second

// Store is a storage.Store kept in one SQLite file. It is safe for
// concurrent use.
type Store struct {
	w *sql.DB // the one writer connection; every write transaction is BEGIN IMMEDIATE
	r *sql.DB // read pool, query_only

	accounts accounts
	roster   roster
	offline  offline
}

var _ storage.Store = (*Store)(nil)

// Open opens (creating it if needed) the database file at path, applies the
// pending migrations and returns the store. It fails if the file holds a
// schema newer than this binary knows.
func Open(path string) (*Store, error) {
	return open(path, "NORMAL")
}

// Options configure OpenWith.
type Options struct {
	// FullSync makes every commit wait for an fsync of the WAL
	// (synchronous=FULL): a commit that returned survives an
	// operating-system crash or power loss too, not only a crash of the
	// process. It costs several times more per write (storage/README.md).
	FullSync bool
}

// OpenWith is Open with options.
func OpenWith(path string, o Options) (*Store, error) {
	if o.FullSync {
		return open(path, "FULL")
	}
	return open(path, "NORMAL")
}

// open is Open with a chosen synchronous mode (benchmarks compare FULL).
//
// synchronous=NORMAL in WAL mode: a commit appends its pages to the WAL file
// with write(2) before COMMIT returns, and only checkpoints fsync. A commit
// that returned is therefore in the operating system's page cache and
// survives a crash or kill of the xmppd process (the next opener replays the
// WAL); what NORMAL gives up, compared with FULL, is durability of the last
// commits across an operating-system crash or power loss (the database stays
// consistent, it just rolls back to an earlier commit).
func open(path, synchronous string) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: Open wants a file path, got %q", path)
	}
	// The file holds credentials (SCRAM keys): create it readable by its
	// owner only. SQLite gives the -wal and -shm files the same mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	f.Close()

	base := "file:" + escapePath(path) + "?_busy_timeout=" + strconv.FormatInt(BusyTimeout.Milliseconds(), 10) +
		"&_foreign_keys=on&_stmt_cache_size=32"

	// The writer sets journal_mode=WAL (persistent in the file) before any
	// reader connects.
	w, err := sql.Open(writerDriver, base+"&_journal_mode=WAL&_synchronous="+synchronous+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	s := &Store{w: w}
	s.accounts.s, s.roster.s, s.offline.s = s, s, s

	ctx := context.Background()
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: journal_mode is %q, not wal", path, mode)
	}
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}

	r, err := sql.Open("sqlite3", base+"&_query_only=on")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	if err := r.PingContext(ctx); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s.r = r
	return s, nil
}

// The writer connection's checkpoints.
//
// Every archive append inserts into the two archive indexes at the end of
// its owner's range: with many users, each row dirties an index page of its
// own, which the commit appends to the WAL. SQLite's default checkpoint
// (wal_autocheckpoint=1000 pages) ran inside the COMMIT that crossed it, on
// the one writer connection, so every writer waited for the copy and its two
// fsyncs, and the same hot index pages were copied back every 1000 frames.
// Checkpointing every 4096 pages (16 MiB of WAL at 4 KiB pages) copies each hot page a
// quarter as often, with the same durability: a commit is in the WAL before
// COMMIT returns, checkpointed or not. (A larger page cache than SQLite's
// 2 MiB did not help: with 5,000 archive owners, 32 MiB measured 7 % more
// CPU per message; the operating system's cache serves the re-reads.)
const writerCheckpointPages = 4096

// writerDriver opens the writer connection: every connection it opens (the
// pool keeps one, but reopens it after an error) gets the checkpoint
// setting, which has no DSN parameter.
const writerDriver = "sqlite3-xmppd-writer"

func init() {
	sql.Register(writerDriver, &sqlite3.SQLiteDriver{
		ConnectHook: func(c *sqlite3.SQLiteConn) error {
			_, err := c.Exec("PRAGMA wal_autocheckpoint = "+strconv.Itoa(writerCheckpointPages), nil)
			return err
		},
	})
}

// escapePath makes path safe inside a "file:" URI.
func escapePath(p string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
}

// Accounts implements storage.Store.
func (s *Store) Accounts() storage.Accounts { return &s.accounts }

// Roster implements storage.Store.
func (s *Store) Roster() storage.Roster { return &s.roster }

// Offline implements storage.Store.
func (s *Store) Offline() storage.Offline { return &s.offline }

// Close closes both connection pools. When the last connection to the file
// closes, SQLite checkpoints the WAL into the database file.
func (s *Store) Close() error {
	flushArchive(s) // archive writes queued by Enqueue are committed first
	return errors.Join(s.r.Close(), s.w.Close())
}

// write runs fn in a write transaction (BEGIN IMMEDIATE on the writer
// connection) and commits it when fn returns nil.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// read runs fn in a read transaction on the read pool: every statement in it
// sees the same snapshot.
func (s *Store) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// isConstraint reports whether err is the SQLite constraint violation code.
func isConstraint(err error, code sqlite3.ErrNoExtended) bool {
	var e sqlite3.Error
	return errors.As(err, &e) && e.ExtendedCode == code
}

// Times are kept as microseconds since the epoch (UTC); the zero time.Time
// is NULL where a column allows "never".

func toMicros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func nullMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

func fromNullMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMicros(v.Int64)
}

// Migrations.

//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations, which must be numbered
// 1, 2, 3 … without gaps ("0001_init.sql").
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, name := range names { // fs.Glob returns names sorted
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number and '_'", base)
		}
		if v != len(ms)+1 {
			return nil, fmt.Errorf("migration %s: expected number %d", base, len(ms)+1)
		}
		b, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b)})
	}
	return ms, nil
}

// SchemaVersion is the newest schema this binary knows.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// migrate brings the schema up to date in one write transaction, so that two
// processes opening a new file at the same time do not both apply a migration.
func migrate(ctx context.Context, db *sql.DB) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: takes the write lock first
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version    INTEGER NOT NULL PRIMARY KEY,
		applied_us INTEGER NOT NULL
	)`); err != nil {
		return err
	}
	var cur int
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_version").Scan(&cur); err != nil {
		return err
	}
	if cur > len(ms) {
		return fmt.Errorf("database schema version %d is newer than this binary knows (%d); upgrade xmppd", cur, len(ms))
	}
	for _, m := range ms[cur:] {
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO schema_version (version, applied_us) VALUES (?, ?)",
			m.version, toMicros(time.Now())); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return tx.Commit()
}
