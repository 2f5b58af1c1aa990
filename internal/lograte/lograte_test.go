package lograte

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTest(window time.Duration, burst int) (*slog.Logger, *bytes.Buffer, *clock) {
	var buf bytes.Buffer
	h := NewHandler(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), window, burst)
	c := &clock{time.Unix(1_000_000, 0)}
	h.lim.now = c.now
	return slog.New(h), &buf, c
}

func lines(buf *bytes.Buffer) []string {
	s := strings.TrimSpace(buf.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestBurstThenSuppressedCount(t *testing.T) {
	log, buf, c := newTest(10*time.Second, 3)
	for i := range 100 {
		log.Info("refused", "client", fmt.Sprint("192.0.2.", i))
	}
	if got := lines(buf); len(got) != 3 {
		t.Fatalf("%d lines in the first window, want 3:\n%s", len(got), buf)
	}
	// Another kind has its own budget.
	log.Warn("refused")
	log.Info("other")
	if got := lines(buf); len(got) != 5 {
		t.Fatalf("other kinds: %d lines", len(got))
	}
	// The next window: the first line says how many were dropped.
	c.t = c.t.Add(10 * time.Second)
	buf.Reset()
	log.Info("refused", "client", "192.0.2.200")
	got := lines(buf)
	if len(got) != 1 || !strings.Contains(got[0], "suppressed=97") || !strings.Contains(got[0], "192.0.2.200") {
		t.Fatalf("first line of the next window: %q", got)
	}
	log.Info("refused")
	if got := lines(buf); len(got) != 2 || strings.Contains(got[1], "suppressed") {
		t.Fatalf("second line of the window: %q", got)
	}
}

func TestDebugNeverDropped(t *testing.T) {
	log, buf, _ := newTest(time.Minute, 1)
	for range 50 {
		log.Debug("allocation")
	}
	if n := len(lines(buf)); n != 50 {
		t.Fatalf("%d debug lines, want 50", n)
	}
}

func TestDerivedLoggersShareTheBudget(t *testing.T) {
	log, buf, _ := newTest(time.Minute, 2)
	a := log.With("module", "a")
	b := log.WithGroup("g").With("x", 1)
	a.Info("refused")
	b.Info("refused")
	log.Info("refused")
	if n := len(lines(buf)); n != 2 {
		t.Fatalf("%d lines, want 2", n)
	}
	if l := Limit(log, time.Minute, 5); l != log {
		t.Error("Limit wrapped a limited logger again")
	}
}

func TestKindsBounded(t *testing.T) {
	log, buf, _ := newTest(time.Minute, 1)
	h := log.Handler().(*Handler)
	for i := range 3 * maxKinds {
		log.Info(fmt.Sprint("formatted message ", i))
	}
	if n := len(h.lim.kinds); n > maxKinds+1 {
		t.Fatalf("%d kinds remembered", n)
	}
	if n := len(lines(buf)); n > maxKinds+1 {
		t.Fatalf("%d lines for %d distinct messages", n, 3*maxKinds)
	}
}
