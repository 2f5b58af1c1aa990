package main

import (
	"encoding/binary"
	"net"

	"golang.org/x/sys/unix"
)

// timestamps asks the kernel to stamp each datagram c receives
// (SO_TIMESTAMPNS): latency is then measured to the moment the packet
// reached the receiving socket, apart from how late the generator's own
// goroutines get to read it.
func timestamps(c *net.UDPConn) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	})
}

// recvStamped reads c's datagrams with their kernel receive time (ns since
// the Unix epoch, 0 when absent).
func recvStamped(c *net.UDPConn) func([]byte) (int, int64, error) {
	oob := make([]byte, 64)
	return func(p []byte) (int, int64, error) {
		n, oobn, _, _, err := c.ReadMsgUDPAddrPort(p, oob)
		if err != nil {
			return n, 0, err
		}
		// One control message: struct cmsghdr (len, level, type), then a
		// struct timespec.
		h := unix.SizeofCmsghdr
		if oobn < h+16 || int32(binary.NativeEndian.Uint32(oob[8:])) != unix.SOL_SOCKET ||
			int32(binary.NativeEndian.Uint32(oob[12:])) != unix.SCM_TIMESTAMPNS {
			return n, 0, nil
		}
		sec := int64(binary.NativeEndian.Uint64(oob[h:]))
		nsec := int64(binary.NativeEndian.Uint64(oob[h+8:]))
		return n, sec*1e9 + nsec, nil
	}
}
