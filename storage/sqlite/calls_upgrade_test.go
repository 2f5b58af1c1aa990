package sqlite

import (
	"database/sql"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/storage"
)

// TestUpgradeCallsKey stores a call record the way the schema before it could (keyed
// by id alone) and opens the file: migration 0008 keeps the record, and a
// second caller's call with the same id is a record of its own.
func TestUpgradeCallsKey(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	n := -1 // the migrations before the one that re-keys calls
	for i, m := range ms {
		if strings.HasSuffix(m.name, "_calls_by_caller.sql") {
			n = i
		}
	}
	if n < 0 {
		t.Fatal("no calls_by_caller migration")
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
	qs = append(qs, `INSERT INTO calls (id, caller, callee, caller_bare, callee_bare, media, start_us, answer_us, end_us, end_reason)
		VALUES ('c1', 'alice@example.org/phone', 'bob@example.org/pc', 'alice@example.org', 'bob@example.org', 'audio', 1000000, 2000000, 3000000, 'success')`)
	for _, q := range qs {
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
	old := storage.CallRecord{ID: "c1", Caller: "alice@example.org/phone", Callee: "bob@example.org/pc", Media: []string{"audio"},
		Start: time.UnixMicro(1000000).UTC(), Answer: time.UnixMicro(2000000).UTC(), End: time.UnixMicro(3000000).UTC(), EndReason: storage.CallSuccess}
	other := storage.CallRecord{ID: "c1", Caller: "carol@example.org/x", Callee: "bob@example.org", Start: time.UnixMicro(5000000).UTC()}
	if err := s.Calls().Put(t.Context(), other); err != nil {
		t.Fatal(err)
	}
	got, err := s.Calls().List(t.Context(), "bob@example.org", 0)
	if err != nil || len(got) != 2 || !reflect.DeepEqual(got[1], old) || !reflect.DeepEqual(got[0], other) {
		t.Fatalf("List after upgrade = %+v, %v; want [%+v %+v]", got, err, other, old)
	}
}
