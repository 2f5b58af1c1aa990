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
// SQLite's own checkpoint runs inside the COMMIT that takes the WAL past
// wal_autocheckpoint frames, on the one writer connection: it copies every
// frame not yet in the database file and fsyncs both files before COMMIT
// returns. Under archive load that was tens of MiB copied and synced while
// every Enqueue waited behind the writer (a tail merge alone writes one
// index leaf per owner per index: about 40 MiB for 16,384 rows of 5,000
// owners); on a disk shared with other work an fsync of that much took
// hundreds of milliseconds, long enough to fill the archive queue and stop
// every sender's socket (mam/README.md, "Backpressure").
//
// So once the archive is in use, the checkpointer copies the WAL into the
// database file on a connection of its own (PASSIVE checkpoints never block
// the writer or the readers), at most every checkpointEvery after a commit
// and every checkpointIdle anyway, and the writer connection's automatic
// checkpoint is raised to a safety net (writerSafetyCheckpointPages) that a working checkpointer never lets
// the WAL reach. The WAL file is rewound to its start when a write
// transaction begins with every frame copied; under continuous load that
// moment has to be made: before a tail merge (the largest commit) the
// archive writer runs one more checkpoint on the checkpointer's connection
// and waits for it (catchUp), which only has the last few frames to copy
// since the background ones did the rest, and the merge then starts a new
// WAL. Durability is unchanged: a commit is in the WAL before COMMIT
// returns, checkpointed or not.
type checkpointer struct {
	db   *sql.DB
	file string // the database file
	// frames is the WAL's length in frames at the last checkpoint.
	frames atomic.Int64
	kick   chan struct{} // capacity 1: a checkpoint is wanted
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// checkpointIdle is how often the checkpointer runs without being asked:
// writes other than the archive's (rosters, offline messages) go through
// the same writer connection, whose own checkpoint is now only a safety
// net. A checkpoint with nothing to copy costs a few system calls.
const checkpointIdle = time.Second

// writerSafetyCheckpointPages is the writer connection's
// wal_autocheckpoint while the checkpointer runs (1 GiB of WAL at 4 KiB
// pages): only reached if the checkpointer cannot keep up or fails.
const writerSafetyCheckpointPages = 262144

// catchUpFrames: the writer makes the WAL restart (catchUp) once it holds
// this many frames.
const catchUpFrames = writerCheckpointPages

// checkpointEvery paces the background checkpoints: at most one per
// interval, so frames rewritten by consecutive commits (the tail's last
// pages) are copied once per interval rather than once per commit.
const checkpointEvery = 500 * time.Millisecond

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
	idle := time.NewTicker(checkpointIdle)
	defer idle.Stop()
	for {
		select {
		case <-c.kick:
		case <-idle.C: // other writes (rosters, offline messages) kick nothing
		case <-c.stop:
			return
		}
		// A failed checkpoint (SQLITE_BUSY against another process's
		// checkpoint) is left to the next one or to the writer's own.
		c.checkpoint()
		t.Reset(checkpointEvery)
		select {
		case <-t.C:
		case <-c.stop:
			return
		}
	}
}

// checkpoint runs one PASSIVE checkpoint on the checkpointer's connection
// (waiting for one already running there to end first).
func (c *checkpointer) checkpoint() {
	var busy, log, done int
	if err := c.db.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &done); err != nil {
		return
	}
	c.frames.Store(int64(log))
	if f := checkpointRan.Load(); f != nil {
		(*f)(c.file, log, done)
	}
}

// catchUp copies what the background checkpoints have not yet copied, when
// the WAL is long enough to be worth restarting, so that the next write
// transaction starts the WAL anew. The archive writer calls it between its
// commits.
func (c *checkpointer) catchUp() {
	if c == nil || c.frames.Load() < catchUpFrames {
		return
	}
	c.checkpoint()
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
