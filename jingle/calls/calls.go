// Package calls watches the calls the server routes — XEP-0353 Jingle
// Message Initiation and XEP-0166 Jingle sessions between full JIDs — and
// ends them for the other side when one side vanishes.
//
// A call is tracked from its <propose/> (or Jingle session-initiate) until
// session-terminate, JMI <finish/>, <retract/> or <reject/>. While it is
// active the server probes both parties' links (XEP-0198 <r/> or an
// XEP-0199 ping) every probe-interval, so a link that died without a FIN
// or RST is noticed. A party whose link is lost (stream closed, reset,
// probe unanswered, resource gone) and who has not resumed within the grace
// period makes the server send the other party a Jingle session-terminate
// with reason connectivity-error and a JMI <finish/>; the vanished party
// gets them too if it resumes later. A proposal to someone already in a
// tracked call is answered <reject><busy/></reject> when the busy policy is
// on; unanswered proposals are retracted after the ring timeout. Every call
// leaves a record (storage.Calls).
package calls

import (
	"context"
	"encoding/xml"
	"log/slog"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

// Namespaces.
const (
	NSJMI    = "urn:xmpp:jingle-message:0"
	NSJingle = "urn:xmpp:jingle:1"
	nsHints  = "urn:xmpp:hints"
)

// Options tune call supervision.
type Options struct {
	Grace         time.Duration // a lost party may resume within this
	ProbeInterval time.Duration // how often active calls' links are probed
	ProbeTimeout  time.Duration // how long a probe may stay unanswered
	RingTimeout   time.Duration // unanswered proposals end after this
	Busy          bool          // answer proposals to busy users with reject/busy
}

// Prober is implemented by sessions whose link can be probed (c2s).
type Prober interface {
	Probe(d time.Duration)
	Hibernating() bool
}

type state int

const (
	proposed state = iota
	active
	ended
)

type call struct {
	rec    storage.CallRecord
	caller jid.JID // full
	callee jid.JID // bare until answered, then full
	state  state
	ring   *time.Timer
	lost   map[string]*time.Timer // party full JID → grace timer
}

// Module supervises calls.
type Module struct {
	r     *router.Router
	store storage.Calls
	log   *slog.Logger
	opts  Options

	mu    sync.Mutex
	calls map[string]*call // by id
	stop  chan struct{}
}

// New registers call supervision on r.
func New(r *router.Router, store storage.Calls, log *slog.Logger, opts Options) *Module {
	if opts.Grace <= 0 {
		opts.Grace = 10 * time.Second
	}
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = 3 * time.Second
	}
	if opts.ProbeTimeout <= 0 {
		opts.ProbeTimeout = 5 * time.Second
	}
	if opts.RingTimeout <= 0 {
		opts.RingTimeout = 60 * time.Second
	}
	m := &Module{r: r, store: store, log: log, opts: opts, calls: map[string]*call{}, stop: make(chan struct{})}
	r.AddFeature(router.ToServer, NSJMI)
	r.OnOutbound(wire.KindMessage, m.outboundMessage)
	r.OnOutbound(wire.KindIQ, m.outboundIQ)
	r.OnSuspended(m.linkLost)
	r.OnUnbound(m.linkLost)
	go m.probeLoop()
	return m
}

// Close stops the probing loop.
func (m *Module) Close() { close(m.stop) }

type reasonEl struct {
	Any []struct {
		XMLName xml.Name
	} `xml:",any"`
}

func (r *reasonEl) name() string {
	if r == nil {
		return ""
	}
	for _, a := range r.Any {
		if a.XMLName.Local != "text" {
			return a.XMLName.Local
		}
	}
	return ""
}

type jmiEl struct {
	ID     string    `xml:"id,attr"`
	Desc   []mediaEl `xml:"description"`
	Reason *reasonEl `xml:"reason"`
}

type mediaEl struct {
	Media string `xml:"media,attr"`
}

type jmiMessage struct {
	Propose *jmiEl `xml:"urn:xmpp:jingle-message:0 propose"`
	Proceed *jmiEl `xml:"urn:xmpp:jingle-message:0 proceed"`
	Reject  *jmiEl `xml:"urn:xmpp:jingle-message:0 reject"`
	Retract *jmiEl `xml:"urn:xmpp:jingle-message:0 retract"`
	Finish  *jmiEl `xml:"urn:xmpp:jingle-message:0 finish"`
}

func hasJMI(st *wire.Stanza) bool {
	for _, n := range []string{"propose", "proceed", "reject", "retract", "finish"} {
		if st.HasChild(NSJMI, n) {
			return true
		}
	}
	return false
}

func (m *Module) outboundMessage(c *router.Context) bool {
	st := c.Stanza
	if c.Origin == nil || st.Type == "error" || !hasJMI(st) {
		return false
	}
	var msg jmiMessage
	if err := st.Decode(&msg); err != nil {
		return false
	}
	now := time.Now()
	switch {
	case msg.Propose != nil && msg.Propose.ID != "":
		return m.propose(c, msg.Propose, now)
	case msg.Proceed != nil:
		m.answered(msg.Proceed.ID, c.From, now)
	case msg.Reject != nil:
		reason := storage.CallDecline
		if msg.Reject.Reason.name() == "busy" {
			reason = storage.CallBusy
		}
		m.end(msg.Reject.ID, reason, nil)
	case msg.Retract != nil:
		m.end(msg.Retract.ID, storage.CallCancel, nil)
	case msg.Finish != nil:
		m.end(msg.Finish.ID, reasonOr(msg.Finish.Reason.name(), storage.CallSuccess), nil)
	}
	return false
}

func reasonOr(r, def string) string {
	switch r {
	case "success", "decline", "busy", "timeout", "connectivity-error", "cancel":
		return r
	case "":
		return def
	}
	return r
}

func (m *Module) propose(c *router.Context, p *jmiEl, now time.Time) bool {
	callee := c.To.Bare()
	if m.opts.Busy && m.inCall(callee.String(), p.ID) {
		m.log.Info("call: callee busy", "id", p.ID, "caller", c.From.String(), "callee", callee.String())
		m.rejectBusy(c, p.ID, callee)
		m.save(storage.CallRecord{ID: p.ID, Caller: c.From.String(), Callee: callee.String(), Media: media(p.Desc),
			Start: now, End: now, EndReason: storage.CallBusy})
		return true
	}
	m.mu.Lock()
	if _, dup := m.calls[p.ID]; dup {
		m.mu.Unlock()
		return false
	}
	cl := &call{caller: c.From, callee: callee, rec: storage.CallRecord{
		ID: p.ID, Caller: c.From.String(), Callee: callee.String(), Media: media(p.Desc), Start: now}}
	cl.ring = time.AfterFunc(m.opts.RingTimeout, func() { m.ringTimeout(p.ID) })
	m.calls[p.ID] = cl
	rec := cl.rec
	m.mu.Unlock()
	m.save(rec)
	return false
}

func media(d []mediaEl) []string {
	var out []string
	for _, x := range d {
		if x.Media != "" {
			out = append(out, x.Media)
		}
	}
	return out
}

// inCall reports whether bare is a party of an active call other than id.
func (m *Module) inCall(bare, id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for cid, cl := range m.calls {
		if cid != id && cl.state == active && (cl.caller.Bare().String() == bare || cl.callee.Bare().String() == bare) {
			return true
		}
	}
	return false
}

func (m *Module) answered(id string, by jid.JID, now time.Time) {
	m.mu.Lock()
	cl := m.calls[id]
	if cl == nil || cl.state != proposed {
		m.mu.Unlock()
		return
	}
	if cl.ring != nil {
		cl.ring.Stop()
	}
	cl.state = active
	cl.callee = by
	cl.rec.Callee, cl.rec.Answer = by.String(), now
	rec := cl.rec
	m.mu.Unlock()
	m.log.Info("call: answered", "id", id, "caller", rec.Caller, "callee", rec.Callee)
	m.save(rec)
}

// end closes a call with reason. notify, when not nil, sends the parties
// what the server says on the vanished party's behalf.
func (m *Module) end(id, reason string, notify func(cl *call)) {
	m.mu.Lock()
	cl := m.calls[id]
	if cl == nil || cl.state == ended {
		m.mu.Unlock()
		return
	}
	cl.state = ended
	if cl.ring != nil {
		cl.ring.Stop()
	}
	for _, t := range cl.lost {
		t.Stop()
	}
	delete(m.calls, id)
	cl.rec.End, cl.rec.EndReason = time.Now(), reason
	rec := cl.rec
	m.mu.Unlock()
	m.log.Info("call: ended", "id", id, "reason", reason)
	if notify != nil {
		notify(cl)
	}
	m.save(rec)
}

func (m *Module) save(rec storage.CallRecord) {
	if m.store == nil {
		return
	}
	if err := m.store.Put(context.Background(), rec); err != nil {
		m.log.Warn("call: storing the record failed", "id", rec.ID, "err", err)
	}
}

type jingleIQ struct {
	Jingle struct {
		Action  string    `xml:"action,attr"`
		SID     string    `xml:"sid,attr"`
		Reason  *reasonEl `xml:"reason"`
		Content []struct {
			Desc mediaEl `xml:"description"`
		} `xml:"content"`
	} `xml:"urn:xmpp:jingle:1 jingle"`
}

func (m *Module) outboundIQ(c *router.Context) bool {
	st := c.Stanza
	if c.Origin == nil || st.Type != "set" || st.PayloadNS != NSJingle || c.To.Resourcepart() == "" {
		return false
	}
	var q jingleIQ
	if err := st.Decode(&q); err != nil || q.Jingle.SID == "" {
		return false
	}
	now := time.Now()
	switch q.Jingle.Action {
	case "session-initiate":
		m.mu.Lock()
		if _, known := m.calls[q.Jingle.SID]; !known {
			var md []string
			for _, ct := range q.Jingle.Content {
				if ct.Desc.Media != "" {
					md = append(md, ct.Desc.Media)
				}
			}
			cl := &call{caller: c.From, callee: c.To, rec: storage.CallRecord{
				ID: q.Jingle.SID, Caller: c.From.String(), Callee: c.To.String(), Media: md, Start: now}}
			sid := q.Jingle.SID
			cl.ring = time.AfterFunc(m.opts.RingTimeout, func() { m.ringTimeout(sid) })
			m.calls[sid] = cl
			rec := cl.rec
			m.mu.Unlock()
			m.save(rec)
		} else {
			m.mu.Unlock()
		}
	case "session-accept":
		m.answered(q.Jingle.SID, c.From, now)
	case "session-terminate":
		m.end(q.Jingle.SID, reasonOr(q.Jingle.Reason.name(), storage.CallSuccess), nil)
	}
	return false
}

// ringTimeout ends a proposal nobody answered: the callee's devices get a
// retract, the caller a finish, both with reason timeout.
func (m *Module) ringTimeout(id string) {
	m.end(id, storage.CallTimeout, func(cl *call) {
		m.sendJMI(cl.caller, cl.callee.Bare(), "retract", cl.rec.ID, "timeout", "No answer")
		m.sendJMI(cl.callee.Bare(), cl.caller, "finish", cl.rec.ID, "timeout", "No answer")
		m.sendTerminate(cl.callee, cl.caller, cl.rec.ID, "timeout")
	})
}

func (m *Module) rejectBusy(c *router.Context, id string, callee jid.JID) {
	m.sendJMI(callee, c.From, "reject", id, "busy", "")
}

// sendJMI routes a JMI element from → to on the server's authority.
func (m *Module) sendJMI(from, to jid.JID, name, id, reason, text string) {
	b := []byte("<message type='chat' id='")
	b = wire.AppendEscapedAttr(b, "xmppd-"+name+"-"+id)
	b = append(b, "' from='"...)
	b = wire.AppendEscapedAttr(b, from.String())
	b = append(b, "' to='"...)
	b = wire.AppendEscapedAttr(b, to.String())
	b = append(b, "'><"+name+" xmlns='"+NSJMI+"' id='"...)
	b = wire.AppendEscapedAttr(b, id)
	b = append(b, "'><reason xmlns='"+NSJingle+"'><"+reason+"/>"...)
	if text != "" {
		b = append(b, "<text>"...)
		b = wire.AppendEscapedText(b, text)
		b = append(b, "</text>"...)
	}
	b = append(b, "</reason></"+name+"><store xmlns='"+nsHints+"'/></message>"...)
	m.route(from, to, b)
}

// sendTerminate routes a Jingle session-terminate from → to (only to a full JID).
func (m *Module) sendTerminate(from, to jid.JID, sid, reason string) {
	if to.Resourcepart() == "" || from.Resourcepart() == "" {
		return
	}
	b := []byte("<iq type='set' id='")
	b = wire.AppendEscapedAttr(b, "xmppd-terminate-"+sid)
	b = append(b, "' from='"...)
	b = wire.AppendEscapedAttr(b, from.String())
	b = append(b, "' to='"...)
	b = wire.AppendEscapedAttr(b, to.String())
	b = append(b, "'><jingle xmlns='"+NSJingle+"' action='session-terminate' sid='"...)
	b = wire.AppendEscapedAttr(b, sid)
	b = append(b, "'><reason><"+reason+"/></reason></jingle></iq>"...)
	m.route(from, to, b)
}

func (m *Module) route(from, to jid.JID, raw []byte) {
	st, err := wire.ParseElement(raw, wire.NSClient)
	if err != nil {
		m.log.Error("call: bad stanza", "err", err)
		return
	}
	m.r.Route(&router.Context{Context: context.Background(), Router: m.r, Stanza: st, From: from, To: to})
}

// party returns the session bound to a full JID, or nil.
func (m *Module) party(j jid.JID) router.Session {
	return m.r.Resource(j.Bare().String(), j.Resourcepart())
}

// attached reports whether the party has a live link.
func (m *Module) attached(j jid.JID) bool {
	s := m.party(j)
	if s == nil {
		return false
	}
	if p, ok := s.(Prober); ok {
		return !p.Hibernating()
	}
	return true
}

// linkLost starts the grace period for every active call of s.
func (m *Module) linkLost(s router.Session) {
	j := s.JID()
	m.mu.Lock()
	var ids []string
	for id, cl := range m.calls {
		if cl.state == active && (cl.caller.Equal(j) || cl.callee.Equal(j)) {
			ids = append(ids, id)
		}
	}
	m.mu.Unlock()
	for _, id := range ids {
		m.lose(id, j)
	}
}

// lose starts (once) the grace timer of party j in call id.
func (m *Module) lose(id string, j jid.JID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cl := m.calls[id]
	if cl == nil || cl.state != active {
		return
	}
	key := j.String()
	if _, running := cl.lost[key]; running {
		return
	}
	if cl.lost == nil {
		cl.lost = map[string]*time.Timer{}
	}
	m.log.Info("call: a party lost its link; grace period starts", "id", id, "party", key, "grace", m.opts.Grace)
	cl.lost[key] = time.AfterFunc(m.opts.Grace, func() { m.graceOver(id, j) })
}

func (m *Module) graceOver(id string, j jid.JID) {
	if m.attached(j) {
		m.mu.Lock()
		if cl := m.calls[id]; cl != nil {
			delete(cl.lost, j.String())
		}
		m.mu.Unlock()
		m.log.Info("call: the party came back in time", "id", id, "party", j.String())
		return
	}
	m.end(id, storage.CallConnectivityError, func(cl *call) {
		other := cl.caller
		if other.Equal(j) {
			other = cl.callee
		}
		// The other side hears it now; the vanished side when it resumes.
		m.sendTerminate(j, other, cl.rec.ID, "connectivity-error")
		m.sendJMI(j, other, "finish", cl.rec.ID, "connectivity-error", "The other party lost its connection")
		m.sendTerminate(other, j, cl.rec.ID, "connectivity-error")
		m.sendJMI(other, j, "finish", cl.rec.ID, "connectivity-error", "Your connection was lost")
	})
}

// probeLoop probes the links of both parties of every active call.
func (m *Module) probeLoop() {
	t := time.NewTicker(m.opts.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		type party struct {
			id string
			j  jid.JID
		}
		var parties []party
		m.mu.Lock()
		for id, cl := range m.calls {
			if cl.state == active {
				parties = append(parties, party{id, cl.caller}, party{id, cl.callee})
			}
		}
		m.mu.Unlock()
		for _, p := range parties {
			if !m.r.IsHost(p.j.Domainpart()) {
				continue // remote parties are their server's business
			}
			s := m.party(p.j)
			if s == nil {
				m.lose(p.id, p.j)
				continue
			}
			if pr, ok := s.(Prober); ok {
				if pr.Hibernating() {
					m.lose(p.id, p.j)
					continue
				}
				pr.Probe(m.opts.ProbeTimeout)
			}
		}
	}
}

// Active returns the ids of the calls going on (for tests and admin).
func (m *Module) Active() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for id, cl := range m.calls {
		if cl.state == active {
			ids = append(ids, id)
		}
	}
	return ids
}
