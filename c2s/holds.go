package c2s

import (
	"sync/atomic"
	"time"
)

// Durable acknowledgements.
//
// Routing a stanza may start writes that finish later (an archive commit):
// the hook registers them with router.Context.Hold. The stanza is handled,
// for XEP-0198, once every such write is done: <a h/> counts it only then,
// and never before every earlier stanza is handled (h is a count, in
// order). The reader does not wait for the writes: it goes on with the
// next stanza, the pending writes wait in a small queue per session, and a
// goroutine that exists only while that queue is not empty waits for them
// in order and answers the <r/> requests they held back.
//
// Backpressure: past Options.UnackedWrites pending stanzas the reader stops
// reading the socket until the oldest are done, so TCP pushes back on a
// client that sends faster than storage commits.

// heldStanza is a routed stanza whose writes are not all done.
type heldStanza struct {
	seq   uint64 // its number among the stanzas routed on the session, from 1
	holds []<-chan error
}

// ackWait is an <r/> waiting for the stanzas received before it.
type ackWait struct {
	seq uint64 // answered once the first seq stanzas are handled
	n   int    // <r/> requests merged into this one
}

// maxAckWaits bounds the <r/> requests remembered while writes are
// pending: past it a request is merged with the last one (answered a
// little later, still with the right count).
const maxAckWaits = 16

// holdQueue is the session's pending writes (guarded by Session.mu).
type holdQueue struct {
	seq uint64 // stanzas routed on the session
	// *holdWait is nil until the session's first held write: most
	// sessions never have one, and idle sessions stay small.
	*holdWait
}

type holdWait struct {
	pending []heldStanza
	waiting []ackWait
	running bool // the waiter goroutine runs
	// below, when not nil, is closed once fewer than UnackedWrites
	// stanzas are pending (the reader waits on it).
	below chan struct{}
	// idle, when not nil, is closed once nothing is pending.
	idle   chan struct{}
	pauses uint64 // times reading paused (the first is logged)
}

// handledLocked is the number of routed stanzas that are handled: all
// before the oldest pending one.
func (q *holdQueue) handledLocked() uint64 {
	if q.holdWait != nil && len(q.pending) > 0 {
		return q.pending[0].seq - 1
	}
	return q.seq
}

// routed counts a stanza read on the session (routed, answered or
// dropped) with the writes its routing registered. It never blocks.
func (s *Session) routed(holds []<-chan error) {
	s.mu.Lock()
	s.hq.seq++
	if len(holds) > 0 {
		if s.hq.holdWait == nil {
			s.hq.holdWait = &holdWait{}
		}
		s.hq.pending = append(s.hq.pending, heldStanza{seq: s.hq.seq, holds: holds})
		if !s.hq.running {
			s.hq.running = true
			go s.awaitHolds()
		}
	}
	s.mu.Unlock()
}

// smHandledLocked is XEP-0198's h: the stanzas handled since <enable/>,
// modulo 2^32.
func (s *Session) smHandledLocked() uint32 {
	h := s.hq.handledLocked()
	if h < s.sm.base {
		return 0 // a stanza from before <enable/> is still pending
	}
	return uint32(h - s.sm.base)
}

// answerAckRequest answers <r/>: at once when nothing is pending, else once the
// stanzas received before it are handled.
func (s *Session) answerAckRequest() {
	s.mu.Lock()
	if s.hq.holdWait == nil || len(s.hq.pending) == 0 {
		h := s.smHandledLocked()
		s.enqueueLocked(smAck(h), false)
		return
	}
	if n := len(s.hq.waiting); n >= maxAckWaits {
		w := &s.hq.waiting[n-1]
		w.seq, w.n = s.hq.seq, w.n+1
	} else {
		s.hq.waiting = append(s.hq.waiting, ackWait{seq: s.hq.seq, n: 1})
	}
	s.mu.Unlock()
}

// awaitHolds waits for the pending writes, oldest first, and answers the
// <r/> requests they held back. It ends when nothing is pending, or when
// the session ends (the writes still finish; nobody waits for them).
func (s *Session) awaitHolds() {
	for {
		s.mu.Lock()
		if len(s.hq.pending) == 0 {
			s.hq.running = false
			if s.hq.idle != nil {
				close(s.hq.idle)
				s.hq.idle = nil
			}
			s.mu.Unlock()
			return
		}
		next := s.hq.pending[0].holds[0]
		s.mu.Unlock()
		select {
		case <-next:
		case <-s.done:
			s.mu.Lock()
			s.hq.running = false
			s.mu.Unlock()
			return
		}
		s.mu.Lock()
		s.hq.doneLocked()
		// Take every write already done behind it (commits come in
		// batches), so that one <a/> covers them all.
		for ready := true; ready && len(s.hq.pending) > 0; {
			select {
			case <-s.hq.pending[0].holds[0]:
				s.hq.doneLocked()
			default:
				ready = false
			}
		}
		if s.hq.below != nil && len(s.hq.pending) < s.srv.opts.UnackedWrites {
			close(s.hq.below)
			s.hq.below = nil
		}
		handled := s.hq.handledLocked()
		answer := 0
		for len(s.hq.waiting) > 0 && s.hq.waiting[0].seq <= handled {
			answer += s.hq.waiting[0].n
			s.hq.waiting = s.hq.waiting[1:]
		}
		if len(s.hq.waiting) == 0 {
			s.hq.waiting = nil
		}
		if answer == 0 {
			s.mu.Unlock()
			continue
		}
		h := s.smHandledLocked()
		s.mu.Unlock()
		for i := 0; i < answer; i++ {
			s.sendNonza(smAck(h))
		}
	}
}

// doneLocked drops the oldest pending write, which is done.
func (q *holdQueue) doneLocked() {
	p := &q.pending[0]
	p.holds = p.holds[1:]
	if len(p.holds) > 0 {
		return
	}
	q.pending[0] = heldStanza{}
	q.pending = q.pending[1:]
	if len(q.pending) == 0 {
		q.pending = nil
	}
}

// holdPaused, when a test sets it, is called with the session's JID each
// time its reading pauses for limits unacked-writes.
var holdPaused atomic.Pointer[func(jid string)]

// holdsFull returns a channel to wait on before reading more when the
// session has UnackedWrites stanzas pending, else nil.
func (s *Session) holdsFull() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hq.holdWait == nil || len(s.hq.pending) < s.srv.opts.UnackedWrites {
		return nil
	}
	if s.hq.below == nil {
		s.hq.below = make(chan struct{})
	}
	if s.hq.pauses++; s.hq.pauses == 1 {
		s.srv.log.Info("writes not yet durable reached limits unacked-writes; reading paused",
			"jid", s.jstr, "pending", len(s.hq.pending))
	}
	if f := holdPaused.Load(); f != nil {
		(*f)(s.jstr)
	}
	return s.hq.below
}

// awaitAcks waits, when the client closes its stream, until the <r/>
// requests still waiting are answered (their writes are done), at most
// until the session ends or the write timeout passes.
func (s *Session) awaitAcks() {
	s.mu.Lock()
	if s.hq.holdWait == nil || len(s.hq.waiting) == 0 || len(s.hq.pending) == 0 {
		s.mu.Unlock()
		return
	}
	if s.hq.idle == nil {
		s.hq.idle = make(chan struct{})
	}
	idle := s.hq.idle
	s.mu.Unlock()
	t := time.NewTimer(s.srv.opts.WriteTimeout)
	defer t.Stop()
	select {
	case <-idle:
	case <-s.done:
	case <-t.C:
	}
}
