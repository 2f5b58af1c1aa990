package sqlite

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/xmppd/xmppd/storage"
)

// The child side of TestOtherProcesses: a separate OS process opening the
// same file, as `xmppd user add` does next to a running server.
func TestChildProcess(t *testing.T) {
	path, id := os.Getenv("XMPPD_SQLITE_CHILD_DB"), os.Getenv("XMPPD_SQLITE_CHILD_ID")
	if path == "" {
		t.Skip("only run as a child of TestOtherProcesses")
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for i := range 20 {
		jid := fmt.Sprintf("child%s-%d@example.com", id, i)
		if err := s.Accounts().Create(ctx, storage.Account{JID: jid}); err != nil {
			t.Fatal(err)
		}
		if err := s.Offline().Store(ctx, "shared@example.com", storage.OfflineMessage{From: jid, Stanza: []byte("<message/>")}, 50); err != nil &&
			err != storage.ErrQuotaExceeded && err != storage.ErrNotFound {
			t.Fatal(err)
		}
	}
}

// TestOtherProcesses starts several processes on a file that does not exist
// yet (so they race to create the schema and switch to WAL), while this
// process writes to the same file too.
func TestOtherProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	path := filepath.Join(t.TempDir(), "shared.db")
	const children = 3
	var wg sync.WaitGroup
	for c := range children {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^TestChildProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), "XMPPD_SQLITE_CHILD_DB="+path, "XMPPD_SQLITE_CHILD_ID="+strconv.Itoa(c))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("child %d: %v\n%s", c, err, out)
			}
		})
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, s)
	ctx := t.Context()
	if err := s.Accounts().Create(ctx, storage.Account{JID: "shared@example.com"}); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if _, err := s.Roster().Put(ctx, "shared@example.com", storage.RosterItem{JID: fmt.Sprintf("c%d@example.com", i)}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	list, err := s.Accounts().List(ctx, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1+children*20 {
		t.Errorf("%d accounts, want %d", len(list), 1+children*20)
	}
	if n, err := s.Offline().Count(ctx, "shared@example.com"); err != nil || n > 50 {
		t.Errorf("Count = %d, %v; want at most the limit of 50", n, err)
	}
	if v, err := s.Roster().Version(ctx, "shared@example.com"); err != nil || v != 50 {
		t.Errorf("Version = %d, %v; want 50", v, err)
	}
	if vs := schemaRows(t, path); len(vs) != SchemaVersion() {
		t.Errorf("schema_version rows %v: a migration was applied more than once", vs)
	}
}
