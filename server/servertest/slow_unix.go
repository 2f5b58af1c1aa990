//go:build unix

package servertest

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/xmppd/xmppd/client"
)

// stallConn is a TCP connection whose reading can be stopped: a Read after
// Stall blocks until the connection is closed.
type stallConn struct {
	net.Conn
	stalled atomic.Bool
	closed  chan struct{}
	once    sync.Once
}

func (c *stallConn) Read(p []byte) (int, error) {
	if c.stalled.Load() {
		<-c.closed
		return 0, net.ErrClosed
	}
	return c.Conn.Read(p)
}

func (c *stallConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// LoginSlow logs local in over STARTTLS on a socket with a tiny receive
// buffer and returns the client and a function that makes it stop reading:
// from then on, what the server writes piles up in the kernel buffers and
// the server's writes block once they are full (a client on a dead or
// saturated network). maxStanza is the largest element it accepts before
// that (0: the client's default).
func (e *Env) LoginSlow(local, password, resource string, maxStanza int) (*client.Client, func()) {
	e.T.Helper()
	var sc *stallConn
	cfg := e.ClientConfig(local, password, resource)
	cfg.MaxStanza = maxStanza
	cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			}); err != nil {
				return err
			}
			return serr
		}}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		sc = &stallConn{Conn: c, closed: make(chan struct{})}
		return sc, nil
	}
	c := e.LoginWith(cfg)
	return c, func() { sc.stalled.Store(true) }
}
