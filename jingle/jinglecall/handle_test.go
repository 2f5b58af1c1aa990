package jinglecall

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/wire"
)

// recorder is a Conn that keeps what the phone sends.
type recorder struct {
	mu   sync.Mutex
	sent []string
}

func (r *recorder) Send(raw string) error {
	r.mu.Lock()
	r.sent = append(r.sent, raw)
	r.mu.Unlock()
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sent)
}

func (r *recorder) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.sent, "\n")
}

func stanza(t *testing.T, raw string) *wire.Stanza {
	t.Helper()
	st, err := wire.ParseElement([]byte(raw), wire.NSClient)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func ringing(t *testing.T) (*Phone, *recorder, *Call) {
	t.Helper()
	rec := &recorder{}
	calls := make(chan *Call, 1)
	p := New(rec, Config{JID: "bob@x/tablet", OnIncoming: func(c *Call) { calls <- c }})
	t.Cleanup(p.Close)
	if !p.Handle(stanza(t, `<message type='chat' from='alice@x/pc' to='bob@x'><propose xmlns='urn:xmpp:jingle-message:0' id='u1'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose><store xmlns='urn:xmpp:hints'/></message>`)) {
		t.Fatal("propose not taken")
	}
	c := <-calls
	if c.State() != StateRinging || c.Peer() != "alice@x/pc" || c.Media()[0] != "audio" {
		t.Fatalf("call %v %s %v", c.State(), c.Peer(), c.Media())
	}
	if !strings.Contains(rec.all(), "<ringing xmlns='urn:xmpp:jingle-message:0' id='u1'>") || !strings.Contains(rec.all(), "to='alice@x/pc'") {
		t.Fatalf("no ringing: %s", rec.all())
	}
	return p, rec, c
}

func ended(t *testing.T, c *Call) Reason {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("still %v", c.State())
	}
	return c.Reason()
}

// Another device of the account answered: a carbon of its <proceed/>
// (or an old client's <accept/>) stops the ringing here, silently.
func TestAnsweredElsewhere(t *testing.T) {
	p, rec, c := ringing(t)
	if !p.Handle(stanza(t, `<message from='bob@x' to='bob@x/tablet' type='chat'><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='bob@x/phone' to='alice@x/pc' type='chat'><proceed xmlns='urn:xmpp:jingle-message:0' id='u1'/></message></forwarded></sent></message>`)) {
		t.Fatal("carbon not taken")
	}
	if r := ended(t, c); r.Condition != ReasonCancel {
		t.Errorf("reason %+v", r)
	}
	if strings.Contains(rec.all(), "reject") || strings.Contains(rec.all(), "finish") {
		t.Errorf("told the caller: %s", rec.all())
	}

	p2, _, c2 := ringing(t)
	p2.Handle(stanza(t, `<message from='bob@x/phone' to='bob@x' type='chat'><accept xmlns='urn:xmpp:jingle-message:0' id='u1'/></message>`))
	if r := ended(t, c2); r.Condition != ReasonCancel {
		t.Errorf("accept: reason %+v", r)
	}
}

// Jingle iqs for unknown sessions or from someone else are refused;
// JMI from strangers is ignored.
func TestUnknownSession(t *testing.T) {
	p, rec, c := ringing(t)
	p.Handle(stanza(t, `<iq type='set' id='j1' from='mallory@x/m' to='bob@x/tablet'><jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='u1'/></iq>`))
	p.Handle(stanza(t, `<iq type='set' id='j2' from='alice@x/pc' to='bob@x/tablet'><jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='nope'/></iq>`))
	p.Handle(stanza(t, `<message type='chat' from='mallory@x/m' to='bob@x'><retract xmlns='urn:xmpp:jingle-message:0' id='u1'/></message>`))
	out := rec.all()
	for _, id := range []string{"j1", "j2"} {
		if !strings.Contains(out, "<iq type='error' id='"+id+"'") {
			t.Errorf("%s not refused: %s", id, out)
		}
	}
	if !strings.Contains(out, "<unknown-session xmlns='urn:xmpp:jingle:errors:1'/>") {
		t.Errorf("no unknown-session: %s", out)
	}
	if c.State() != StateRinging {
		t.Errorf("a stranger's retract ended the call: %v", c.State())
	}
	// The caller's retract ends it, and the phone says nothing back.
	n := rec.count()
	p.Handle(stanza(t, `<message type='chat' from='alice@x/pc' to='bob@x'><retract xmlns='urn:xmpp:jingle-message:0' id='u1'><reason xmlns='urn:xmpp:jingle:1'><cancel/><text>oops</text></reason></retract></message>`))
	if r := ended(t, c); r.Condition != ReasonCancel || r.Text != "oops" {
		t.Errorf("retract: %+v", r)
	}
	if rec.count() != n {
		t.Errorf("answered a retract: %s", rec.all())
	}
}
