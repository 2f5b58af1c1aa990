package c2s

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"time"

	"github.com/xmppd/xmppd/wire"
)

func tlsServer(c net.Conn, cfg *tls.Config) *tls.Conn { return tls.Server(c, cfg) }

func (srv *Server) leaf() *x509.Certificate {
	if srv.opts.Certificate == nil {
		return nil
	}
	return srv.opts.Certificate()
}

// loop is the stanza loop of a bound session: read, stamp, route.
func (s *Session) loop(ctx context.Context, rd *wire.Reader) {
	// The timer is armed only once s.idle is set: checkIdle re-arms it.
	s.idle = time.AfterFunc(time.Duration(1<<62), s.checkIdle)
	s.idle.Reset(s.srv.opts.PingInterval)
	defer s.unbind()
	// Inbound shaping: a session over its rate is simply not read for a
	// while, so TCP pushes back on the client (nothing is dropped).
	o := s.srv.opts
	stanzas := newBucket(float64(o.StanzasPerSecond), float64(o.StanzasPerSecond))
	bytes := newBucket(float64(o.BytesPerSecond), float64(max(o.BytesPerSecond, o.MaxStanza)))
	for {
		st, err := rd.Next()
		if err != nil {
			s.endWith(err)
			return
		}
		s.touch()
		if wait := max(stanzas.take(1), bytes.take(float64(len(st.Raw)))); wait > 0 {
			select {
			case <-time.After(wait):
			case <-s.done:
			}
		}
		if err := s.handle(ctx, st); err != nil {
			s.endWith(err)
			return
		}
	}
}

// endWith closes the stream after a read error or a protocol violation.
func (s *Session) endWith(err error) {
	var se *streamError
	var we *wire.Error
	switch {
	case errors.Is(err, wire.ErrStreamEnd):
		s.logger().Debug("client closed the stream")
		s.closeWith(wire.StreamClose(s.t.framed()))
	case errors.As(err, &se):
		s.logger().Info("stream error", "condition", se.cond, "text", se.text)
		s.closeWith(wire.StreamError(se.cond, se.text), wire.StreamClose(s.t.framed()))
	case errors.As(err, &we):
		s.logger().Info("stream error", "condition", we.Condition, "text", we.Text)
		s.closeWith(wire.StreamError(we.Condition, ""), wire.StreamClose(s.t.framed()))
	default:
		s.logger().Debug("connection lost", "err", err)
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		s.t.close()
	}
}

// unbind takes the session out of the router once, runs the unbound
// callbacks (unavailable presence) and rescues what was never written.
func (s *Session) unbind() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.closing = true
	var unsent [][]byte
	if !s.writing {
		unsent, s.queue = s.queue, nil
	}
	s.mu.Unlock()
	close(s.done)
	if s.idle != nil {
		s.idle.Stop()
	}
	s.srv.router.Unbind(s)
	s.srv.router.SessionUnbound(s)
	s.srv.rescue(unsent)
}
