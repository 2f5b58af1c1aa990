package roster_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/wire"
)

// ringPeer is one user of a subscription ring: it answers every
// subscription request with 'subscribed' (and its own 'subscribe' unless it
// asked already), as the perf harness's provisioning does, and tracks its
// roster from roster pushes.
type ringPeer struct {
	c    *client.Client
	bare string

	mu    sync.Mutex
	asked map[string]bool
	both  map[string]bool
	want  int
	done  chan struct{} // closed when want items are 'both'
	first chan struct{} // closed at the first 'both' item
}

func (p *ringPeer) ask(to string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.asked[to] || p.both[to] {
		return ""
	}
	p.asked[to] = true
	return "<presence to='" + to + "' type='subscribe'/>"
}

func (p *ringPeer) run() {
	for st := range p.c.Incoming() {
		switch {
		case st.Kind == wire.KindPresence && st.Type == "subscribe":
			from, _, _ := strings.Cut(st.From, "/")
			_ = p.c.Send("<presence to='" + from + "' type='subscribed'/>" + p.ask(from))
		case st.Kind == wire.KindIQ && st.Type == "set" && strings.Contains(string(st.Raw), "jabber:iq:roster"):
			_ = p.c.Send("<iq type='result' id='" + st.ID + "'/>")
			raw := string(st.Raw)
			i := strings.Index(raw, "<item ")
			if i < 0 {
				continue
			}
			item := raw[i:]
			jid := attrOf(item, "jid")
			p.mu.Lock()
			if attrOf(item, "subscription") == "both" && !p.both[jid] {
				p.both[jid] = true
				if len(p.both) == 1 {
					close(p.first)
				}
				if len(p.both) == p.want {
					close(p.done)
				}
			}
			p.mu.Unlock()
		}
	}
}

// attrOf reads attribute name of the first element in s (test helper: the
// server writes attributes in single quotes).
func attrOf(s, name string) string {
	s = s[:strings.IndexByte(s, '>')]
	i := strings.Index(s, " "+name+"='")
	if i < 0 {
		return ""
	}
	s = s[i+len(name)+3:]
	return s[:strings.IndexByte(s, '\'')]
}

// TestSubscriptionRing runs the perf harness's roster provisioning on a
// small scale, through real sockets and the real SQLite store: a ring of
// users, each subscribing to its next contacts at once, everybody
// answering. Every pair must end 'both' on both sides, with nothing left
// asking or pending. The second half of the ring sends its subscriptions
// only after a pair of the first half has completed: pairs complete while
// the flood is still being sent.
func TestSubscriptionRing(t *testing.T) {
	const (
		users   = 24
		half    = 3 // each user subscribes to the next 3: 6 contacts each
		timeout = 60 * time.Second
	)
	e := servertest.Start(t, nil)
	peers := make([]*ringPeer, users)
	for i := range users {
		name := fmt.Sprintf("ring%d", i)
		bare := e.AddUser(name, "pw-ring-1")
		c := e.Login(name, "pw-ring-1", "r")
		if _, err := c.IQ(timeout, "<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>", "r"); err != nil {
			t.Fatal(err)
		}
		_ = c.Send("<presence/>")
		if _, err := c.Expect(timeout, func(s *wire.Stanza) bool {
			return s.Kind == wire.KindPresence && s.Type == "" && strings.HasPrefix(s.From, bare+"/")
		}); err != nil {
			t.Fatalf("%s: own presence: %v", name, err)
		}
		peers[i] = &ringPeer{c: c, bare: bare, asked: map[string]bool{}, both: map[string]bool{},
			want: 2 * half, done: make(chan struct{}), first: make(chan struct{})}
	}
	for _, p := range peers {
		go p.run()
	}
	flood := func(from, to int) {
		for i := from; i < to; i++ {
			var b strings.Builder
			for d := 1; d <= half; d++ {
				b.WriteString(peers[i].ask(peers[(i+d)%users].bare))
			}
			_ = peers[i].c.Send(b.String())
		}
	}
	flood(0, users/2)
	select {
	case <-peers[1].first: // user 1 completes with user 0 (or 2) first
	case <-time.After(timeout):
		t.Fatal("no pair of the first half completed")
	}
	flood(users/2, users)
	for i, p := range peers {
		select {
		case <-p.done:
		case <-time.After(timeout):
			p.mu.Lock()
			t.Fatalf("user %d: %d of %d items 'both'", i, len(p.both), p.want)
		}
	}
	// What is stored: fresh logins read every roster.
	for i := range users {
		c := e.Login(fmt.Sprintf("ring%d", i), "pw-ring-1", "check")
		res, err := c.IQ(timeout, "<iq type='get' id='c'><query xmlns='jabber:iq:roster'/></iq>", "c")
		if err != nil {
			t.Fatal(err)
		}
		raw := string(res.Raw)
		if n := strings.Count(raw, "subscription='both'"); n != 2*half || strings.Contains(raw, "ask=") {
			t.Errorf("user %d: stored roster %s", i, raw)
		}
		_ = c.Close()
	}
}
