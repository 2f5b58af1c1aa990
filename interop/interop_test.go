package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Timeouts. The whole suite runs its tests in parallel and stays well under
// two minutes; these only bound a hung client.
const (
	procTimeout = 60 * time.Second // lifetime of one client process
	waitEvent   = 15 * time.Second // one expected event
)

// required reports whether a missing client is a failure (CI) rather than a
// reason to skip.
func required() bool { return os.Getenv("XMPPD_INTEROP") == "1" }

// howToRun is how to get every third-party client and run these tests.
const howToRun = "`.ci/run` installs every client and runs the suite with XMPPD_INTEROP=1; " +
	"by hand: apt-get install python3-slixmpp go-sendxmpp coturn, (cd interop/testdata/xmppjs && npm ci) with Node >= 20.10, " +
	"then XMPPD_INTEROP=1 go test -race ./interop/ ./jingle/turn/"

// missing skips the test, or fails it under XMPPD_INTEROP=1. The message
// names the missing client and how to install it (format, args), and how
// to run the interop tests.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := "interop client missing, test not run: " + fmt.Sprintf(format, args...)
	if required() {
		t.Fatal(msg + " (XMPPD_INTEROP=1 requires every client; " + howToRun + ")")
	}
	t.Skip(msg + " (" + howToRun + ")")
}

// event is one JSON line printed by a client script; "ev" names it.
type event map[string]any

func (e event) str(k string) string {
	switch v := e[k].(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

func (e event) is(name string) bool { return e.str("ev") == name }

func (e event) obj(k string) event {
	m, _ := e[k].(map[string]any)
	return event(m)
}

func (e event) String() string {
	b, _ := json.Marshal(map[string]any(e))
	return string(b)
}

// proc is a running client process that prints events as JSON lines on
// stdout and reads commands as JSON lines on stdin.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stdin  io.WriteCloser
	events chan event
	exited chan struct{} // closed when the process has been waited for

	pending []event // received, not yet matched by expect
	seen    []event // everything received, in order

	logMu      sync.Mutex
	transcript bytes.Buffer // stdout and stderr, for failure reports
	waitErr    error
	tags       int

	// selfPresence: the client sends initial presence after login, so
	// online() waits for the server to reflect it (RFC 6121 §4.2.2).
	selfPresence bool
}

type logWriter struct {
	p      *proc
	prefix string
}

func (w logWriter) Write(b []byte) (int, error) {
	w.p.logMu.Lock()
	defer w.p.logMu.Unlock()
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line != "" {
			w.p.transcript.WriteString(w.prefix + line)
		}
	}
	return len(b), nil
}

// startProc runs argv in dir with extra environment variables. The process
// is stopped (stdin closed, then killed) when the test ends; its transcript
// is logged if the test failed (always with XMPPD_INTEROP_VERBOSE=1).
func startProc(t *testing.T, name, dir string, env []string, argv ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	p := &proc{t: t, name: name, cmd: cmd, cancel: cancel, events: make(chan event, 4096), exited: make(chan struct{})}
	cmd.Stderr = logWriter{p, name + " stderr: "}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting %s (%s): %v", name, strings.Join(argv, " "), err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Text()
			logWriter{p, name + ": "}.Write([]byte(line + "\n"))
			var ev event
			if err := json.Unmarshal([]byte(line), &ev); err != nil || ev["ev"] == nil {
				ev = event{"ev": "_text", "line": line}
			}
			p.events <- ev
		}
		p.waitErr = cmd.Wait()
		cancel()
		close(p.events)
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop(10 * time.Second)
		if t.Failed() || os.Getenv("XMPPD_INTEROP_VERBOSE") != "" {
			p.logMu.Lock()
			t.Logf("transcript of %s (exit: %v):\n%s", name, p.waitErr, p.transcript.String())
			p.logMu.Unlock()
		}
	})
	return p
}

// stop closes stdin (the scripts then log out and exit) and kills the
// process if it has not exited within d.
func (p *proc) stop(d time.Duration) {
	_ = p.stdin.Close()
	select {
	case <-p.exited:
	case <-time.After(d):
		p.cancel()
		<-p.exited
	}
}

// send writes one command.
func (p *proc) send(cmd map[string]any) {
	p.t.Helper()
	b, err := json.Marshal(cmd)
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		p.t.Fatalf("%s: writing command %s: %v", p.name, b, err)
	}
}

// do sends a command and waits for the script to report it done.
func (p *proc) do(cmd map[string]any) {
	p.t.Helper()
	p.tags++
	tag := p.name + "-" + strconv.Itoa(p.tags)
	cmd["tag"] = tag
	p.send(cmd)
	p.expect("done "+tag, func(e event) bool { return e.is("done") && e.str("tag") == tag })
}

// next returns the next event (pending ones first). closed is true when
// the process has ended and printed everything; ok is false when nothing
// came within d or the process ended.
func (p *proc) next(d time.Duration) (e event, ok, closed bool) {
	if len(p.pending) > 0 {
		e := p.pending[0]
		p.pending = p.pending[1:]
		return e, true, false
	}
	select {
	case e, ok := <-p.events:
		if !ok {
			<-p.exited
			return nil, false, true
		}
		p.seen = append(p.seen, e)
		return e, true, false
	case <-time.After(d):
		return nil, false, false
	}
}

// expectWithin returns the first event that match accepts; the events it
// skips stay pending for later calls. It fails the test when nothing matched
// within d, or when the script reports a broken command or a fatal error.
func (p *proc) expectWithin(d time.Duration, what string, match func(event) bool) event {
	p.t.Helper()
	deadline := time.Now().Add(d)
	var skipped []event
	defer func() { p.pending = append(skipped, p.pending...) }()
	for {
		left := time.Until(deadline)
		if left < 0 {
			left = 0
		}
		e, ok, closed := p.next(left)
		if !ok {
			if closed {
				p.t.Fatalf("%s: exited (%v) while waiting for %s", p.name, p.waitErr, what)
			}
			p.t.Fatalf("%s: no %s within %v", p.name, what, d)
		}
		if e.is("command_error") || e.is("fatal") {
			p.t.Fatalf("%s: %v (while waiting for %s)", p.name, e, what)
		}
		if match(e) {
			return e
		}
		skipped = append(skipped, e)
	}
}

func (p *proc) expect(what string, match func(event) bool) event {
	p.t.Helper()
	return p.expectWithin(waitEvent, what, match)
}

// expectNone fails if an event that match accepts arrives within d (or
// is already pending).
func (p *proc) expectNone(d time.Duration, what string, match func(event) bool) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	var skipped []event
	defer func() { p.pending = append(skipped, p.pending...) }()
	for {
		left := time.Until(deadline)
		if left <= 0 && len(p.pending) == 0 {
			return
		}
		e, ok, _ := p.next(max(left, 0))
		if !ok {
			return
		}
		if match(e) {
			p.t.Fatalf("%s: unexpected %s: %v", p.name, what, e)
		}
		skipped = append(skipped, e)
	}
}

// wait waits for the process to exit by itself and returns every event it
// printed.
func (p *proc) wait(d time.Duration) []event {
	p.t.Helper()
	for {
		_, ok, closed := p.next(d)
		if closed {
			return p.seen
		}
		if !ok {
			p.t.Fatalf("%s: still running after %v", p.name, d)
		}
	}
}

// hasEvent reports whether any event so far matches.
func hasEvent(evs []event, match func(event) bool) bool {
	for _, e := range evs {
		if match(e) {
			return true
		}
	}
	return false
}

func evNamed(name string) func(event) bool { return func(e event) bool { return e.is(name) } }

// probe runs a short command and returns its combined output.
func probe(d time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
