package calls_test

import (
	"context"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/jingle/calls"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

const timeout = 10 * time.Second

func withCalls(edit func(*calls.Config)) func(*conf.Config) {
	return func(c *conf.Config) {
		if edit != nil {
			edit(c.Module("calls").(*calls.Config))
		}
	}
}

func jmi(to, name, id, inner string) string {
	return "<message type='chat' to='" + to + "' id='m-" + name + "-" + id + "'><" + name +
		" xmlns='urn:xmpp:jingle-message:0' id='" + id + "'>" + inner + "</" + name + "><store xmlns='urn:xmpp:hints'/></message>"
}

const audio = "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/>"

func jmiFrom(name string) func(*wire.Stanza) bool {
	return func(s *wire.Stanza) bool { return s.Kind == wire.KindMessage && s.HasChild(calls.NSJMI, name) }
}

func terminate(s *wire.Stanza) bool {
	return s.Kind == wire.KindIQ && s.Type == "set" && client.Contains(s, "action='session-terminate'")
}

type env struct {
	*servertest.Env
	alice, bob *client.Client
	bobCfg     client.Config
	bobSM      string
}

func setup(t *testing.T, edit func(*calls.Config)) *env {
	e := servertest.Start(t, withCalls(edit))
	e.AddUser("alice", "secret-pw")
	e.AddUser("bob", "secret-pw")
	x := &env{Env: e}
	x.alice = e.Login("alice", "secret-pw", "phone")
	x.bobCfg = e.ClientConfig("bob", "secret-pw", "phone")
	x.bob = e.LoginWith(x.bobCfg)
	id, err := x.bob.EnableSM(timeout, true)
	if err != nil {
		t.Fatal(err)
	}
	x.bobSM = id
	for _, c := range []*client.Client{x.alice, x.bob} {
		_ = c.Send("<presence/>")
	}
	syncAll(t, x.alice, x.bob)
	return x
}

// syncAll waits until the server has handled what each client sent (its
// initial presence above all: a proposal to a user not yet available would
// go to offline storage instead of ringing).
func syncAll(t *testing.T, cs ...*client.Client) {
	t.Helper()
	for i, c := range cs {
		id := "sync-" + strconv.Itoa(i)
		if _, err := c.IQ(timeout, "<iq type='get' id='"+id+"' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", id); err != nil {
			t.Fatal(err)
		}
	}
}

// connect runs the JMI handshake: alice proposes, bob's phone proceeds.
func (x *env) connect(t *testing.T, id string) {
	t.Helper()
	_ = x.alice.Send(jmi("bob@localhost", "propose", id, audio))
	if _, err := x.bob.Expect(timeout, jmiFrom("propose")); err != nil {
		t.Fatalf("bob did not ring: %v", err)
	}
	_ = x.bob.Send(jmi("alice@localhost/phone", "proceed", id, ""))
	if _, err := x.alice.Expect(timeout, jmiFrom("proceed")); err != nil {
		t.Fatalf("alice got no proceed: %v", err)
	}
	waitFor(t, func() bool { return len(x.Srv.Calls.Active()) == 1 })
}

func waitFor(t *testing.T, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if f() {
			return
		}
	}
	t.Fatal("condition not reached")
}

func (x *env) record(t *testing.T, id string) (reason string, answered bool) {
	t.Helper()
	var out string
	var ans bool
	waitFor(t, func() bool {
		recs, err := x.Srv.Store.Calls().List(context.Background(), "", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.ID == id && !r.End.IsZero() {
				out, ans = r.EndReason, !r.Answer.IsZero()
				return true
			}
		}
		return false
	})
	return out, ans
}

func TestHangUpStoresSuccess(t *testing.T) {
	x := setup(t, nil)
	x.connect(t, "call-1")
	_ = x.alice.Send(jmi("bob@localhost/phone", "finish", "call-1", "<reason xmlns='urn:xmpp:jingle:1'><success/></reason>"))
	if reason, answered := x.record(t, "call-1"); reason != "success" || !answered {
		t.Fatalf("record: %q answered=%v", reason, answered)
	}
}

func TestDecline(t *testing.T) {
	x := setup(t, nil)
	_ = x.alice.Send(jmi("bob@localhost", "propose", "call-2", audio))
	if _, err := x.bob.Expect(timeout, jmiFrom("propose")); err != nil {
		t.Fatal(err)
	}
	_ = x.bob.Send(jmi("alice@localhost/phone", "reject", "call-2", "<reason xmlns='urn:xmpp:jingle:1'><decline/></reason>"))
	if _, err := x.alice.Expect(timeout, jmiFrom("reject")); err != nil {
		t.Fatal(err)
	}
	if reason, answered := x.record(t, "call-2"); reason != "decline" || answered {
		t.Fatalf("record: %q answered=%v", reason, answered)
	}
}

// A contact the callee shares presence with hears that the callee is
// busy; a stranger's call rings and ends unanswered, as if nobody were
// there to take it.
func TestBusy(t *testing.T) {
	x := setup(t, func(c *calls.Config) { c.RingTimeout = time.Second })
	x.connect(t, "call-3")
	x.AddUser("carol", "secret-pw")
	x.AddUser("dave", "secret-pw")
	if _, err := x.Srv.Store.Roster().Put(context.Background(), "bob@localhost",
		storage.RosterItem{JID: "carol@localhost", Subscription: storage.SubFrom}); err != nil {
		t.Fatal(err)
	}
	carol := x.Login("carol", "secret-pw", "pc")
	dave := x.Login("dave", "secret-pw", "pc")
	syncAll(t, carol, dave)

	_ = carol.Send(jmi("bob@localhost", "propose", "call-4", audio))
	st, err := carol.Expect(timeout, jmiFrom("reject"))
	if err != nil {
		t.Fatal(err)
	}
	if st.From != "bob@localhost" || !client.Contains(st, "<busy/>") {
		t.Fatalf("got %s", st.Raw)
	}
	// Carol's marker comes after her proposal: bob gets it, and no ringing
	// before it.
	_ = carol.Send("<message type='chat' to='bob@localhost/phone' id='marker-carol'><body>marker</body></message>")
	if st, err := x.bob.Expect(timeout, func(s *wire.Stanza) bool { return s.ID == "marker-carol" || jmiFrom("propose")(s) }); err != nil || st.ID != "marker-carol" {
		t.Fatalf("busy bob rang for a contact: %v %v", st, err)
	}
	if reason, _ := x.record(t, "call-4"); reason != "busy" {
		t.Fatalf("record: %q", reason)
	}

	_ = dave.Send(jmi("bob@localhost", "propose", "call-5", audio))
	if _, err := x.bob.Expect(timeout, func(s *wire.Stanza) bool { return jmiFrom("propose")(s) && client.Contains(s, "call-5") }); err != nil {
		t.Fatalf("a stranger's call did not ring: %v", err)
	}
	// A busy answer would have come at once, before the ring timeout's
	// finish: it would be among what dave receives up to the finish.
	for {
		st, err := dave.Next(timeout)
		if err != nil {
			t.Fatalf("dave got no finish: %v", err)
		}
		if jmiFrom("reject")(st) {
			t.Fatalf("a stranger was told bob is busy: %s", st.Raw)
		}
		if jmiFrom("finish")(st) {
			if !client.Contains(st, "<timeout/>") {
				t.Fatalf("dave: %s", st.Raw)
			}
			break
		}
	}
	if reason, answered := x.record(t, "call-5"); reason != "timeout" || answered {
		t.Fatalf("stranger's record: %q answered=%v", reason, answered)
	}
	if ids := x.Srv.Calls.Active(); len(ids) != 1 || ids[0] != "call-3" {
		t.Fatalf("active calls %v", ids)
	}
}

func TestRingTimeout(t *testing.T) {
	x := setup(t, func(c *calls.Config) { c.RingTimeout = time.Second })
	_ = x.alice.Send(jmi("bob@localhost", "propose", "call-5", audio))
	if _, err := x.bob.Expect(timeout, jmiFrom("propose")); err != nil {
		t.Fatal(err)
	}
	r, err := x.bob.Expect(timeout, jmiFrom("retract"))
	if err != nil || !client.Contains(r, "<timeout/>") {
		t.Fatalf("bob: %v %v", r, err)
	}
	f, err := x.alice.Expect(timeout, jmiFrom("finish"))
	if err != nil || !client.Contains(f, "<timeout/>") {
		t.Fatalf("alice: %v %v", f, err)
	}
	if reason, answered := x.record(t, "call-5"); reason != "timeout" || answered {
		t.Fatalf("record: %q answered=%v", reason, answered)
	}
}

// A party whose connection resets is given the grace period to resume;
// when it has not, the other side is told, while the vanished session
// still hibernates (the stream management timeout is far longer): the
// grace timer ended the call, nothing else.
func TestResetEndsCallWithinGrace(t *testing.T) {
	const grace = 2 * time.Second
	x := setup(t, func(c *calls.Config) { c.Grace = grace })
	x.connect(t, "call-6")
	start := time.Now()
	_ = x.bob.Abort() // connection reset, no stream close
	waitFor(t, func() bool { return x.Srv.Calls.InGrace() == 1 })
	st, err := x.alice.Expect(timeout+grace, terminate)
	if err != nil {
		t.Fatalf("no session-terminate: %v", err)
	}
	took := time.Since(start)
	if x.Srv.Router.Resource("bob@localhost", "phone") == nil {
		t.Fatal("bob's session is gone: the call was not ended by the grace period")
	}
	if !client.Contains(st, "<connectivity-error/>") || st.From != "bob@localhost/phone" {
		t.Fatalf("got %s", st.Raw)
	}
	if took < grace {
		t.Fatalf("session-terminate after %v, before the grace period of %v ended", took, grace)
	}
	if f, err := x.alice.Expect(timeout, jmiFrom("finish")); err != nil || !client.Contains(f, "connectivity-error") {
		t.Fatalf("no JMI finish: %v %v", f, err)
	}
	if reason, _ := x.record(t, "call-6"); reason != "connectivity-error" {
		t.Fatalf("record: %q", reason)
	}
	t.Logf("caller told after %v", took)
}

func TestResumeWithinGraceKeepsCall(t *testing.T) {
	x := setup(t, func(c *calls.Config) { c.Grace = 3 * time.Second })
	x.connect(t, "call-7")
	_ = x.bob.Abort()
	waitFor(t, func() bool { return x.Srv.Calls.InGrace() == 1 })
	for range x.bob.Incoming() {
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	b2, _, err := client.Resume(ctx, x.bobCfg, x.bobSM, x.bob.H())
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	// The grace timer runs out with bob back: the call goes on.
	waitFor(t, func() bool { return x.Srv.Calls.InGrace() == 0 })
	if len(x.Srv.Calls.Active()) != 1 {
		t.Fatal("the call is no longer tracked")
	}
	// Bob's marker reaches alice with no session-terminate before it.
	_ = b2.Send("<message type='chat' to='alice@localhost/phone' id='marker'><body>still here</body></message>")
	if st, err := x.alice.Expect(timeout, func(s *wire.Stanza) bool { return s.ID == "marker" || terminate(s) }); err != nil || st.ID != "marker" {
		t.Fatalf("call ended although bob resumed: %v %v", st, err)
	}
}

// freezer forwards TCP until frozen, then silently stops forwarding
// (no FIN, no RST): what a phone that lost its radio looks like.
type freezer struct {
	ln     net.Listener
	target string
	frozen atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func newFreezer(t *testing.T, target string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target}
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, s)
			f.mu.Unlock()
			go f.pipe(c, s)
			go f.pipe(s, c)
		}
	}()
	return f
}

func (f *freezer) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		if f.frozen.Load() {
			continue // swallowed: the network is gone, nobody is told
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

// A link that goes silent (no FIN, no RST) is found dead by the call's
// probes: the server gives up on it and keeps the session for resumption,
// the grace period starts with the call still on, and when it runs out the
// caller is told. Each step is seen as it happens; none is timed.
func TestSilentLinkEndsCall(t *testing.T) {
	e := servertest.Start(t, withCalls(func(c *calls.Config) {
		c.ProbeInterval = 500 * time.Millisecond
		c.ProbeTimeout = 3 * time.Second
		c.Grace = 2 * time.Second
	}))
	e.AddUser("alice", "secret-pw")
	e.AddUser("bob", "secret-pw")
	x := &env{Env: e}
	x.alice = e.Login("alice", "secret-pw", "phone")
	fz := newFreezer(t, e.StartTLS)
	x.bobCfg = e.ClientConfig("bob", "secret-pw", "phone")
	x.bobCfg.Addr = fz.ln.Addr().String()
	x.bob = e.LoginWith(x.bobCfg)
	if _, err := x.bob.EnableSM(timeout, true); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{x.alice, x.bob} {
		_ = c.Send("<presence/>")
	}
	syncAll(t, x.alice, x.bob)
	x.connect(t, "call-8")
	sess := x.Srv.Router.Resource("bob@localhost", "phone")
	bob, ok := sess.(calls.Prober)
	if !ok || bob.Hibernating() {
		t.Fatal("bob's session hibernates before his link froze")
	}
	start := time.Now()
	fz.frozen.Store(true)
	// Nobody closes the frozen connection: only an unanswered probe can
	// make the server give up on it, and then the session hibernates. A
	// party in its grace period means the call is still on (an ended call
	// is no longer tracked).
	waitFor(t, func() bool { return x.Srv.Calls.InGrace() == 1 })
	if !bob.Hibernating() {
		t.Fatal("grace period started while bob's link was still attached")
	}
	st, err := x.alice.Expect(timeout, terminate)
	if err != nil {
		t.Fatalf("no session-terminate: %v", err)
	}
	if !client.Contains(st, "<connectivity-error/>") || st.From != "bob@localhost/phone" {
		t.Fatalf("got %s", st.Raw)
	}
	if x.Srv.Router.Resource("bob@localhost", "phone") != sess {
		t.Fatal("bob's session is gone: the call was not ended by the grace period")
	}
	if f, err := x.alice.Expect(timeout, jmiFrom("finish")); err != nil || !client.Contains(f, "connectivity-error") {
		t.Fatalf("no JMI finish: %v %v", f, err)
	}
	if reason, _ := x.record(t, "call-8"); reason != "connectivity-error" {
		t.Fatalf("record: %q", reason)
	}
	t.Logf("caller told after %v", time.Since(start))
}
