package turn

import (
	"encoding/binary"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchSize is how many datagrams one recvmmsg or sendmmsg moves at most.
const batchSize = 32

// mmsghdr is struct mmsghdr (recvmmsg(2), sendmmsg(2)).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// batch holds datagrams for one recvmmsg or sendmmsg on a UDP socket.
type batch struct {
	rc    syscall.RawConn
	v6    bool // the socket is AF_INET6 (IPv4 peers as ::ffff:a.b.c.d)
	hdrs  [batchSize]mmsghdr
	iovs  [batchSize]unix.Iovec
	names [batchSize]unix.RawSockaddrInet6 // large enough for either family
	bufs  [batchSize][]byte
	n     int // datagrams held

	// The system calls, as method values made once: a closure per call
	// would allocate. r and errno are their results, sent the flush's
	// progress.
	readFn, writeFn func(fd uintptr) bool
	r               int
	errno           syscall.Errno
	sent            int
}

func newBatch(uc *net.UDPConn, bufSize int) *batch {
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil
	}
	b := &batch{rc: rc}
	b.readFn, b.writeFn = b.read, b.write
	if la, ok := uc.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() == nil {
		b.v6 = true
	} else if ok {
		// A socket bound to 0.0.0.0 or to an IPv4 address may still be
		// AF_INET6 (dual stack): ask the kernel.
		_ = rc.Control(func(fd uintptr) {
			if sa, err := unix.Getsockname(int(fd)); err == nil {
				_, b.v6 = sa.(*unix.SockaddrInet6)
			}
		})
	}
	for i := range b.bufs {
		b.bufs[i] = make([]byte, bufSize)
		b.iovs[i].Base = &b.bufs[i][0]
		b.hdrs[i].hdr.Iov = &b.iovs[i]
		b.hdrs[i].hdr.SetIovlen(1)
		b.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
	}
	return b
}

// recv reads up to batchSize datagrams, waiting for the first.
func (b *batch) recv() error {
	for i := range b.hdrs {
		b.iovs[i].SetLen(len(b.bufs[i]))
		b.hdrs[i].hdr.Namelen = unix.SizeofSockaddrInet6
		b.hdrs[i].hdr.Flags = 0
	}
	if err := b.rc.Read(b.readFn); err != nil {
		return err
	}
	if b.errno != 0 {
		return b.errno
	}
	b.n = b.r
	return nil
}

func (b *batch) read(fd uintptr) bool {
	r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), batchSize, unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	b.r, b.errno = int(r), e
	return true
}

func (b *batch) write(fd uintptr) bool {
	r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[b.sent])), uintptr(b.n-b.sent), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	b.r, b.errno = int(r), e
	return true
}

// datagram returns the i-th datagram read and its source.
func (b *batch) datagram(i int) ([]byte, netip.AddrPort) {
	h := &b.hdrs[i]
	p := b.bufs[i][:h.len]
	if h.hdr.Flags&unix.MSG_TRUNC != 0 {
		p = b.bufs[i] // as a truncating read would: pion drops it
	}
	raw := &b.names[i]
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&raw.Port))[:])
	switch raw.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(raw))
		return p, netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), port)
	case unix.AF_INET6:
		return p, netip.AddrPortFrom(netip.AddrFrom16(raw.Addr).Unmap(), port)
	}
	return p, netip.AddrPort{}
}

// add queues p for to, sending the batch first when it is full.
func (b *batch) add(p []byte, to netip.AddrPort) {
	if b.n == batchSize {
		b.flush()
	}
	i := b.n
	buf := append(b.bufs[i][:0], p...)
	b.bufs[i] = buf[:cap(buf)]
	b.iovs[i].Base = &b.bufs[i][0]
	b.iovs[i].SetLen(len(p))
	raw := &b.names[i]
	*raw = unix.RawSockaddrInet6{}
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&raw.Port))[:], to.Port())
	if b.v6 {
		raw.Family = unix.AF_INET6
		raw.Addr = to.Addr().As16()
		b.hdrs[i].hdr.Namelen = unix.SizeofSockaddrInet6
	} else {
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(raw))
		sa.Family = unix.AF_INET
		sa.Addr = to.Addr().Unmap().As4()
		b.hdrs[i].hdr.Namelen = unix.SizeofSockaddrInet4
	}
	b.n++
}

// flush sends the queued datagrams. A datagram the kernel refuses (an
// unreachable destination) is dropped, as a lone sendto's would be.
func (b *batch) flush() {
	for b.sent = 0; b.sent < b.n; {
		if err := b.rc.Write(b.writeFn); err != nil {
			break // closed
		}
		if b.errno != 0 || b.r <= 0 {
			b.sent++ // the first datagram failed: skip it
			continue
		}
		b.sent += b.r
	}
	b.n = 0
}
