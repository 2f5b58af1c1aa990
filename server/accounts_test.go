package server

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/sqlite"
)

// countingAccounts counts the queries that reach the store.
type countingAccounts struct {
	storage.Accounts
	gets, exists, changes atomic.Int64
}

func (c *countingAccounts) Get(ctx context.Context, jid string) (storage.Account, error) {
	c.gets.Add(1)
	return c.Accounts.Get(ctx, jid)
}

func (c *countingAccounts) Exists(ctx context.Context, jid string) (bool, error) {
	c.exists.Add(1)
	return c.Accounts.Exists(ctx, jid)
}

func (c *countingAccounts) Changes(ctx context.Context) (uint64, error) {
	c.changes.Add(1)
	return c.Accounts.Changes(ctx)
}

func openSQLite(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func check(t *testing.T, c *accountCache, jid string, want bool) {
	t.Helper()
	ok, err := c.Check(context.Background(), jid)
	if err != nil {
		t.Fatal(err)
	}
	if ok != want {
		t.Fatalf("Check(%s) = %v, want %v", jid, ok, want)
	}
}

// TestAccountCacheIsCheap: the existence check never reads credentials,
// and repeated checks are answered from memory.
func TestAccountCacheIsCheap(t *testing.T) {
	st := openSQLite(t, filepath.Join(t.TempDir(), "x.db"))
	if err := st.Accounts().Create(context.Background(), storage.Account{JID: "bob@localhost"}); err != nil {
		t.Fatal(err)
	}
	ca := &countingAccounts{Accounts: st.Accounts()}
	c := newAccountCache(ca, time.Hour, 100)
	for i := 0; i < 100; i++ {
		check(t, c, "bob@localhost", true)
		check(t, c, "nobody@localhost", false)
	}
	if g, e, ch := ca.gets.Load(), ca.exists.Load(), ca.changes.Load(); g != 0 || e != 2 || ch != 1 {
		t.Fatalf("200 checks cost %d Get, %d Exists, %d Changes; want 0, 2, 1", g, e, ch)
	}
	// Bounded: more names than the cache holds.
	for i := 0; i < 1000; i++ {
		check(t, c, "u"+time.Duration(i).String()+"@localhost", false)
	}
	if n := len(c.known); n > 100 {
		t.Fatalf("cache holds %d entries, bound 100", n)
	}
}

// TestAccountCacheSeesOtherProcess: the CLI adds and deletes accounts
// through its own connection to the same file while the server runs; the
// cache sees both once its answer is older than the recheck interval.
func TestAccountCacheSeesOtherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	server := openSQLite(t, path)
	cli := openSQLite(t, path)
	now := time.Unix(1_000_000, 0)
	c := newAccountCache(server.Accounts(), time.Second, 100)
	c.now = func() time.Time { return now }
	ctx := context.Background()

	check(t, c, "carol@localhost", false)
	if err := cli.Accounts().Create(ctx, storage.Account{JID: "carol@localhost"}); err != nil {
		t.Fatal(err)
	}
	check(t, c, "carol@localhost", false) // within the recheck interval: cached
	now = now.Add(time.Second)
	check(t, c, "carol@localhost", true) // added by the other process: present
	check(t, c, "dave@localhost", false)

	if err := cli.Accounts().Delete(ctx, "carol@localhost"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	check(t, c, "carol@localhost", false) // deleted by the other process: gone

	// A change in this process takes effect at once.
	local := storeAccounts{Accounts: server.Accounts(), c: c}
	if err := local.Create(ctx, storage.Account{JID: "erin@localhost"}); err != nil {
		t.Fatal(err)
	}
	check(t, c, "erin@localhost", true)
	if err := local.Delete(ctx, "erin@localhost"); err != nil {
		t.Fatal(err)
	}
	check(t, c, "erin@localhost", false)
}

// TestAccountCacheStorageError: a failing store is an error, not "no".
func TestAccountCacheStorageError(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	c := newAccountCache(st.Accounts(), 0, 100)
	st.Close()
	if ok, err := c.Check(context.Background(), "bob@localhost"); err == nil || ok {
		t.Fatalf("Check on a closed store = %v, %v; want an error", ok, err)
	}
	if c.Exists(context.Background(), "bob@localhost") {
		t.Fatal("Exists on a closed store = true")
	}
}
