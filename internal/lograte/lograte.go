// Package lograte keeps logs from being a flood vector: a slog.Handler
// wrapper that lets through at most a few records of one kind per time
// window and tells, in the next record of that kind it lets through, how
// many it dropped.
//
// Use it on the loggers of code that logs what an unauthenticated peer can
// make happen again and again (a refused TURN packet, a failed login, a
// refused HTTP request): without it a retransmitting client with a wrong
// password writes dozens of lines a second.
//
//	log = lograte.Limit(log, lograte.Window, lograte.Burst)
//
// A record's kind is its level and message (the constant text at the call
// site), not its attributes: a thousand addresses failing the same way are
// one kind, so a flood from many addresses is bounded too. Debug records
// are never dropped: an operator who turns debug logging on wants them all.
// Counters (metrics, Stats) are where every event is counted; the log is a
// sample with the count of what it left out.
package lograte

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Defaults: 10 records of one kind per 10 seconds. A human reading the log
// sees that something repeats and how often; a flood costs one line a
// second at most per kind.
const (
	Window = 10 * time.Second
	Burst  = 10
)

// maxKinds bounds the memory of the limiter when messages are not constant
// (formatted text): beyond it, records of new kinds share one budget.
const maxKinds = 1024

// SuppressedKey is the attribute that carries the number of records of the
// same kind dropped since the last one let through.
const SuppressedKey = "suppressed"

// Limit returns a logger writing through log's handler with the limit: at
// most burst records of one kind per window. log nil means slog.Default().
func Limit(log *slog.Logger, window time.Duration, burst int) *slog.Logger {
	if log == nil {
		log = slog.Default()
	}
	if _, ok := log.Handler().(*Handler); ok {
		return log // already limited
	}
	return slog.New(NewHandler(log.Handler(), window, burst))
}

// Handler is the limiting slog.Handler. Handlers derived with WithAttrs and
// WithGroup share their parent's budget.
type Handler struct {
	next slog.Handler
	lim  *limiter
}

// NewHandler wraps next. window <= 0 and burst <= 0 mean the defaults.
func NewHandler(next slog.Handler, window time.Duration, burst int) *Handler {
	if window <= 0 {
		window = Window
	}
	if burst <= 0 {
		burst = Burst
	}
	return &Handler{next: next, lim: &limiter{window: window, burst: burst, now: time.Now, kinds: map[kind]*budget{}}}
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// Handle implements slog.Handler: it drops the record when its kind is over
// budget, and adds suppressed=N to the first one let through after drops.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelInfo {
		return h.next.Handle(ctx, r)
	}
	pass, dropped := h.lim.allow(kind{r.Level, r.Message})
	if !pass {
		return nil
	}
	if dropped > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Uint64(SuppressedKey, dropped))
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &Handler{next: h.next.WithAttrs(as), lim: h.lim}
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), lim: h.lim}
}

type kind struct {
	level slog.Level
	msg   string
}

// budget is one kind's fixed window.
type budget struct {
	start   time.Time
	n       int    // let through in this window
	dropped uint64 // dropped since the last one let through
}

type limiter struct {
	window time.Duration
	burst  int
	now    func() time.Time

	mu    sync.Mutex
	kinds map[kind]*budget
}

// allow reports whether a record of kind k may pass, and how many of its
// kind were dropped before it.
func (l *limiter) allow(k kind) (bool, uint64) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.kinds[k]
	if b == nil {
		if len(l.kinds) >= maxKinds {
			l.sweep(now)
		}
		if len(l.kinds) >= maxKinds {
			k = kind{k.level, "(other messages)"}
			b = l.kinds[k]
		}
		if b == nil {
			b = &budget{start: now}
			l.kinds[k] = b
		}
	}
	if now.Sub(b.start) >= l.window {
		b.start, b.n = now, 0
	}
	if b.n >= l.burst {
		b.dropped++
		return false, 0
	}
	b.n++
	d := b.dropped
	b.dropped = 0
	return true, d
}

// sweep forgets kinds whose window ended with nothing dropped.
func (l *limiter) sweep(now time.Time) {
	for k, b := range l.kinds {
		if now.Sub(b.start) >= l.window && b.dropped == 0 {
			delete(l.kinds, k)
		}
	}
}
