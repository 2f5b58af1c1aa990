package sqlite

import (
	"context"
	"database/sql"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Checkpoints in the background.
//
// The writer connection checkpoints inside the COMMIT that takes the WAL
// past writerCheckpointPages: it copies every frame not yet in the
// database file and fsyncs both files before COMMIT returns. Under archive
// load that is 16 MiB copied and synced while every Enqueue waits behind the
// one writer; on a disk shared with other work an fsync of that much took
// hundreds of milliseconds, long enough to fill the archive queue and stop
// every sender's socket (mam/README.md, "Backpressure").
//
// The checkpointer copies the WAL into the database file on a connection of
// its own (a PASSIVE checkpoint: it never blocks the writer or the readers),
// shortly after archive commits, so that when the writer's own checkpoint
// comes due only the last frames are left to copy and sync, and that
// checkpoint (which resets the WAL to its start) is short. Durability is
// unchanged: a commit is in the WAL before COMMIT returns either way.
type checkpointer struct {
	db   *sql.DB
	file string // the database file
	kick chan struct{} // capacity 1: a checkpoint is wanted
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// checkpointEvery paces the background checkpoints: at most one per
// interval, so frames rewritten by consecutive commits (the tail's last
// pages) are copied once per interval rather than once per commit.
const checkpointEvery = 50 * time.Millisecond

// startCheckpointer opens the checkpointer's connection on w's database
// file. A failure leaves the writer's own checkpoints to do the work.
func startCheckpointer(ctx context.Context, w *sql.DB) (*checkpointer, error) {
	var seq int
	var name, file string
	if err := w.QueryRowContext(ctx, "PRAGMA database_list").Scan(&seq, &name, &file); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite3", "file:"+escapePath(file)+"?_busy_timeout="+strconv.FormatInt(BusyTimeout.Milliseconds(), 10))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	c := &checkpointer{db: db, file: file, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c, nil
}

// want asks for a checkpoint soon; it never blocks.
func (c *checkpointer) want() {
	if c == nil {
		return
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-c.kick:
		case <-c.stop:
			return
		}
		// A failed checkpoint (SQLITE_BUSY against another process's
		// checkpoint) is left to the next one or to the writer's own.
		var busy, log, done int
		if err := c.db.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &done); err == nil {
			if f := checkpointRan.Load(); f != nil {
				(*f)(c.file, log, done)
			}
		}
		t.Reset(checkpointEvery)
		select {
		case <-t.C:
		case <-c.stop:
			return
		}
	}
}

// close stops the checkpointer and closes its connection.
func (c *checkpointer) close() {
	if c == nil {
		return
	}
	c.once.Do(func() {
		close(c.stop)
		<-c.done
		c.db.Close()
	})
}

// checkpointRan, when a test sets it, is called after each background
// checkpoint with the database file, the frames in the WAL and how many of
// them are now in the database file.
var checkpointRan atomic.Pointer[func(file string, log, done int)]
