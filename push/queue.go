package push

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
)

// lanes runs jobs one at a time per key, in the order they were queued:
// one lane per account (reading its registrations and counting) and one
// per device (publishing), so a device is told of its messages and calls
// in the order they came. A lane has a goroutine only while it has work.
//
// A lane holds at most bound waiting jobs. Past that a new job is refused:
// counted in over, and logged once until the lane drained. Nothing else is
// ever dropped.
type lanes struct {
	what  string // "account" or "device", for the log
	log   *slog.Logger
	bound int
	over  *atomic.Uint64

	mu      sync.Mutex
	m       map[string]*lane // key → lane with a running worker
	changed chan struct{}    // closed (and replaced) when a lane ends
	closed  bool
}

type lane struct {
	jobs   []func()
	warned bool // the overflow was logged since the lane was last empty
}

func newLanes(what string, log *slog.Logger, bound int, over *atomic.Uint64) *lanes {
	return &lanes{what: what, log: log, bound: max(bound, 1), over: over, m: map[string]*lane{}, changed: make(chan struct{})}
}

// add queues f on the lane of key. It reports false when f was refused
// (the lane is full, or the lanes were closed).
func (l *lanes) add(key string, f func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	ln := l.m[key]
	if ln == nil {
		ln = &lane{}
		l.m[key] = ln
		go l.run(key, ln)
	}
	if len(ln.jobs) >= l.bound {
		l.over.Add(1)
		if !ln.warned {
			ln.warned = true
			l.log.Warn("push: notification queue full; further notifications are refused until it drains",
				"queue", l.what, "key", key, "max-queue", l.bound)
		}
		return false
	}
	ln.jobs = append(ln.jobs, f)
	return true
}

func (l *lanes) run(key string, ln *lane) {
	for {
		l.mu.Lock()
		if len(ln.jobs) == 0 || l.closed {
			delete(l.m, key)
			close(l.changed)
			l.changed = make(chan struct{})
			l.mu.Unlock()
			return
		}
		f := ln.jobs[0]
		ln.jobs[0] = nil
		ln.jobs = ln.jobs[1:]
		if len(ln.jobs) == 0 {
			ln.warned = false
		}
		l.mu.Unlock()
		f()
	}
}

// close stops the lanes: waiting jobs are dropped, running ones finish.
func (l *lanes) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
}

// wait returns when no lane has work (or ctx ends).
func (l *lanes) wait(ctx context.Context) error {
	for {
		l.mu.Lock()
		n, ch := len(l.m), l.changed
		l.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
