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
//
// A session rides on a link (a transport and its reader goroutine). With
// XEP-0198 resumption the link can be lost and replaced: in between the
// session hibernates, stays bound and keeps what it is sent. Writing
// happens on a goroutine that exists only while the link's queue is not
// empty.
type Session struct {
	router.Values
	srv  *Server
	j    jid.JID
	jstr string
	done chan struct{} // closed when the session has ended

	mu      sync.Mutex
	t       transport       // nil while hibernating
	in      *activityReader // the link's reader, for keepalive timing
	gen     uint64          // bumped whenever the link changes
	queue   [][]byte        // elements waiting for this link's writer
	writing bool
	closing bool // the link closes once its queue is written
	ending  bool // the session ends with this link (no hibernation)
	ended   bool
	// written is signalled when the writer stops (finish waits for the
	// batch in flight); created on first use.
	written *sync.Cond
	// tracked are stanzas queued with SendConfirmed, by their first byte.
	tracked   map[*byte]trackedSend
	confirmed []func() // confirmations an acknowledgement released

	// Bytes held for the session, bounded by Options.SessionBuffer with
	// sm.unackedBytes and csi.bytes: queued elements not also kept as
	// unacknowledged stanzas, and those of the batch being written.
	queueBytes, inflight int

	presence   *wire.Stanza
	priority   int
	interested bool

	sm  streamMgmt
	csi clientState
	hq  holdQueue // routed stanzas whose writes are not yet durable

	pingSent atomic.Int64 // unix nanos of an unanswered ping, 0 if none
	idle     *time.Timer
	// notReading is set while the stanza loop handles a stanza or pauses
	// (inbound shaping, storage backpressure) instead of reading: silence
	// then is the server's doing, not the client's (see checkIdle).
	notReading atomic.Bool

	throttled atomic.Uint64 // times reading paused for the inbound rate limit
}

func (s *Session) JID() jid.JID { return s.j }

// Buffered returns the bytes the server holds for the session: its
// outbound queue, the batch being written, XEP-0198 unacknowledged stanzas
// and what waits while the client is inactive (XEP-0352).
func (s *Session) Buffered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bufferedLocked()
}

func (s *Session) bufferedLocked() int {
	return s.queueBytes + s.inflight + s.sm.unackedBytes + s.csi.bytes
}

// Done is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// HoldPauses reports how many times reading this session paused because
// limits unacked-writes of its stanzas waited for durable writes.
func (s *Session) HoldPauses() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hq.holdWait == nil {
		return 0
	}
	return s.hq.pauses
}

// Throttled reports how many times reading this session paused because it
// sent faster than limits bytes-per-second or stanzas-per-second allow.
func (s *Session) Throttled() uint64 { return s.throttled.Load() }

// Send implements router.Session: it queues one stanza and never blocks.
func (s *Session) Send(raw []byte) bool { return s.send(raw, true) }

// sendNonza queues a stream-level element (not counted by XEP-0198).
func (s *Session) sendNonza(raw []byte) bool { return s.send(raw, false) }

func (s *Session) send(raw []byte, stanza bool) bool {
	s.mu.Lock()
	if s.ended || s.ending {
		s.mu.Unlock()
		return false
	}
	if stanza && s.csi.inactive && s.csi.hold(raw) {
		budget := s.srv.opts.SessionBuffer
		if s.csi.bytes <= budget/2 && s.bufferedLocked() <= budget {
			s.mu.Unlock()
			return true
		}
		// Too much waits for an inactive client (half the budget: the
		// rest is room for what follows while it is written): it goes
		// out now. Moving it to the queue takes no new memory, so the
		// budget allows it; what comes next meets the usual limits.
		allowed := max(budget, s.bufferedLocked())
		held := s.csi.take()
		s.mu.Unlock()
		for _, raw := range held {
			s.mu.Lock()
			if s.ended || s.ending {
				s.mu.Unlock()
				return false
			}
			s.enqueueWithin(raw, true, allowed)
		}
		return true
	}
	return s.enqueueLocked(raw, stanza)
}

// enqueueLocked queues raw on the link (and, for a stanza with stream
// management on, in the unacknowledged list). It unlocks s.mu.
func (s *Session) enqueueLocked(raw []byte, stanza bool) bool {
	return s.enqueueWithin(raw, stanza, s.srv.opts.SessionBuffer)
}

// enqueueWithin is enqueueLocked with budget bytes allowed for the session.
func (s *Session) enqueueWithin(raw []byte, stanza bool, budget int) bool {
	limit := s.srv.opts.OutboundQueue
	requestAck := false
	counted := stanza && s.sm.enabled // kept (and counted) as unacknowledged
	if counted {
		if n, held := len(s.sm.unacked), s.bufferedLocked(); n >= limit || held+len(raw) > budget {
			// The client acknowledges nothing: end the session; what
			// waited is handed to offline storage, the caller stores this.
			s.mu.Unlock()
			s.logger().Warn("session buffer full: too much unacknowledged; ending the session",
				"unacked", n, "bytes", held, "limit", budget)
			go s.overflow()
			return false
		}
		s.sm.unacked = append(s.sm.unacked, raw)
		s.sm.unackedBytes += len(raw)
		s.sm.unrequested += len(raw)
		// Every ack-every stanzas, and every eighth of the buffer (a few
		// large stanzas must not wait for the count).
		requestAck = len(s.sm.unacked)%s.srv.opts.SMAckEvery == 0 || s.sm.unrequested >= ackBytes(s.srv.opts.SessionBuffer)
	}
	if s.t == nil { // hibernating: kept in the unacknowledged list
		s.mu.Unlock()
		if stanza && s.srv.opts.OnHibernated != nil {
			s.srv.opts.OnHibernated(s, raw)
		}
		return true
	}
	if held := s.bufferedLocked(); len(s.queue) >= limit || (!counted && held+len(raw) > budget) {
		// A client that does not read what it is sent loses its link.
		// With stream management the stanza waits in the unacknowledged
		// list for a resumption; without, the caller stores it.
		t, queued := s.t, len(s.queue)
		s.mu.Unlock()
		s.logger().Warn("outbound queue full; closing the connection", "queued", queued, "bytes", held, "limit", budget)
		if counted {
			t.close()
		} else {
			go s.overflow()
		}
		return counted
	}
	s.queue = append(s.queue, raw)
	if !counted {
		s.queueBytes += len(raw)
	}
	if requestAck {
		s.queue = append(s.queue, smRequest)
		s.queueBytes += len(smRequest)
		s.sm.unrequested = 0
	}
	s.startWriterLocked()
	s.mu.Unlock()
	return true
}

// trackedSend is a stanza whose sender waits to hear that the client has
// it: acknowledged (XEP-0198, when stream management was on when it was
// queued) or written to the link (without).
type trackedSend struct {
	confirm func()
	byAck   bool
}

// SendConfirmed implements router.Confirmer: it queues raw like Send and
// calls confirm once the client has it — acknowledged with XEP-0198 when
// stream management is on, otherwise written to the link. A stanza that
// never got there is not handed to offline storage when the session ends:
// its sender still holds it (offline storage delivers it again later).
func (s *Session) SendConfirmed(raw []byte, confirm func()) bool {
	if len(raw) == 0 {
		return false
	}
	s.mu.Lock()
	if s.ended || s.ending {
		s.mu.Unlock()
		return false
	}
	if s.tracked == nil {
		s.tracked = make(map[*byte]trackedSend)
	}
	s.tracked[&raw[0]] = trackedSend{confirm: confirm, byAck: s.sm.enabled}
	if s.enqueueLocked(raw, true) {
		return true
	}
	s.mu.Lock()
	delete(s.tracked, &raw[0])
	s.mu.Unlock()
	return false
}

// confirmedLocked takes the confirmations of the elements in done (written
// when byAck is false, acknowledged when true).
func (s *Session) confirmedLocked(done [][]byte, byAck bool) []func() {
	if len(s.tracked) == 0 {
		return nil
	}
	var fs []func()
	for _, e := range done {
		if len(e) == 0 {
			continue
		}
		if t, ok := s.tracked[&e[0]]; ok && t.byAck == byAck {
			delete(s.tracked, &e[0])
			fs = append(fs, t.confirm)
		}
	}
	return fs
}

// untrackedLocked drops the tracked stanzas from held (their senders keep
// them) and forgets every remaining confirmation: the session is over.
func (s *Session) untrackedLocked(held [][]byte) [][]byte {
	if len(s.tracked) == 0 {
		return held
	}
	out := held[:0:0]
	for _, e := range held {
		if len(e) > 0 {
			if _, ok := s.tracked[&e[0]]; ok {
				continue
			}
		}
		out = append(out, e)
	}
	s.tracked = nil
	return out
}

func runAll(fs []func()) {
	for _, f := range fs {
		f()
	}
}

func (s *Session) startWriterLocked() {
	if !s.writing && s.t != nil {
		s.writing = true
		go s.flush(s.gen, s.t)
	}
}

// flush drains the queue of link gen; it runs only while there is
// something to write, and stops when the link is replaced.
//
// A batch is written when writeBatch returns nil. A batch whose write
// failed goes back to the head of the queue (without stream management;
// with it, the unacknowledged list holds it), so the session's end hands it
// to offline storage: part of it may have reached the client, so a
// duplicate is possible, a loss is not.
func (s *Session) flush(gen uint64, t transport) {
	var spare [][]byte
	for {
		s.mu.Lock()
		if s.gen != gen {
			s.mu.Unlock()
			return
		}
		s.inflight = 0 // the previous batch is written
		q := s.queue
		if len(q) == 0 {
			s.writing = false
			if spare != nil && s.queue == nil {
				s.queue = spare[:0]
			}
			closing := s.closing
			s.signalWrittenLocked()
			s.mu.Unlock()
			if closing {
				t.close()
			}
			return
		}
		s.queue = spare[:0:cap(spare)]
		if cap(s.queue) == 0 {
			s.queue = nil
		}
		s.inflight, s.queueBytes = s.queueBytes, 0
		s.mu.Unlock()
		err := t.writeBatch(q, time.Now().Add(s.srv.opts.WriteTimeout))
		if err != nil {
			s.logger().Debug("write failed", "err", err)
			s.mu.Lock()
			if s.gen == gen {
				s.writing = false
				if !s.sm.enabled {
					s.queue = append(q, s.queue...)
					s.queueBytes += s.inflight
				}
				s.inflight = 0
				s.signalWrittenLocked()
			}
			s.mu.Unlock()
			t.close() // the reader sees it and the link is lost
			return
		}
		var confirmed []func()
		s.mu.Lock()
		confirmed = s.confirmedLocked(q, false)
		s.mu.Unlock()
		runAll(confirmed)
		for i := range q {
			q[i] = nil
		}
		spare = q[:0]
		if cap(spare) > 64 {
			spare = nil
		}
	}
}

func (s *Session) signalWrittenLocked() {
	if s.written != nil {
		s.written.Broadcast()
	}
}

// waitWriterLocked waits until no batch is being written (s.mu held).
func (s *Session) waitWriterLocked() {
	for s.writing {
		if s.written == nil {
			s.written = sync.NewCond(&s.mu)
		}
		s.written.Wait()
	}
}

// overflow ends a session over its buffer limit with resource-constraint
// (RFC 6120 §4.9.3.16): the server will not hold more for this client. A
// client that does not read will not see the error; the link is cut after
// a second's try. What the session held goes to offline storage (finish).
func (s *Session) overflow() {
	s.mu.Lock()
	if s.ended || s.ending {
		s.mu.Unlock()
		return
	}
	s.ending = true // no hibernation, nothing more queued
	t := s.t
	s.mu.Unlock()
	if t != nil {
		_ = t.writeBatch([][]byte{wire.StreamError("resource-constraint", "Too much is waiting for this client"),
			wire.StreamClose(t.framed())}, time.Now().Add(time.Second))
	}
	s.finish()
}

// closeWith ends the session: it queues final bytes (a stream error and/or
// the stream close) and closes the link once everything before them is
// written. A hibernating session ends at once.
func (s *Session) closeWith(final ...[]byte) {
	s.mu.Lock()
	if s.ended || s.ending {
		s.mu.Unlock()
		return
	}
	s.ending = true
	t := s.t
	if t == nil {
		s.mu.Unlock()
		s.finish()
		return
	}
	s.queue = append(s.queue, final...)
	s.closing = true
	s.startWriterLocked()
	s.mu.Unlock()
	// A peer that stops reading must not hold the connection open.
	time.AfterFunc(s.srv.opts.WriteTimeout, func() { t.close() })
}

// closeStream ends the session with a stream error (cond "" for a plain close).
func (s *Session) closeStream(cond, text string) {
	framed := false
	s.mu.Lock()
	if s.t != nil {
		framed = s.t.framed()
	}
	s.mu.Unlock()
	if cond == "" {
		s.closeWith(wire.StreamClose(framed))
		return
	}
	s.closeWith(wire.StreamError(cond, text), wire.StreamClose(framed))
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

// Hibernating reports whether the session lost its link and waits for a
// resumption (XEP-0198).
func (s *Session) Hibernating() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t == nil && !s.ended
}

// Replace implements router.Session: another session bound this full JID.
func (s *Session) Replace() {
	s.logger().Info("session replaced by a new one for the same resource")
	s.closeStream("conflict", "Replaced by new connection")
}

// Shutdown ends the session with <system-shutdown/>.
func (s *Session) Shutdown() { s.closeStream("system-shutdown", "") }

// Kick ends the session with a stream error (account removed, admin action).
func (s *Session) Kick(cond, text string) { s.closeStream(cond, text) }

// handle processes one element read after binding.
func (s *Session) handle(ctx context.Context, st *wire.Stanza) error {
	if st.Kind == wire.KindOther {
		return s.handleNonza(ctx, st)
	}
	holds, err := s.handleStanza(ctx, st)
	s.routed(holds)
	return err
}

// handleNonza processes a top-level element that is not a stanza.
func (s *Session) handleNonza(ctx context.Context, st *wire.Stanza) error {
	switch st.NS {
	case nsSM:
		return s.handleSM(st)
	case nsCSI:
		return s.handleCSI(st)
	}
	if h := s.srv.opts.Extensions[st.NS+" "+st.Name]; h != nil {
		return h(ctx, s, st)
	}
	return streamErr("unsupported-stanza-type", "")
}

// handleStanza checks, stamps and routes a stanza; it returns the writes
// routing registered (router.Context.Hold).
func (s *Session) handleStanza(ctx context.Context, st *wire.Stanza) ([]<-chan error, error) {
	if st.From != "" && st.From != s.jstr {
		// RFC 6120 §8.1.2.1: a client may put its bare or full JID; anything
		// else is a spoof.
		f, err := jid.Parse(st.From)
		if err != nil || !(f.Equal(s.j) || (f.Resourcepart() == "" && f.Equal(s.j.Bare()))) {
			return nil, streamErr("invalid-from", "")
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
			return nil, nil
		}
		st.SetAddrsLang(s.jstr, to.String(), st.StreamLang())
	} else {
		st.SetAddrsLang(s.jstr, "", st.StreamLang()) // RFC 6120 §4.7.4
	}
	if st.Kind == wire.KindIQ && st.ID == pingID && (st.Type == "result" || st.Type == "error") {
		return nil, nil // the answer to our keepalive ping (touch already saw it)
	}
	c := &router.Context{Context: ctx, Router: s.srv.router, Stanza: st, From: s.j, To: to, Origin: s}
	s.srv.router.Route(c)
	return c.Holds(), nil
}

const pingID = "xmppd-keepalive"

// touch records that an element arrived: any traffic answers a ping.
func (s *Session) touch() { s.pingSent.Store(0) }

// checkIdle runs from the idle timer: it pings a silent client and drops
// its link when the ping goes unanswered (XEP-0199 §4.2).
func (s *Session) checkIdle() {
	if f := idleChecked.Load(); f != nil {
		(*f)(s.jstr)
	}
	s.mu.Lock()
	in, ended := s.in, s.ended
	hibernating := s.t == nil
	s.mu.Unlock()
	if ended {
		return
	}
	interval, timeout := s.srv.opts.PingInterval, s.srv.opts.PingTimeout
	if hibernating {
		s.idle.Reset(interval)
		return
	}
	if s.notReading.Load() {
		// The server is not reading this link (storage backpressure, the
		// inbound rate limit, a slow handler): the client's bytes, a
		// ping's answer included, wait unread in the socket, so its
		// silence proves nothing. Ending the link would lose what the
		// client sent and the server paused itself. Watch again a full
		// interval later; reading, once it goes on, takes those bytes.
		s.pingSent.Store(0)
		s.idle.Reset(interval)
		return
	}
	now := time.Now()
	last := time.Unix(0, in.lastRead.Load())
	if sent := s.pingSent.Load(); sent != 0 {
		if last.After(time.Unix(0, sent)) {
			s.pingSent.Store(0) // bytes arrived since the ping
			s.idle.Reset(interval)
			return
		}
		if now.Sub(time.Unix(0, sent)) >= timeout {
			s.logger().Info("client did not answer ping; its link is dead")
			s.pingSent.Store(0)
			s.dropLink("connection-timeout")
			s.idle.Reset(interval)
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

// idleChecked, when a test sets it, is called with the session's JID each
// time the keepalive timer fires (checkIdle).
var idleChecked atomic.Pointer[func(jid string)]

// dropLink gives up on the current link as dead: a resumable session
// hibernates, any other ends with the stream error cond.
func (s *Session) dropLink(cond string) {
	s.mu.Lock()
	resumable := s.sm.resumable && !s.ending
	t := s.t
	s.mu.Unlock()
	if t == nil {
		return
	}
	if resumable {
		// Tell the peer, in case it still reads, then cut: the reader's
		// exit hibernates the session.
		_ = t.writeBatch([][]byte{wire.StreamError(cond, ""), wire.StreamClose(t.framed())}, time.Now().Add(time.Second))
		t.close()
		return
	}
	s.closeStream(cond, "")
}

// logger returns a logger with the session's attributes. It is built at
// each (rare) use rather than kept, to keep idle sessions small.
func (s *Session) logger() *slog.Logger {
	s.mu.Lock()
	t := s.t
	s.mu.Unlock()
	if t == nil {
		return s.srv.log.With("jid", s.jstr)
	}
	return s.srv.log.With("jid", s.jstr, "remote", hostOf(t.remoteAddr()))
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

// Probe checks that the link is alive: it asks the client for an
// acknowledgement (XEP-0198 <r/>) or, without stream management, sends a
// ping, and gives up on the link when no byte arrived within d. Calls use
// it to notice dead links that never sent a FIN or RST.
func (s *Session) Probe(d time.Duration) {
	s.mu.Lock()
	in, attached := s.in, s.t != nil && !s.ending && !s.ended
	gen := s.gen
	s.mu.Unlock()
	if !attached {
		return
	}
	sent := time.Now()
	if !s.RequestAck() {
		ping := make([]byte, 0, 128)
		ping = append(ping, "<iq type='get' id='"+pingID+"' from='"...)
		ping = wire.AppendEscapedAttr(ping, s.j.Domainpart())
		ping = append(ping, "' to='"...)
		ping = wire.AppendEscapedAttr(ping, s.jstr)
		ping = append(ping, "'><ping xmlns='urn:xmpp:ping'/></iq>"...)
		s.Send(ping)
	}
	time.AfterFunc(d, func() {
		s.mu.Lock()
		same := s.gen == gen && s.t != nil
		s.mu.Unlock()
		if same && time.Unix(0, in.lastRead.Load()).Before(sent) {
			s.logger().Info("probe unanswered; the link is dead")
			s.dropLink("connection-timeout")
		}
	})
}
