package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/wire"
)

// Closed-loop chat (-sm-window N), as a mobile client with XEP-0198 sends:
// every session enables stream management; a sender writes a message with
// an <r/> after it, and stops while N of its messages are unacknowledged,
// so a server that acknowledges late slows its senders down instead of
// their messages waiting in socket buffers. Each message carries the time
// it was written to the socket (delivery latency is write → receipt) and
// an id naming its sender and sequence number, so that at the end every
// acknowledged message can be checked off at its recipient: one missing
// is lost (the server promised it was safe), one seen twice a duplicate.

// smSender is one session's sending side.
type smSender struct {
	c     *client.Client
	mu    sync.Mutex
	wrote []time.Time // write time of message seq, at index seq-1
	acked uint32      // messages 1..acked are acknowledged
	got   []uint8     // times message seq was received, at index seq-1
	ackCh chan struct{}
	// blocked is the time spent waiting for the window to open.
	blocked time.Duration
}

// ackTo records an <a h/>: the newly covered messages' ack latencies are
// appended to lats.
func (s *smSender) ackTo(h uint32, now time.Time, lats []time.Duration) []time.Duration {
	s.mu.Lock()
	for ; s.acked < h && int(s.acked) < len(s.wrote); s.acked++ {
		lats = append(lats, now.Sub(s.wrote[s.acked]))
	}
	s.mu.Unlock()
	select {
	case s.ackCh <- struct{}{}:
	default:
	}
	return lats
}

func (s *smSender) unacked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.wrote) - int(s.acked)
}

// smChat is the state shared by the senders and receivers of one run.
type smChat struct {
	senders             []*smSender
	stop                time.Time
	delivered, inWindow atomic.Int64 // receipts; those before stop
	bounced, distinct   atomic.Int64
	mu                  sync.Mutex
	lats, ackLats       []time.Duration
}

// msgID names message seq of sender i.
func msgID(i int, seq uint32) string {
	return "b" + strconv.Itoa(i) + "-" + strconv.FormatUint(uint64(seq), 10)
}

// parseMsgID is msgID's inverse.
func parseMsgID(id string) (i int, seq uint32, ok bool) {
	a, b, found := strings.Cut(strings.TrimPrefix(id, "b"), "-")
	if !found || !strings.HasPrefix(id, "b") {
		return 0, 0, false
	}
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.ParseUint(b, 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return i, uint32(n), true
}

// receive reads session i's stream until done: acknowledgements for its
// sender, messages for the tally.
func (r *smChat) receive(i int, done <-chan struct{}) {
	c, me := r.senders[i].c, r.senders[i]
	var lats, ackLats []time.Duration
	defer func() {
		r.mu.Lock()
		r.lats, r.ackLats = append(r.lats, lats...), append(r.ackLats, ackLats...)
		r.mu.Unlock()
	}()
	for {
		var st *wire.Stanza
		select {
		case s, ok := <-c.Incoming():
			if !ok {
				return
			}
			st = s
		case <-done:
			return
		}
		now := time.Now()
		if st.NS == client.NSSM && st.Name == "a" {
			ackLats = me.ackTo(c.Acked(), now, ackLats)
			continue
		}
		if st.Kind != wire.KindMessage {
			continue
		}
		if st.Type == "error" {
			r.bounced.Add(1)
			continue
		}
		ts, ok := stamp(st.Raw)
		from, seq, okID := parseMsgID(st.ID)
		if !ok || !okID || from < 0 || from >= len(r.senders) || seq == 0 {
			continue
		}
		lats = append(lats, now.Sub(time.Unix(0, ts)))
		r.delivered.Add(1)
		if now.Before(r.stop) {
			r.inWindow.Add(1)
		}
		s := r.senders[from]
		s.mu.Lock()
		for len(s.got) < int(seq) {
			s.got = append(s.got, 0)
		}
		if s.got[seq-1]++; s.got[seq-1] == 1 {
			r.distinct.Add(1)
		}
		s.mu.Unlock()
	}
}

// send is sender i's loop: one message per interval to a random other
// session, never more than window unacknowledged.
func (r *smChat) send(i int, o options, stopCh <-chan struct{}) {
	s := r.senders[i]
	pad := strings.Repeat("x", max(o.size-20, 0))
	time.Sleep(time.Duration(rand.Int64N(int64(o.interval))))
	t := time.NewTicker(o.interval)
	defer t.Stop()
	for time.Now().Before(r.stop) {
		if s.unacked() >= o.smWindow {
			t0 := time.Now()
			for s.unacked() >= o.smWindow {
				select {
				case <-s.ackCh:
				case <-stopCh:
					s.blocked += time.Since(t0)
					return
				}
			}
			s.blocked += time.Since(t0)
		}
		j := rand.IntN(len(r.senders) - 1)
		if j >= i {
			j++
		}
		s.mu.Lock()
		seq := uint32(len(s.wrote) + 1)
		now := time.Now()
		s.wrote = append(s.wrote, now)
		s.mu.Unlock()
		body := strconv.FormatInt(now.UnixNano(), 10) + " " + pad
		raw := "<message type='chat' to='" + r.senders[j].c.JID + "' id='" + msgID(i, seq) + "'><body>" + body +
			"</body></message><r xmlns='" + client.NSSM + "'/>"
		if _, err := s.c.SendStanza(raw); err != nil {
			return
		}
		select {
		case <-t.C:
		case <-stopCh:
			return
		}
	}
}

// smSent, when a test sets it, runs once the senders have stopped, before
// the drain.
var smSent func(*smChat)

// chatSM runs the closed-loop chat and fills sum.
func chatSM(o options, cs []*client.Client, sum *summary) error {
	if len(cs) < 2 {
		return nil
	}
	// Presence first: stanzas sent after <enable/> are the messages only,
	// so that the server's h counts them and nothing else.
	for _, c := range cs {
		_ = c.Send("<presence/>")
	}
	r := &smChat{senders: make([]*smSender, len(cs))}
	for i, c := range cs {
		if _, err := c.EnableSM(60*time.Second, false); err != nil {
			return fmt.Errorf("enabling stream management for %s: %w", c.JID, err)
		}
		r.senders[i] = &smSender{c: c, ackCh: make(chan struct{}, 1)}
	}
	done := make(chan struct{})
	var rwg sync.WaitGroup
	for i := range cs {
		rwg.Add(1)
		go func(i int) { defer rwg.Done(); r.receive(i, done) }(i)
	}
	start := time.Now()
	r.stop = start.Add(o.duration)
	stopCh := make(chan struct{})
	stopT := time.AfterFunc(o.duration, func() { close(stopCh) })
	defer stopT.Stop()
	var swg sync.WaitGroup
	for i := range cs {
		swg.Add(1)
		go func(i int) { defer swg.Done(); r.send(i, o, stopCh) }(i)
	}
	swg.Wait()
	elapsed := time.Since(start)
	if smSent != nil {
		smSent(r)
	}

	// Drain: ask every sender's last ack, then wait until everything sent
	// is acknowledged and received (or the drain time passes).
	var sent int64
	var blocked time.Duration
	for _, s := range r.senders {
		_ = s.c.Send("<r xmlns='" + client.NSSM + "'/>")
		s.mu.Lock()
		sent += int64(len(s.wrote))
		blocked += s.blocked
		s.mu.Unlock()
	}
	deadline := time.Now().Add(o.drain)
	allAcked := func() bool {
		for _, s := range r.senders {
			if s.unacked() > 0 {
				return false
			}
		}
		return true
	}
	for time.Now().Before(deadline) && !(allAcked() && r.distinct.Load() >= sent) {
		time.Sleep(100 * time.Millisecond)
	}
	sum.DrainedAllAcked = allAcked()
	close(done)
	rwg.Wait()

	var acked, lost, dup int64
	for _, s := range r.senders {
		s.mu.Lock()
		acked += int64(s.acked)
		for seq := 0; seq < int(s.acked); seq++ {
			if seq >= len(s.got) || s.got[seq] == 0 {
				lost++
			}
		}
		for _, g := range s.got {
			if g > 1 {
				dup += int64(g - 1)
			}
		}
		s.mu.Unlock()
	}
	sum.SMWindow = o.smWindow
	sum.OfferedPerSec = float64(len(cs)) / o.interval.Seconds()
	sum.Sent, sum.SentPerSec = sent, float64(sent)/elapsed.Seconds()
	sum.Acked, sum.Lost, sum.Duplicates = acked, lost, dup
	sum.Delivered, sum.Bounced = r.delivered.Load(), r.bounced.Load()
	sum.DeliveredPerSec = float64(r.inWindow.Load()) / elapsed.Seconds()
	sum.LatP50ms, sum.LatP99ms = percentile(r.lats, 0.5), percentile(r.lats, 0.99)
	sum.AckP50ms, sum.AckP99ms = percentile(r.ackLats, 0.5), percentile(r.ackLats, 0.99)
	sum.WindowBlocked = blocked.Seconds() / (elapsed.Seconds() * float64(len(cs)))
	return nil
}
