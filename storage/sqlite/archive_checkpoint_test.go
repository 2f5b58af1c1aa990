package sqlite

import (
	"fmt"
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
	var auto int
	if err := s.w.QueryRow("PRAGMA wal_autocheckpoint").Scan(&auto); err != nil || auto != writerSafetyCheckpointPages {
		t.Fatalf("writer wal_autocheckpoint = %d (%v), want %d while the checkpointer runs", auto, err, writerSafetyCheckpointPages)
	}

	// Under continuous appends from several goroutines (the writer always
	// has a batch waiting) the WAL still restarts and stays short: before a
	// tail merge the writer lets the checkpointer finish, so the merge
	// begins a new WAL. Merges every 2,000 rows; rows of about a page each.
	a.mu.Lock()
	a.mergeAt, a.mergeChunk = 2000, 2000
	a.mu.Unlock()
	big := make([]byte, 3000)
	for i := range big {
		big[i] = byte('a' + i*7%26)
	}
	stop := make(chan struct{})
	errs := make(chan error, 4)
	for g := range 4 {
		go func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				batch := make([]storage.ArchiveMessage, 50)
				for j := range batch {
					batch[j] = storage.ArchiveMessage{Owner: "a@example.com", With: "b@example.net",
						Stanza: fmt.Appendf(nil, "<message xmlns='jabber:client'><body>%d %d %d %s</body></message>", g, i, j, big)}
				}
				if err := s.Archive().Append(ctx, batch); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	total, restarts, prev := 0, 0, 0
	for restarts < 3 {
		select {
		case r := <-runs:
			if r.log >= 4*catchUpFrames {
				t.Errorf("the WAL reached %d frames", r.log)
			}
			if r.log < prev {
				restarts++
				total += prev
			}
			prev = r.log
		case <-guard:
			t.Fatalf("the WAL restarted %d times in a minute", restarts)
		}
	}
	close(stop)
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d WAL restarts, %d frames before them", restarts, total)

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
