package c2s

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/xmppd/xmppd/wire"
)

// serverTLS returns the TLS configuration for c2s handshakes: base with
// GetCertificate wrapped so that each handshake records the certificate it
// presents (tls-server-end-point must hash that one, not whatever a later
// SIGHUP loaded).
func (srv *Server) serverTLS(base *tls.Config) *tls.Config {
	if base == nil {
		return nil
	}
	cfg := base.Clone()
	get := base.GetCertificate
	cfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		var c *tls.Certificate
		var err error
		switch {
		case get != nil:
			c, err = get(hello)
		case len(base.Certificates) > 0:
			c = &base.Certificates[0]
			for i := range base.Certificates {
				if hello.SupportsCertificate(&base.Certificates[i]) == nil {
					c = &base.Certificates[i]
					break
				}
			}
		}
		if c != nil && err == nil && hello.Conn != nil {
			srv.presented.Store(hello.Conn, c)
		}
		return c, err
	}
	return cfg
}

// handshake runs the server side of TLS on c. It returns the connection
// and the leaf certificate presented in this handshake (nil for a resumed
// session, which presents none).
func (srv *Server) handshake(c net.Conn) (*tls.Conn, *x509.Certificate, error) {
	tc := tls.Server(c, srv.tlsCfg)
	err := tc.Handshake()
	v, ok := srv.presented.LoadAndDelete(c)
	if err != nil || !ok || tc.ConnectionState().DidResume {
		return tc, nil, err
	}
	cert := v.(*tls.Certificate)
	if cert.Leaf != nil {
		return tc, cert.Leaf, nil
	}
	if len(cert.Certificate) == 0 {
		return tc, nil, nil
	}
	leaf, perr := x509.ParseCertificate(cert.Certificate[0])
	if perr != nil {
		return tc, nil, nil
	}
	return tc, leaf, nil
}

// loop is the stanza loop of link gen: read, stamp, route.
func (s *Session) loop(ctx context.Context, rd *wire.Reader, gen uint64) {
	s.startLoop(ctx, rd, gen, nil, nil)
}

// loopTCP is loop for a TCP (or TLS) link: after Options.IdleRestack
// without input, reading moves to a fresh goroutine (see reading.run);
// release runs once reading has ended.
func (s *Session) loopTCP(ctx context.Context, rd *wire.Reader, gen uint64, t *tcpTransport, release func()) {
	s.startLoop(ctx, rd, gen, t, release)
}

func (s *Session) startLoop(ctx context.Context, rd *wire.Reader, gen uint64, t *tcpTransport, release func()) {
	s.mu.Lock()
	if s.idle == nil {
		// The timer is armed only once s.idle is set: checkIdle re-arms it.
		s.idle = time.AfterFunc(time.Duration(1<<62), s.checkIdle)
		s.idle.Reset(s.srv.opts.PingInterval)
	}
	s.mu.Unlock()
	// Inbound shaping: a session over its rate is simply not read for a
	// while, so TCP pushes back on the client (nothing is dropped).
	o := s.srv.opts
	r := &reading{
		s: s, ctx: ctx, rd: rd, gen: gen, release: release,
		stanzas: newBucket(float64(o.StanzasPerSecond), float64(o.StanzasPerSecond)),
		bytes:   newBucket(float64(o.BytesPerSecond), float64(o.BytesBurst)),
	}
	if t != nil && o.IdleRestack > 0 {
		r.tcp = t
	}
	r.run()
}

// restackHook, when set (tests), runs after each move to a fresh goroutine.
var restackHook atomic.Pointer[func()]

// reading is the state of one link's stanza loop, which may move from
// goroutine to goroutine.
type reading struct {
	s       *Session
	ctx     context.Context
	rd      *wire.Reader
	gen     uint64
	release func() // run when reading ends (nil: nothing to run)

	stanzas, bytes *bucket

	// tcp is the link when idle restacking is on. armedAt is when the
	// read deadline that detects an idle link was last set (zero: not
	// set); a goroutine that has handled nothing has no grown stack and
	// sets none.
	tcp     *tcpTransport
	armedAt time.Time
}

// run reads, stamps and routes until the link ends.
//
// Handling a stanza can go deep (router, modules, storage) and grows the
// goroutine's stack to 8 KiB or more, and the runtime shrinks an idle
// goroutine's stack only by halves at garbage collections, and not below
// four times what its waiting frames use. An idle session would keep that
// stack while it waits for its next byte: most of its memory. So on a TCP
// link, once the link has been silent for Options.IdleRestack, a read
// deadline interrupts the blocked read and reading goes on in a fresh
// goroutine (started with the smallest stack), and this one exits. A read
// interrupted by a deadline loses nothing: the connection (TLS included)
// stays usable and the wire.Reader keeps a partial element.
func (r *reading) run() {
	s := r.s
	clean := false
	moved := false
	defer func() {
		if moved {
			return
		}
		s.linkLost(r.gen, clean)
		if r.release != nil {
			r.release()
		}
	}()
	for {
		s.notReading.Store(false)
		st, err := r.rd.Next()
		if err != nil {
			if r.restack(err) {
				moved = true
				return
			}
			clean = s.endWith(err, r.gen)
			return
		}
		// From here to the next read the socket is not read: a pause
		// below (or a handler waiting for storage) must not make the
		// keepalive take the client for dead.
		s.notReading.Store(true)
		s.touch()
		if wait := max(r.stanzas.take(1), r.bytes.take(float64(len(st.Raw)))); wait > 0 {
			if s.throttled.Add(1) == 1 {
				s.logger().Info("inbound rate limit reached; reading paused", "wait", wait)
			}
			select {
			case <-time.After(wait):
			case <-s.done:
			}
		}
		if err := s.handle(r.ctx, st); err != nil {
			s.endWith(err, r.gen)
			return
		}
		// Backpressure: too many of the session's stanzas wait for their
		// writes to be durable (storage falls behind): read no more until
		// some are, so TCP pushes back on the client.
		if below := s.holdsFull(); below != nil {
			select {
			case <-below:
			case <-s.done:
			}
		}
		r.arm()
	}
}

// arm sets (at most every half IdleRestack) the read deadline that tells
// an idle link after a stanza was handled.
func (r *reading) arm() {
	if r.tcp == nil {
		return
	}
	idle := r.s.srv.opts.IdleRestack
	now := time.Now()
	if !r.armedAt.IsZero() && now.Sub(r.armedAt) < idle/2 {
		return
	}
	r.armedAt = now
	r.tcp.setReadDeadline(now.Add(idle))
}

// restack reports whether err is the idle deadline, and if so moves
// reading to a fresh goroutine.
func (r *reading) restack(err error) bool {
	if r.tcp == nil || r.armedAt.IsZero() || !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	r.tcp.setReadDeadline(time.Time{})
	r.armedAt = time.Time{}
	r.s.srv.restacked.Add(1)
	r.rd.Idle() // no read buffer while waiting, unless part of an element came
	// On Linux the link waits in the idle poller with no goroutine at
	// all; elsewhere (or for a socket it cannot watch) in a fresh one.
	if !r.park() {
		go func() {
			r.waitReadable()
			r.run()
		}()
	}
	if f := restackHook.Load(); f != nil {
		(*f)()
	}
	return true
}

// endWith reacts to what ended reading on link gen; it reports whether the
// client closed the stream itself.
func (s *Session) endWith(err error, gen uint64) (clean bool) {
	s.mu.Lock()
	current := s.gen == gen
	s.mu.Unlock()
	if !current {
		return false // the link was replaced by a resumption
	}
	var se *streamError
	var we *wire.Error
	switch {
	case errors.Is(err, wire.ErrStreamEnd):
		s.logger().Debug("client closed the stream")
		// <r/> requests waiting for durable writes are answered before
		// the stream closes (within the write timeout).
		s.awaitAcks()
		s.closeStream("", "")
		return true
	case errors.As(err, &se):
		s.logger().Info("stream error", "condition", se.cond, "text", se.text)
		s.closeWith(streamErrorBytes(se), wire.StreamClose(s.framed()))
	case errors.As(err, &we):
		s.logger().Info("stream error", "condition", we.Condition, "text", we.Text)
		s.closeStream(we.Condition, "")
	default:
		s.logger().Debug("connection lost", "err", err)
	}
	return false
}

func (s *Session) framed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t != nil && s.t.framed()
}

// linkLost runs when the reader of link gen stops. A resumable session
// whose link died hibernates; otherwise the session ends.
func (s *Session) linkLost(gen uint64, clean bool) {
	s.mu.Lock()
	if s.gen != gen || s.ended {
		s.mu.Unlock()
		return
	}
	if !clean && !s.ending && s.sm.resumable {
		t := s.t
		s.hibernateLocked()
		timeout := s.sm.timeout
		s.mu.Unlock()
		if t != nil {
			t.close()
		}
		s.logger().Info("stream management: link lost; session hibernates", "timeout", timeout)
		s.srv.router.SessionSuspended(s)
		return
	}
	s.mu.Unlock()
	s.finish()
}

// finish ends the session once: what it still held handed on (requeue),
// out of the router, unavailable presence (the unbound callbacks).
//
// Without stream management, the queue that was not written goes to
// offline storage; a batch being written is waited for (the link is closed
// first, so a blocked write fails at once) and, if it failed, handed on too.
// With stream management, everything unacknowledged is handed on.
func (s *Session) finish() {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended, s.ending = true, true
	if s.sm.hibernate != nil {
		s.sm.hibernate.Stop()
	}
	t, closing := s.t, s.closing
	s.mu.Unlock()
	if s.idle != nil {
		s.idle.Stop()
	}
	if s.sm.id != "" {
		s.srv.smForget(s.sm.id)
	}
	if t != nil && !closing {
		t.close()
	}
	var held [][]byte
	s.mu.Lock()
	if s.sm.enabled {
		held, s.sm.unacked, s.sm.unackedBytes = s.sm.unacked, nil, 0
	} else {
		s.waitWriterLocked()
		held, s.queue, s.queueBytes = s.queue, nil, 0
	}
	held = s.untrackedLocked(held)
	s.mu.Unlock()
	// Stored before the session leaves the router: whoever sees it gone
	// (its unavailable presence) finds its messages in offline storage.
	s.srv.requeue(s, held)
	s.srv.router.Unbind(s)
	s.srv.router.SessionUnbound(s)
	close(s.done) // after what it held was handed on
}
