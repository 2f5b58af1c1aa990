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
// on and the caller may see the callee's presence (a roster subscription);
// a stranger's proposal rings like any other. Unanswered proposals are
// retracted after the ring timeout. Every call leaves a record
// (storage.Calls).
//
// A call is known by its caller's bare JID and its id (the id is the
// caller's client's choice, so it is unique per caller only), and only its
// two parties change it: a <proceed/>, <reject/> or session-accept counts
// when the callee sends it to the caller, a <retract/> when the caller
// sends it to the callee, a <finish/> or session-terminate when either
// sends it to the other.
package calls

import (
	"context"
	"encoding/xml"
	"errors"
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
	// Roster tells who may hear that a user is busy: only contacts the
	// user shares presence with (subscription from or both). Nil: nobody.
	Roster storage.Roster
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

// key names a call: the caller's bare JID and the call's id.
type key struct{ caller, id string }

func keyOf(caller jid.JID, id string) key { return key{caller.Bare().String(), id} }

type call struct {
	key    key
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
	calls map[key]*call
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
	m := &Module{r: r, store: store, log: log, opts: opts, calls: map[key]*call{}, stop: make(chan struct{})}
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
		if k, ok := m.find(c.From, c.To, msg.Proceed.ID, byCallee); ok {
			m.answered(k, c.From, now)
		}
	case msg.Reject != nil:
		reason := storage.CallDecline
		if msg.Reject.Reason.name() == "busy" {
			reason = storage.CallBusy
		}
		if k, ok := m.find(c.From, c.To, msg.Reject.ID, byCallee); ok {
			m.end(k, reason, nil)
		}
	case msg.Retract != nil:
		if k, ok := m.find(c.From, c.To, msg.Retract.ID, byCaller); ok {
			m.end(k, storage.CallCancel, nil)
		}
	case msg.Finish != nil:
		if k, ok := m.find(c.From, c.To, msg.Finish.ID, byCaller|byCallee); ok {
			m.end(k, reasonOr(msg.Finish.Reason.name(), storage.CallSuccess), nil)
		}
	}
	return false
}

// Who may change a call.
const (
	byCaller = 1 << iota // the caller, to the callee
	byCallee             // the callee, to the caller
)

// find returns the call id that from may change by sending to to: as its
// caller (key from+id, sent to the callee) or as its callee (key to+id,
// sent by the callee). Anyone else's element for that id changes nothing.
func (m *Module) find(from, to jid.JID, id string, who int) (key, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if who&byCaller != 0 {
		k := keyOf(from, id)
		if cl := m.calls[k]; cl != nil && cl.callee.Bare().Equal(to.Bare()) {
			return k, true
		}
	}
	if who&byCallee != 0 {
		k := keyOf(to, id)
		if cl := m.calls[k]; cl != nil && cl.callee.Bare().Equal(from.Bare()) {
			return k, true
		}
	}
	return key{}, false
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
	k := keyOf(c.From, p.ID)
	if m.opts.Busy && m.inCall(callee.String(), k) && m.contact(c, callee, c.From.Bare()) {
		m.log.Info("call: callee busy", "id", p.ID, "caller", c.From.String(), "callee", callee.String())
		m.rejectBusy(c, p.ID, callee)
		m.mu.Lock()
		_, dup := m.calls[k]
		m.mu.Unlock()
		if !dup { // the caller's own call with this id keeps its record
			m.save(storage.CallRecord{ID: p.ID, Caller: c.From.String(), Callee: callee.String(), Media: media(p.Desc),
				Start: now, End: now, EndReason: storage.CallBusy})
		}
		return true
	}
	m.mu.Lock()
	if _, dup := m.calls[k]; dup {
		m.mu.Unlock()
		return false
	}
	cl := &call{key: k, caller: c.From, callee: callee, rec: storage.CallRecord{
		ID: p.ID, Caller: c.From.String(), Callee: callee.String(), Media: media(p.Desc), Start: now}}
	cl.ring = time.AfterFunc(m.opts.RingTimeout, func() { m.ringTimeout(k) })
	m.calls[k] = cl
	rec := cl.rec
	m.mu.Unlock()
	m.save(rec)
	return false
}

// contact reports whether the callee shares its presence with the caller
// (roster subscription from or both; the same account counts): only such
// a caller may learn that the callee is in a call. To anyone else a busy
// callee looks like one who does not answer.
func (m *Module) contact(ctx context.Context, callee, caller jid.JID) bool {
	if callee.Equal(caller) {
		return true
	}
	if m.opts.Roster == nil || !m.r.IsHost(callee.Domainpart()) {
		return false
	}
	it, err := m.opts.Roster.Item(ctx, callee.String(), caller.String())
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			m.log.Warn("call: reading a roster item failed", "owner", callee.String(), "err", err)
		}
		return false
	}
	return it.Subscription == storage.SubFrom || it.Subscription == storage.SubBoth
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

// inCall reports whether bare is a party of an active call other than k.
func (m *Module) inCall(bare string, k key) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for ck, cl := range m.calls {
		if ck != k && cl.state == active && (cl.caller.Bare().String() == bare || cl.callee.Bare().String() == bare) {
			return true
		}
	}
	return false
}

func (m *Module) answered(k key, by jid.JID, now time.Time) {
	m.mu.Lock()
	cl := m.calls[k]
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
	m.log.Info("call: answered", "id", k.id, "caller", rec.Caller, "callee", rec.Callee)
	m.save(rec)
}

// end closes a call with reason. notify, when not nil, sends the parties
// what the server says on the vanished party's behalf.
func (m *Module) end(k key, reason string, notify func(cl *call)) {
	m.mu.Lock()
	cl := m.calls[k]
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
	delete(m.calls, k)
	cl.rec.End, cl.rec.EndReason = time.Now(), reason
	rec := cl.rec
	m.mu.Unlock()
	m.log.Info("call: ended", "id", k.id, "caller", k.caller, "reason", reason)
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
		k := keyOf(c.From, q.Jingle.SID)
		m.mu.Lock()
		if _, known := m.calls[k]; !known {
			var md []string
			for _, ct := range q.Jingle.Content {
				if ct.Desc.Media != "" {
					md = append(md, ct.Desc.Media)
				}
			}
			cl := &call{key: k, caller: c.From, callee: c.To, rec: storage.CallRecord{
				ID: q.Jingle.SID, Caller: c.From.String(), Callee: c.To.String(), Media: md, Start: now}}
			cl.ring = time.AfterFunc(m.opts.RingTimeout, func() { m.ringTimeout(k) })
			m.calls[k] = cl
			rec := cl.rec
			m.mu.Unlock()
			m.save(rec)
		} else {
			m.mu.Unlock()
		}
	case "session-accept":
		if k, ok := m.find(c.From, c.To, q.Jingle.SID, byCallee); ok {
			m.answered(k, c.From, now)
		}
	case "session-terminate":
		if k, ok := m.find(c.From, c.To, q.Jingle.SID, byCaller|byCallee); ok {
			m.end(k, reasonOr(q.Jingle.Reason.name(), storage.CallSuccess), nil)
		}
	}
	return false
}

// ringTimeout ends a proposal nobody answered: the callee's devices get a
// retract, the caller a finish, both with reason timeout.
func (m *Module) ringTimeout(k key) {
	m.end(k, storage.CallTimeout, func(cl *call) {
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
	var ks []key
	for k, cl := range m.calls {
		if cl.state == active && (cl.caller.Equal(j) || cl.callee.Equal(j)) {
			ks = append(ks, k)
		}
	}
	m.mu.Unlock()
	for _, k := range ks {
		m.lose(k, j)
	}
}

// lose starts (once) the grace timer of party j in call k.
func (m *Module) lose(k key, j jid.JID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cl := m.calls[k]
	if cl == nil || cl.state != active {
		return
	}
	party := j.String()
	if _, running := cl.lost[party]; running {
		return
	}
	if cl.lost == nil {
		cl.lost = map[string]*time.Timer{}
	}
	m.log.Info("call: a party lost its link; grace period starts", "id", k.id, "party", party, "grace", m.opts.Grace)
	cl.lost[party] = time.AfterFunc(m.opts.Grace, func() { m.graceOver(k, j) })
}

func (m *Module) graceOver(k key, j jid.JID) {
	if m.attached(j) {
		m.mu.Lock()
		if cl := m.calls[k]; cl != nil {
			delete(cl.lost, j.String())
		}
		m.mu.Unlock()
		m.log.Info("call: the party came back in time", "id", k.id, "party", j.String())
		return
	}
	m.end(k, storage.CallConnectivityError, func(cl *call) {
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
			k key
			j jid.JID
		}
		var parties []party
		m.mu.Lock()
		for k, cl := range m.calls {
			if cl.state == active {
				parties = append(parties, party{k, cl.caller}, party{k, cl.callee})
			}
		}
		m.mu.Unlock()
		for _, p := range parties {
			if !m.r.IsHost(p.j.Domainpart()) {
				continue // remote parties are their server's business
			}
			s := m.party(p.j)
			if s == nil {
				m.lose(p.k, p.j)
				continue
			}
			if pr, ok := s.(Prober); ok {
				if pr.Hibernating() {
					m.lose(p.k, p.j)
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
	for k, cl := range m.calls {
		if cl.state == active {
			ids = append(ids, k.id)
		}
	}
	return ids
}
