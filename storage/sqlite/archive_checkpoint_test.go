package sqlite

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/xmppd/xmppd/storage"
)

// TestArchiveCheckpointsInBackground: archive commits are copied from the
// WAL into the database file by the background checkpointer, long before
// the writer's own checkpoint (at writerCheckpointPages) would run inside
// a COMMIT; the data stays readable and the checkpointer stops with Close.
func TestArchiveCheckpointsInBackground(t *testing.T) {
	s, path := openTemp(t)
	ctx := t.Context()
	if err := s.Accounts().Create(ctx, storage.Account{JID: "a@example.com"}); err != nil {
		t.Fatal(err)
	}
	file, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatal(err)
	}
	type run struct{ log, done int }
	runs := make(chan run, 64)
	f := func(f string, log, done int) {
		if g, err := filepath.EvalSymlinks(f); err != nil || g != file {
			return
		}
		select {
		case runs <- run{log, done}:
		default:
		}
	}
	checkpointRan.Store(&f)
	defer checkpointRan.Store(nil)

	const n = 50 // one commit each: a few frames per commit, far below writerCheckpointPages
	for i := range n {
		if err := s.Archive().Append(ctx, queueMsg("a@example.com", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Failure guard only: a background checkpoint follows the commits at
	// once (checkpointEvery apart).
	guard := time.After(time.Minute)
	for copied := false; !copied; {
		select {
		case r := <-runs:
			if r.log >= writerCheckpointPages {
				t.Fatalf("the WAL reached %d frames: the writer's own checkpoint ran", r.log)
			}
			copied = r.log > 0 && r.done == r.log
		case <-guard:
			t.Fatal("no background checkpoint copied the archive's commits into the database file")
		}
	}
	p, err := s.Archive().Query(ctx, storage.ArchiveQuery{Owner: "a@example.com", Max: 100})
	if err != nil || len(p.Messages) != n {
		t.Fatalf("Query: %d messages, %v; want %d", len(p.Messages), err, n)
	}
	a := s.Archive().(*archive)
	a.mu.Lock()
	c := a.ckpt
	a.mu.Unlock()
	if c == nil {
		t.Fatal("no checkpointer")
	}
	mustClose(t, s)
	select {
	case <-c.done:
	default:
		t.Error("the checkpointer still runs after Close")
	}
}
