//go:build unix

package c2s

import (
	"crypto/tls"
	"syscall"
)

// waitReadable waits until the link's socket has bytes (or is closed or
// failed) with the fewest frames on the stack, so that the fresh goroutine
// of an idle link keeps the smallest stack; reading then goes on as usual.
// Nothing is buffered above the socket at this point: the read that timed
// out found the TLS and wire buffers without a complete element.
func (r *reading) waitReadable() {
	nc := r.tcp.conn
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	// Peek first, as a read would: bytes that arrived since the read timed
	// out may have been signalled already, and the poller (edge-triggered)
	// would not signal them again.
	_ = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return n > 0 || err != syscall.EAGAIN
	})
}
