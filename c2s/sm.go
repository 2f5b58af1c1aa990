package c2s

import (
	"context"
	"strconv"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/wire"
)

// XEP-0198 Stream Management.
//
// Counting: h counts stanzas (message, presence, iq) received after
// <enable/>, modulo 2^32; the server keeps every stanza it sent after
// <enabled/> until the client acknowledges it. A server <a/> is only sent
// once the stanzas it covers were routed and every write their routing
// registered with router.Context.Hold is durable (holds.go).
//
// Resumption: a resumable session whose link dies hibernates (stays bound,
// keeps what it is sent) for the resumption timeout. A <resume/> on a new
// stream of the same account, on any transport, moves it to the new link
// and retransmits what the client had not acknowledged. When the timeout
// passes, unacknowledged messages go to offline storage and unacknowledged
// iq requests are answered with errors to their senders.

const nsSM = "urn:xmpp:sm:3"

var smRequest = []byte("<r xmlns='" + nsSM + "'/>")

type streamMgmt struct {
	enabled   bool
	resumable bool
	id        string
	timeout   time.Duration
	// base is holdQueue.seq when <enable/> came: h counts the stanzas
	// handled after it (smHandledLocked).
	base      uint64
	acked     uint32   // the client's last h
	unacked   [][]byte // stanzas sent and not acknowledged, oldest first
	hibernate *time.Timer

	unackedBytes int // the size of unacked (Options.SessionBuffer)
	// unrequested is the size of the stanzas sent since the last <r/>:
	// past ackBytes(budget) the server asks for an ack.
	unrequested int
}

// ackBytes is how many bytes of stanzas the server sends before it asks
// for an acknowledgement, whatever their number: an eighth of the session
// buffer, so that a client that answers frees the buffer long before it
// fills (one <r/> per 512 KiB at the default 4 MiB).
func ackBytes(budget int) int { return max(budget/8, 1) }

// smFailed renders <failed/>; h, when the session is known, is the count
// of stanzas the server handled from the client (XEP-0198 §5), and extra is
// application-specific content.
func smFailed(cond string, h *uint32, extra ...string) []byte {
	b := []byte("<failed xmlns='" + nsSM + "'")
	if h != nil {
		b = append(b, " h='"+strconv.FormatUint(uint64(*h), 10)+"'"...)
	}
	b = append(b, "><"+cond+" xmlns='"+wire.NSStanzas+"'/>"...)
	for _, e := range extra {
		b = append(b, e...)
	}
	return append(b, "</failed>"...)
}

func smAck(h uint32) []byte {
	return []byte("<a xmlns='" + nsSM + "' h='" + strconv.FormatUint(uint64(h), 10) + "'/>")
}

func attrUint32(st *wire.Stanza, name string) (uint32, bool) {
	var v struct {
		H   string `xml:"h,attr"`
		Max string `xml:"max,attr"`
	}
	if st.Decode(&v) != nil {
		return 0, false
	}
	s := v.H
	if name == "max" {
		s = v.Max
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

// handleSM processes enable, r and a on a bound stream.
func (s *Session) handleSM(st *wire.Stanza) error {
	if s.srv.opts.SMDisabled {
		if st.Name == "enable" {
			s.sendNonza(smFailed("feature-not-implemented", nil))
			return nil
		}
		return streamErr("unsupported-stanza-type", "Stream management is off")
	}
	switch st.Name {
	case "enable":
		var v struct {
			Resume string `xml:"resume,attr"`
		}
		_ = st.Decode(&v)
		s.mu.Lock()
		if s.sm.enabled {
			s.mu.Unlock()
			s.sendNonza(smFailed("unexpected-request", nil))
			return nil
		}
		s.sm.enabled = true
		s.sm.base = s.hq.seq
		b := []byte("<enabled xmlns='" + nsSM + "'")
		if (v.Resume == "true" || v.Resume == "1") && s.srv.opts.SMResumeTimeout > 0 {
			timeout := s.srv.opts.SMResumeTimeout
			if max, ok := attrUint32(st, "max"); ok && max > 0 {
				timeout = min(time.Duration(max)*time.Second, s.srv.opts.SMMaxResumeTimeout)
			}
			s.sm.resumable = true
			s.sm.timeout = timeout
			s.sm.id = newID()
			b = append(b, " id='"+s.sm.id+"' resume='true' max='"+strconv.Itoa(int(timeout/time.Second))+"'"...)
			s.srv.smRegister(s.sm.id, s)
		}
		b = append(b, "/>"...)
		// <enabled/> goes out before anything counted after it.
		s.enqueueLocked(b, false)
	case "r":
		s.mu.Lock()
		enabled := s.sm.enabled
		s.mu.Unlock()
		if !enabled {
			return streamErr("unsupported-stanza-type", "stream management is not enabled")
		}
		s.answerAckRequest()
	case "a":
		h, ok := attrUint32(st, "h")
		if !ok {
			return streamErr("undefined-condition", "<a/> without a valid h")
		}
		s.mu.Lock()
		err := s.ackLocked(h)
		confirmed := s.takeConfirmedLocked()
		s.mu.Unlock()
		runAll(confirmed)
		return err
	default:
		return streamErr("unsupported-stanza-type", "")
	}
	return nil
}

// ackLocked drops what the client acknowledged with h; the confirmations
// of tracked stanzas it covered wait in s.confirmed (takeConfirmedLocked,
// run them unlocked).
//
// h is compared in serial-number arithmetic (RFC 1982, modulo 2^32): an h
// above what was sent is an error (handled-count-too-high); one behind the
// last acknowledgement is stale (an <a/> overtaken by a newer one, or a
// resumption quoting an old count) and changes nothing.
func (s *Session) ackLocked(h uint32) error {
	if !s.sm.enabled {
		return streamErr("unsupported-stanza-type", "stream management is not enabled")
	}
	if int32(h-s.sm.acked) < 0 {
		return nil // stale
	}
	n := h - s.sm.acked // modulo 2^32
	if int64(n) > int64(len(s.sm.unacked)) {
		return s.tooHighLocked(h)
	}
	s.confirmed = append(s.confirmed, s.confirmedLocked(s.sm.unacked[:n], true)...)
	for i := uint32(0); i < n; i++ {
		s.sm.unackedBytes -= len(s.sm.unacked[i])
		s.sm.unacked[i] = nil
	}
	s.sm.unacked = s.sm.unacked[n:]
	if len(s.sm.unacked) == 0 {
		s.sm.unacked = nil
	}
	s.sm.acked = h
	return nil
}

func (s *Session) takeConfirmedLocked() []func() {
	fs := s.confirmed
	s.confirmed = nil
	return fs
}

// tooHighLocked is the error for an h above what was sent.
func (s *Session) tooHighLocked(h uint32) *streamError {
	sent := s.sm.acked + uint32(len(s.sm.unacked))
	return &streamError{cond: "undefined-condition", text: "h=" + strconv.FormatUint(uint64(h), 10) +
		" but only " + strconv.FormatUint(uint64(sent), 10) + " stanzas were sent",
		extra: handledCountTooHigh(h, sent)}
}

func handledCountTooHigh(h, sent uint32) string {
	return "<handled-count-too-high xmlns='" + nsSM + "' h='" + strconv.FormatUint(uint64(h), 10) +
		"' send-count='" + strconv.FormatUint(uint64(sent), 10) + "'/>"
}

// RequestAck asks the client to acknowledge what it received (a liveness
// probe); false if stream management is not on or there is no link.
func (s *Session) RequestAck() bool {
	s.mu.Lock()
	if !s.sm.enabled || s.t == nil || s.ending || s.ended {
		s.mu.Unlock()
		return false
	}
	s.sm.unrequested = 0
	return s.enqueueLocked(smRequest, false)
}

// hibernateLocked detaches the dead link and starts the resumption clock.
func (s *Session) hibernateLocked() {
	s.t, s.in = nil, nil
	s.gen++
	s.queue, s.writing, s.closing = nil, false, false
	s.queueBytes, s.inflight = 0, 0
	gen := s.gen
	s.sm.hibernate = time.AfterFunc(s.sm.timeout, func() {
		s.mu.Lock()
		expired := s.gen == gen && s.t == nil && !s.ended
		s.mu.Unlock()
		if expired {
			s.logger().Info("stream management: resumption timed out")
			s.finish()
		}
	})
}

// resume moves the session onto a new link (XEP-0198 §5). It returns the
// link generation the new reader runs under, or ok=false.
func (s *Session) resume(t transport, in *activityReader, h uint32) (gen uint64, ok bool, failure []byte) {
	s.mu.Lock()
	// The count of what is durable now: a stanza whose write is still
	// pending is not counted, and the client sends it again (at least
	// once; see README.md).
	handled := s.smHandledLocked()
	if s.ended || s.ending || !s.sm.resumable {
		s.mu.Unlock()
		return 0, false, smFailed("item-not-found", &handled)
	}
	err := s.ackLocked(h)
	confirmed := s.takeConfirmedLocked()
	if err != nil {
		sent := s.sm.acked + uint32(len(s.sm.unacked))
		s.mu.Unlock()
		return 0, false, smFailed("undefined-condition", &handled, handledCountTooHigh(h, sent))
	}
	old := s.t
	if s.sm.hibernate != nil {
		s.sm.hibernate.Stop()
		s.sm.hibernate = nil
	}
	s.gen++
	s.t, s.in = t, in
	s.writing, s.closing = false, false
	if s.hq.holdWait != nil {
		s.hq.waiting = nil // <r/> of the old link: <resumed h/> answers them
	}
	resumed := []byte("<resumed xmlns='" + nsSM + "' h='" + strconv.FormatUint(uint64(handled), 10) + "' previd='" + s.sm.id + "'/>")
	s.queue = make([][]byte, 0, 1+len(s.sm.unacked))
	s.queue = append(s.queue, resumed)
	s.queue = append(s.queue, s.sm.unacked...)
	s.queueBytes, s.inflight = len(resumed), 0
	if len(s.sm.unacked) > 0 {
		// Ask at once for an ack of what is sent again: it frees the
		// buffer, and whoever waits for a confirmation (offline delivery)
		// goes on.
		s.queue = append(s.queue, smRequest)
		s.queueBytes += len(smRequest)
		s.sm.unrequested = 0
	}
	s.startWriterLocked()
	gen = s.gen
	s.mu.Unlock()
	runAll(confirmed)
	if old != nil {
		old.close() // the old reader exits; its generation is stale
	}
	s.pingSent.Store(0)
	return gen, true, nil
}

// smRegister and smLookup keep resumable sessions by their SM id.
func (srv *Server) smRegister(id string, s *Session) {
	srv.mu.Lock()
	srv.resumable[id] = s
	srv.mu.Unlock()
}

func (srv *Server) smForget(id string) {
	srv.mu.Lock()
	delete(srv.resumable, id)
	srv.mu.Unlock()
}

func (srv *Server) smLookup(id string) *Session {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.resumable[id]
}

// requeue deals with what a session that ended still held: messages go to
// offline storage, iq requests are answered with an error to their sender,
// presence is dropped.
func (srv *Server) requeue(s *Session, held [][]byte) {
	ctx := context.Background()
	for _, raw := range held {
		st, err := wire.ParseElement(raw, wire.NSClient)
		if err != nil {
			continue
		}
		switch st.Kind {
		case wire.KindMessage:
			srv.router.Requeue(ctx, st)
		case wire.KindIQ:
			if st.Type != "get" && st.Type != "set" || st.ID == pingID {
				continue
			}
			from, err := jid.Parse(st.From)
			if err != nil {
				continue
			}
			reply, err := wire.ParseElement(wire.ErrorReply(st, "cancel", "service-unavailable", ""), wire.NSClient)
			if err != nil {
				continue
			}
			srv.router.Route(&router.Context{Context: ctx, Router: srv.router, Stanza: reply, From: s.j, To: from})
		}
	}
}
