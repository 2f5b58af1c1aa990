// Package accept keeps a listener serving through temporary Accept errors.
//
// When a process runs out of file descriptors (EMFILE, ENFILE) or kernel
// buffers, or a connection is aborted before it is accepted, Accept fails
// but the listener still works: connections wait in the kernel's backlog
// until descriptors are free again. A server that treats such an error as
// fatal stops serving everyone. Like net/http's Server.Serve, Retrying
// waits and tries again, 5 ms doubling up to 1 s, and logs at most once a
// second while it does.
package accept

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// Backoff bounds: the first wait after a failed Accept, and the longest.
const (
	FirstDelay = 5 * time.Millisecond
	MaxDelay   = time.Second
	logEvery   = time.Second
)

// Retrying returns l with an Accept that retries temporary errors and
// returns only those that end the listener (net.ErrClosed and the like).
func Retrying(l net.Listener, log *slog.Logger) net.Listener {
	if log == nil {
		log = slog.Default()
	}
	return &listener{Listener: l, log: log}
}

type listener struct {
	net.Listener
	log *slog.Logger

	mu      sync.Mutex
	lastLog time.Time
	failed  uint64 // failures since the last log line
}

func (l *listener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err == nil || !Temporary(err) {
			return c, err
		}
		delay = min(max(2*delay, FirstDelay), MaxDelay)
		l.mu.Lock()
		l.failed++
		now := time.Now()
		if now.Sub(l.lastLog) >= logEvery {
			l.log.Warn("accept failed; retrying", "address", l.Addr().String(), "err", err,
				"failures", l.failed, "retry-in", delay)
			l.lastLog, l.failed = now, 0
		}
		l.mu.Unlock()
		time.Sleep(delay)
	}
}

// Temporary reports whether an Accept error leaves the listener usable, so
// that a later Accept may succeed.
func Temporary(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN, syscall.EPROTO, syscall.EPERM} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	//lint:ignore SA1019 net/http's Serve still relies on Temporary for accept errors.
	return errors.As(err, &ne) && (ne.Timeout() || ne.Temporary())
}
