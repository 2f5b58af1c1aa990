package turn

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// sockBuffers returns the socket's SO_RCVBUF and SO_SNDBUF.
func sockBuffers(t *testing.T, uc *net.UDPConn) (rcv, snd int) {
	t.Helper()
	rc, err := uc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var rerr, serr error
	if err := rc.Control(func(fd uintptr) {
		rcv, rerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		snd, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
	}); err != nil || rerr != nil || serr != nil {
		t.Fatal(err, rerr, serr)
	}
	return rcv, snd
}
