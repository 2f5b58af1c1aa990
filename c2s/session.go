package c2s

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/wire"
)

// Session is one bound client session. It implements router.Session.
// Reading happens on the connection's goroutine (serve); writing happens on
// a goroutine that exists only while the outbound queue is not empty.
type Session struct {
	router.Values
	srv *Server
	t   transport

	j    jid.JID
	jstr string

	mu         sync.Mutex
	queue      [][]byte
	writing    bool
	closing    bool // no more Sends; close the transport once the queue drains
	closed     bool
	presence   *wire.Stanza
	priority   int
	interested bool

	in       *activityReader
	pingSent atomic.Int64 // unix nanos of an unanswered ping, 0 if none
	idle     *time.Timer
	done     chan struct{}
}

func (s *Session) JID() jid.JID { return s.j }

// Send queues one element; it never blocks.
func (s *Session) Send(raw []byte) bool {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return false
	}
	if len(s.queue) >= s.srv.opts.OutboundQueue {
		// A client that does not read what it is sent is dropped; what
		// waited for it is rescued to offline storage when the stuck write
		// fails, and the caller stores this one.
		s.closing = true
		s.mu.Unlock()
		s.logger().Warn("outbound queue full; dropping the session", "queued", s.srv.opts.OutboundQueue)
		s.t.close()
		return false
	}
	s.queue = append(s.queue, raw)
	if !s.writing {
		s.writing = true
		go s.flush()
	}
	s.mu.Unlock()
	return true
}

// flush drains the queue; it runs only while there is something to write.
func (s *Session) flush() {
	var spare [][]byte
	for {
		s.mu.Lock()
		q := s.queue
		if len(q) == 0 {
			s.writing = false
			if spare != nil && s.queue == nil {
				s.queue = spare[:0]
			}
			closing := s.closing
			s.mu.Unlock()
			if closing {
				s.t.close()
			}
			return
		}
		s.queue = spare[:0:cap(spare)]
		if cap(s.queue) == 0 {
			s.queue = nil
		}
		s.mu.Unlock()
		err := s.t.writeBatch(q, time.Now().Add(s.srv.opts.WriteTimeout))
		for i := range q {
			q[i] = nil
		}
		spare = q[:0]
		if cap(spare) > 64 {
			spare = nil
		}
		if err != nil {
			s.logger().Debug("write failed", "err", err)
			s.mu.Lock()
			s.closing = true
			unsent := s.queue
			s.queue = nil
			s.writing = false
			s.mu.Unlock()
			s.t.close()
			s.srv.rescue(unsent)
			return
		}
	}
}

// closeWith queues final bytes (a stream error and/or the stream close) and
// closes the transport once everything queued before them is written.
func (s *Session) closeWith(final ...[]byte) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.queue = append(s.queue, final...)
	s.closing = true
	if !s.writing {
		s.writing = true
		go s.flush()
	}
	s.mu.Unlock()
	// A peer that stops reading must not hold the connection open.
	time.AfterFunc(s.srv.opts.WriteTimeout, func() { s.t.close() })
}

// Presence implements router.Session.
func (s *Session) Presence() *wire.Stanza {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.presence
}

// Priority implements router.Session.
func (s *Session) Priority() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.priority
}

// SetPresence records the session's broadcast presence (nil = unavailable).
func (s *Session) SetPresence(p *wire.Stanza, priority int) {
	s.mu.Lock()
	s.presence, s.priority = p, priority
	s.mu.Unlock()
}

// Interested implements router.Session.
func (s *Session) Interested() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.interested
}

// SetInterested marks that the client requested its roster.
func (s *Session) SetInterested() {
	s.mu.Lock()
	s.interested = true
	s.mu.Unlock()
}

// Replace implements router.Session: another session bound this full JID.
func (s *Session) Replace() {
	s.logger().Info("session replaced by a new one for the same resource")
	s.closeWith(wire.StreamError("conflict", "Replaced by new connection"), wire.StreamClose(s.t.framed()))
}

// Shutdown ends the session with <system-shutdown/>.
func (s *Session) Shutdown() {
	s.closeWith(wire.StreamError("system-shutdown", ""), wire.StreamClose(s.t.framed()))
}

// handle processes one element read after binding.
func (s *Session) handle(ctx context.Context, st *wire.Stanza) error {
	if st.Kind == wire.KindOther {
		if h := s.srv.opts.Extensions[st.NS+" "+st.Name]; h != nil {
			return h(ctx, s, st)
		}
		return streamErr("unsupported-stanza-type", "")
	}
	if st.From != "" && st.From != s.jstr {
		// RFC 6120 §8.1.2.1: a client may put its bare or full JID; anything
		// else is a spoof.
		f, err := jid.Parse(st.From)
		if err != nil || !(f.Equal(s.j) || (f.Resourcepart() == "" && f.Equal(s.j.Bare()))) {
			return streamErr("invalid-from", "")
		}
	}
	var to jid.JID
	if st.To != "" {
		var err error
		to, err = parseTo(st.To, s.srv.router.IsLocal)
		if err != nil {
			st.From = s.jstr
			if st.Type != "error" {
				s.Send(wire.ErrorReply(st, "modify", "jid-malformed", ""))
			}
			return nil
		}
		st.SetAddrs(s.jstr, to.String())
	} else {
		st.SetAddrs(s.jstr, "")
	}
	if st.Kind == wire.KindIQ && st.ID == pingID && (st.Type == "result" || st.Type == "error") {
		return nil // the answer to our keepalive ping (touch already saw it)
	}
	s.srv.router.Route(&router.Context{Context: ctx, Router: s.srv.router, Stanza: st, From: s.j, To: to, Origin: s})
	return nil
}

const pingID = "xmppd-keepalive"

// touch records that an element arrived: any traffic answers a ping.
func (s *Session) touch() { s.pingSent.Store(0) }

// checkIdle runs from the idle timer: it pings a silent client and drops it
// when the ping goes unanswered (XEP-0199 §4.2).
func (s *Session) checkIdle() {
	select {
	case <-s.done:
		return
	default:
	}
	now := time.Now()
	interval, timeout := s.srv.opts.PingInterval, s.srv.opts.PingTimeout
	last := time.Unix(0, s.in.lastRead.Load())
	if sent := s.pingSent.Load(); sent != 0 {
		if last.After(time.Unix(0, sent)) {
			s.pingSent.Store(0) // bytes arrived since the ping
			s.idle.Reset(interval)
			return
		}
		if now.Sub(time.Unix(0, sent)) >= timeout {
			s.logger().Info("client did not answer ping; dropping it")
			s.closeWith(wire.StreamError("connection-timeout", ""), wire.StreamClose(s.t.framed()))
			return
		}
		s.idle.Reset(timeout - now.Sub(time.Unix(0, sent)))
		return
	}
	if quiet := now.Sub(last); quiet < interval {
		s.idle.Reset(interval - quiet)
		return
	}
	s.pingSent.Store(now.UnixNano())
	ping := make([]byte, 0, 128)
	ping = append(ping, "<iq type='get' id='"+pingID+"' from='"...)
	ping = wire.AppendEscapedAttr(ping, s.j.Domainpart())
	ping = append(ping, "' to='"...)
	ping = wire.AppendEscapedAttr(ping, s.jstr)
	ping = append(ping, "'><ping xmlns='urn:xmpp:ping'/></iq>"...)
	s.Send(ping)
	s.idle.Reset(timeout)
}

// Kick ends the session with a stream error (account removed, admin action).
func (s *Session) Kick(cond, text string) {
	s.closeWith(wire.StreamError(cond, text), wire.StreamClose(s.t.framed()))
}

// logger returns a logger with the session's attributes. It is built at
// each (rare) use rather than kept, to keep idle sessions small.
func (s *Session) logger() *slog.Logger {
	return s.srv.log.With("jid", s.jstr, "remote", hostOf(s.t.remoteAddr()))
}

// parseTo prepares a 'to' address. For a domain that is not served here it
// also checks that the prepared form is itself a valid JID: PRECIS
// preparation of exotic spellings can yield an invalid one (".").
func parseTo(s string, isLocal func(string) bool) (jid.JID, error) {
	j, err := jid.Parse(s)
	if err != nil || isLocal(j.Domainpart()) {
		return j, err
	}
	if _, err := jid.Parse(j.String()); err != nil {
		return jid.JID{}, err
	}
	return j, nil
}
