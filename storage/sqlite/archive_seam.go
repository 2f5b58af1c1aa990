package sqlite

import "github.com/xmppd/xmppd/storage"

// Test seams of the archive's write queue, for tests of backpressure in
// other packages (the mam module's). They are not for production use.

// HoldArchiveCommits stops the archive writer of s (a *Store's Archive()) from starting another
// commit until release is called: Enqueue keeps queueing, up to the bound
// of SetQueueLimit, and then blocks. A commit already running finishes.
func HoldArchiveCommits(s storage.Archive) (release func()) {
	a := s.(*archive)
	h := make(chan struct{})
	a.mu.Lock()
	a.held = h
	a.mu.Unlock()
	return func() {
		a.mu.Lock()
		if a.held == h {
			a.held = nil
		}
		a.mu.Unlock()
		close(h)
	}
}

// ArchiveQueueFull returns a channel that is closed the next time an
// Enqueue on s waits for room in the queue.
func ArchiveQueueFull(s storage.Archive) <-chan struct{} {
	a := s.(*archive)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.full == nil {
		a.full = make(chan struct{})
	}
	return a.full
}

// ArchiveQueued returns the messages and stanza bytes Enqueue took on s
// that no commit has finished with yet.
func ArchiveQueued(s storage.Archive) (msgs int, bytes int64) {
	a := s.(*archive)
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pendMsgs, a.pendBytes
}

// ArchiveReadWaits returns a channel that is closed the next time a read
// on s (Get, Query, FindByMessageID, Retract) waits for its owner's
// queued writes to commit.
func ArchiveReadWaits(s storage.Archive) <-chan struct{} {
	a := s.(*archive)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.readWaits == nil {
		a.readWaits = make(chan struct{})
	}
	return a.readWaits
}

// ArchiveSweepQueued returns a channel that is closed the next time a
// DeleteBefore on s queues its sweep for the archive writer.
func ArchiveSweepQueued(s storage.Archive) <-chan struct{} {
	a := s.(*archive)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sweepQueued == nil {
		a.sweepQueued = make(chan struct{})
	}
	return a.sweepQueued
}
