package push

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/dataform"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

// device is the notification state of one registration since its device
// went away: what it was told, and what waits for the throttle.
type device struct {
	reg    storage.PushRegistration
	count  int    // messages since the device went away
	sender string // of the last message
	body   string
	last   time.Time   // when the last message notification went out
	timer  *time.Timer // a held notification, sent when the throttle ends
	seen   [32]uint64  // digests of recent messages, not to count one twice
	nseen  int
}

// saw records digest and reports whether it was already there.
func (d *device) saw(digest uint64) bool {
	for _, s := range d.seen {
		if s == digest && digest != 0 {
			return true
		}
	}
	d.seen[d.nseen%len(d.seen)] = digest
	d.nseen++
	return false
}

// notice is one notification to publish.
type notice struct {
	reg    storage.PushRegistration
	count  int
	sender string
	body   string
	call   *call
}

// notify counts ev for the device of reg and publishes a notification now,
// or later when the throttle holds it back. Calls go out at once.
func (m *Module) notify(reg storage.PushRegistration, ev event) {
	k := keyOf(reg)
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	devs := m.devs[reg.Owner]
	if devs == nil {
		devs = map[regKey]*device{}
		m.devs[reg.Owner] = devs
	}
	d := devs[k]
	if d == nil || d.reg.ID != reg.ID {
		if d != nil && d.timer != nil {
			d.timer.Stop()
		}
		d = &device{reg: reg}
		devs[k] = d
	}
	if d.saw(ev.digest) {
		m.mu.Unlock()
		return
	}
	var n *notice
	now := time.Now()
	switch {
	case ev.call != nil:
		n = &notice{reg: reg, count: d.count, sender: ev.sender, call: ev.call}
	default:
		d.count++
		d.sender, d.body = ev.sender, ev.body
		switch {
		case d.timer != nil: // a held notification will carry this one
		case now.Sub(d.last) >= m.cfg.Throttle:
			d.last = now
			n = d.notice()
		default:
			d.timer = time.AfterFunc(m.cfg.Throttle-now.Sub(d.last), func() { m.flush(reg.Owner, k, d) })
		}
	}
	m.mu.Unlock()
	if n != nil {
		m.send(n)
	}
}

func (d *device) notice() *notice {
	return &notice{reg: d.reg, count: d.count, sender: d.sender, body: d.body}
}

// flush publishes what the throttle held for d.
func (m *Module) flush(owner string, k regKey, d *device) {
	m.mu.Lock()
	if m.devs[owner][k] != d || d.timer == nil {
		m.mu.Unlock()
		return // the device came back or was disabled meanwhile
	}
	d.timer = nil
	d.last = time.Now()
	n := d.notice()
	m.mu.Unlock()
	m.send(n)
}

// reset forgets the state of owner's devices that match (they came back,
// were enabled again or disabled): counts start over, held notifications
// are dropped.
func (m *Module) reset(owner string, match func(regKey, *device) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	devs := m.devs[owner]
	for k, d := range devs {
		if match(k, d) {
			if d.timer != nil {
				d.timer.Stop()
			}
			delete(devs, k)
		}
	}
	if len(devs) == 0 {
		delete(m.devs, owner)
	}
}

// send queues n on its device's lane: a device's notifications go out one
// at a time, in order.
func (m *Module) send(n *notice) {
	reg := n.reg
	if !m.devices.add(reg.Owner+"\x00"+strconv.FormatInt(reg.ID, 10), func() { m.publish(n) }) {
		m.log.Info("push: a notification was refused", "jid", reg.Owner, "service", reg.Service, "node", reg.Node, "call", n.call != nil)
	}
}

// publish sends n to the app server (XEP-0357 §6) and disables the
// registration when the app server answers with an error that says so.
// The built-in app server is called in-process; it takes no publish
// from the network.
func (m *Module) publish(n *notice) {
	reg := n.reg
	from, err1 := jid.Parse(reg.Owner)
	to, err2 := jid.Parse(reg.Service)
	if err1 != nil || err2 != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.Timeout)
	defer cancel()
	var typ, cond string
	if m.app != nil && m.app.Serves(to) {
		err := m.app.deliver(ctx, reg, n)
		var se *stanzaErr
		switch {
		case err == nil:
			return
		case errors.As(err, &se):
			typ, cond = se.typ, se.cond
		default:
			return // logged by the app server; transient
		}
	} else {
		ans, err := m.r.Query(ctx, from, to, "set", n.payload())
		if err != nil {
			m.log.Info("push: the app server did not answer", "jid", reg.Owner, "service", reg.Service, "err", err)
			return
		}
		if ans.Type != "error" {
			return
		}
		typ, cond = stanzaError(ans)
	}
	if !disables(typ, cond) {
		m.log.Info("push: the app server refused a notification for now", "jid", reg.Owner, "service", reg.Service, "error", typ+"/"+cond)
		return
	}
	removed, err := m.store.RemoveID(ctx, reg.Owner, reg.ID)
	m.invalidate(reg.Owner)
	if err != nil {
		m.log.Error("push: disabling a registration failed", "jid", reg.Owner, "err", err)
		return
	}
	m.reset(reg.Owner, func(_ regKey, d *device) bool { return d.reg.ID == reg.ID })
	if removed {
		m.log.Info("push: registration disabled after an app server error", "jid", reg.Owner, "service", reg.Service, "node", reg.Node, "error", typ+"/"+cond)
	}
}

// payload is the pubsub publish of XEP-0357 §6 (without the iq).
func (n *notice) payload() []byte {
	reg := n.reg
	b := make([]byte, 0, 512+len(reg.Form)+len(n.body))
	b = append(b, "<pubsub xmlns='"+nsPubSub+"'><publish node='"...)
	b = wire.AppendEscapedAttr(b, reg.Node)
	b = append(b, "'><item><notification xmlns='"+NS+"'>"...)
	summary := dataform.Form{Type: dataform.TypeSubmit, Fields: make([]dataform.Field, 0, 4)}
	summary.Fields = append(summary.Fields,
		dataform.Field{Var: dataform.FormTypeVar, Values: []string{nsSummary}},
		dataform.Field{Var: "message-count", Values: []string{strconv.Itoa(n.count)}})
	if n.sender != "" {
		summary.Fields = append(summary.Fields, dataform.Field{Var: "last-message-sender", Values: []string{n.sender}})
	}
	if n.body != "" {
		summary.Fields = append(summary.Fields, dataform.Field{Var: "last-message-body", Values: []string{n.body}})
	}
	b = summary.AppendXML(b)
	if c := n.call; c != nil {
		b = append(b, "<call xmlns='"+NSCall+"' id='"...)
		b = wire.AppendEscapedAttr(b, c.id)
		b = append(b, "' from='"...)
		b = wire.AppendEscapedAttr(b, c.from)
		b = append(b, '\'')
		if len(c.media) > 0 {
			b = append(b, " media='"...)
			b = wire.AppendEscapedAttr(b, strings.Join(c.media, " "))
			b = append(b, '\'')
		}
		b = append(b, "/>"...)
	}
	b = append(b, "</notification></item></publish>"...)
	if len(reg.Form) > 0 {
		b = append(b, "<publish-options>"...)
		b = append(b, reg.Form...)
		b = append(b, "</publish-options>"...)
	}
	return append(b, "</pubsub>"...)
}
