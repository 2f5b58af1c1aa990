package c2s

import (
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// An idle link waits without a goroutine: its socket is added (one-shot)
// to an epoll instance shared by the process, and a goroutine is started
// for it only when the socket becomes readable, is hung up or is closed by
// the server. The epoll descriptor itself is watched by the runtime's
// poller, so no thread blocks on it. This is how the smallest per-link
// memory is reached in Go (the approach of gobwas/ws with netpoll, and of
// gnet and nbio): a goroutine costs at least a 2 KiB stack, and at a
// hundred thousand idle links the stack spans they leave half-used
// (freed login stacks between them) cost as much again.
//
// Nothing is lost while a link waits: what the kernel receives stays in
// the socket buffer, a partial TLS record in the tls.Conn and a partial
// element in the wire.Reader, and reading goes on where it was.

var (
	idleOnce sync.Once
	idleEp   atomic.Pointer[idlePoller] // nil until started, or where epoll is not available
)

type idlePoller struct {
	fd   int
	file *os.File // fd, registered with the runtime poller
	// parkMu guards parked and every tcpTransport's parked and closed.
	parkMu sync.Mutex
	parked map[int32]*parkedLink
	seq    uint32
	dead   bool // the poller failed: links wait in goroutines
}

// parkedLink is a link whose reading waits for its socket.
type parkedLink struct {
	r   *reading
	t   *tcpTransport
	fd  int32
	seq uint32 // told apart from an earlier link with the same descriptor
}

// parkState is what tcpTransport keeps for the idle poller.
type parkState struct {
	parked *parkedLink
	closed bool
}

func idlePollerStart() *idlePoller {
	idleOnce.Do(func() {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return
		}
		if err := syscall.SetNonblock(fd, true); err != nil {
			syscall.Close(fd)
			return
		}
		p := &idlePoller{fd: fd, file: os.NewFile(uintptr(fd), "c2s-idle-epoll"), parked: make(map[int32]*parkedLink)}
		rc, err := p.file.SyscallConn()
		if err != nil {
			p.file.Close()
			return
		}
		idleEp.Store(p)
		go p.loop(rc)
	})
	return idleEp.Load()
}

// park hands r's idle link to the poller. It reports false when the link
// cannot wait there (not a socket, closed, or no epoll): the caller then
// waits in a goroutine.
func (r *reading) park() bool {
	p := idlePollerStart()
	if p == nil {
		return false
	}
	t := r.tcp
	nc := t.conn
	if t.tls != nil {
		nc = t.tls.NetConn()
	}
	sc, ok := nc.(interface {
		syscall.Conn
		net.Conn
	})
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	done := false
	// Control holds the descriptor open while the callback runs; a close
	// that races with it waits, and finds the link parked (or sees closed
	// here first).
	cerr := rc.Control(func(fd uintptr) {
		p.parkMu.Lock()
		defer p.parkMu.Unlock()
		if t.park.closed || p.dead {
			return
		}
		p.seq++
		pl := &parkedLink{r: r, t: t, fd: int32(fd), seq: p.seq}
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: pl.fd, Pad: int32(pl.seq)}
		if syscall.EpollCtl(p.fd, syscall.EPOLL_CTL_ADD, int(fd), &ev) != nil {
			return
		}
		p.parked[pl.fd] = pl
		t.park.parked = pl
		done = true
	})
	return cerr == nil && done
}

// takeLocked removes pl from the poller; p.parkMu is held.
func (p *idlePoller) takeLocked(pl *parkedLink) {
	delete(p.parked, pl.fd)
	pl.t.park.parked = nil
	_ = syscall.EpollCtl(p.fd, syscall.EPOLL_CTL_DEL, int(pl.fd), nil)
}

func (p *idlePoller) loop(rc syscall.RawConn) {
	events := make([]syscall.EpollEvent, 256)
	for {
		var n int
		var werr error
		err := rc.Read(func(uintptr) bool {
			for {
				n, werr = syscall.EpollWait(p.fd, events, 0)
				if werr != syscall.EINTR {
					break
				}
			}
			return n > 0 || werr != nil // else wait until the epoll descriptor is readable
		})
		if err == nil {
			err = werr
		}
		if err != nil {
			p.fail(err)
			return
		}
		var wake []*parkedLink
		p.parkMu.Lock()
		for _, ev := range events[:n] {
			pl := p.parked[ev.Fd]
			if pl == nil || pl.seq != uint32(ev.Pad) {
				continue // taken by a close meanwhile
			}
			p.takeLocked(pl)
			wake = append(wake, pl)
		}
		p.parkMu.Unlock()
		for _, pl := range wake {
			go pl.r.run()
		}
	}
}

// fail gives up the poller (not expected: its descriptor is never
// closed): every parked link reads again in a goroutine of its own, and no
// link parks from now on.
func (p *idlePoller) fail(err error) {
	p.parkMu.Lock()
	p.dead = true
	var wake []*parkedLink
	for _, pl := range p.parked {
		p.takeLocked(pl)
		wake = append(wake, pl)
	}
	p.parkMu.Unlock()
	if len(wake) > 0 {
		wake[0].r.s.srv.log.Error("c2s: idle link poller failed; idle links wait in goroutines", "err", err)
	}
	for _, pl := range wake {
		go pl.r.run()
	}
}

// closeParked marks t closed for the poller; a link parked there resumes
// reading (which then sees the closed connection and ends).
func (t *tcpTransport) closeParked() {
	// Started here too, so that a close racing with this link's first
	// park is seen by it.
	p := idlePollerStart()
	if p == nil {
		return
	}
	p.parkMu.Lock()
	t.park.closed = true
	pl := t.park.parked
	if pl != nil {
		p.takeLocked(pl)
	}
	p.parkMu.Unlock()
	if pl != nil {
		go pl.r.run()
	}
}
