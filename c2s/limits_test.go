package c2s_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	gosync "sync"
	"syscall"
	"testing"
	"time"

	"github.com/xmppd/xmppd/c2s"
	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/wire"
)

// TestPreAuthStanzaSize: before authentication an element above
// pre-auth-stanza-size (10 KiB by default) ends the stream with
// policy-violation, while a long-username SCRAM-SHA-512-PLUS login still
// fits and, after it, stanzas up to max-stanza-size pass.
func TestPreAuthStanzaSize(t *testing.T) {
	e := servertest.Start(t, nil)
	register := func(pad int) string {
		return "<iq type='get' id='r1'><query xmlns='jabber:iq:register'/><x xmlns='urn:pad'>" + strings.Repeat("a", pad) + "</x></iq>"
	}
	// Below the pre-auth limit: the registration request is read (and
	// refused, as registration is off).
	wantStreamError(t, rawSession(t, e.Plain, header, register(9000)), "not-authorized")
	// Above it: policy-violation before the element is even complete.
	wantStreamError(t, rawSession(t, e.Plain, header, register(11000)), "policy-violation")

	// The longest username (1023 bytes) with channel binding fits.
	long := strings.Repeat("u", 1023)
	e.AddUser(long, "pw-long-user")
	cfg := e.ClientConfig(long, "pw-long-user", "r")
	cfg.Mechanism = "SCRAM-SHA-512-PLUS"
	c := e.LoginWith(cfg)
	// After authentication the full limit applies: a 200 KiB message goes
	// through.
	e.AddUser("bob", "pw-bob-1")
	bob := e.Login("bob", "pw-bob-1", "r")
	body := strings.Repeat("b", 200<<10)
	if err := c.Send("<message to='bob@localhost/r' id='big'><body>" + body + "</body></message>"); err != nil {
		t.Fatal(err)
	}
	st, err := bob.Expect(timeout, client.ID("big"))
	if err != nil {
		t.Fatal(err)
	}
	if !client.Contains(st, body) {
		t.Fatal("the large message arrived cut")
	}
}

// sessionOf returns the c2s session bound to full JID bare/res.
func sessionOf(t *testing.T, e *servertest.Env, bare, res string) *c2s.Session {
	t.Helper()
	s, ok := e.Srv.Router.Resource(bare, res).(*c2s.Session)
	if !ok {
		t.Fatalf("no c2s session for %s/%s", bare, res)
	}
	return s
}

// TestDefaultInboundRateLimit: on the default configuration a session is
// shaped to bytes-per-second (32 KiB/s) after a burst of bytes-burst
// (1 MiB). A sender of 1 MiB + 160 KiB is read more slowly: its last
// message cannot be routed before the 160 KiB over the burst have been
// earned at the rate (5 s; a loaded machine only makes it later), and its
// session counts the pauses. A client with ordinary traffic, a 100 KiB
// avatar included, is never paused.
func TestDefaultInboundRateLimit(t *testing.T) {
	e := servertest.Start(t, nil)
	rate, burst := int(e.Config.Limits.BytesPerSecond), int(e.Config.Limits.BytesBurst)
	if rate == 0 {
		t.Fatal("no inbound rate limit by default")
	}
	e.AddUser("alice", "pw-alice-1")
	e.AddUser("bob", "pw-bob-1")
	e.AddUser("carol", "pw-carol-1")
	bob := e.Login("bob", "pw-bob-1", "r")

	// An ordinary client: roster, presence, a vCard with an avatar, a
	// conversation.
	carol := e.Login("carol", "pw-carol-1", "r")
	if _, err := carol.IQ(timeout, "<iq type='get' id='ro'><query xmlns='jabber:iq:roster'/></iq>", "ro"); err != nil {
		t.Fatal(err)
	}
	avatar := strings.Repeat("QUJD", 25<<10) // 100 KiB of base64
	if _, err := carol.IQ(timeout, "<iq type='set' id='vc'><vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>"+avatar+"</BINVAL></PHOTO></vCard></iq>", "vc"); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := carol.Send("<message to='bob@localhost/r' type='chat' id='c" + strconv.Itoa(i) + "'><body>hello there, how are you today?</body></message>"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := bob.Expect(timeout, client.ID("c49")); err != nil {
		t.Fatal(err)
	}
	if n := sessionOf(t, e, "carol@localhost", "r").Throttled(); n != 0 {
		t.Fatalf("an ordinary client was paused %d times", n)
	}

	// A flood: 1 MiB + 160 KiB in 100 KiB messages.
	alice := e.Login("alice", "pw-alice-1", "r")
	chunk := strings.Repeat("x", 100<<10)
	const n = 12 // 1200 KiB
	start := time.Now()
	go func() {
		for i := range n {
			if alice.Send("<message to='bob@localhost/r' type='chat' id='f"+strconv.Itoa(i)+"'><body>"+chunk+"</body></message>") != nil {
				return
			}
		}
	}()
	if _, err := bob.Expect(time.Minute, client.ID("f"+strconv.Itoa(n-1))); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	over := n*len(chunk) - burst
	if least := time.Duration(float64(over) / float64(rate) * float64(time.Second)); elapsed < least {
		t.Fatalf("%d bytes over the burst were read in %v; at %d bytes/s that takes at least %v", over, elapsed, rate, least)
	}
	if sessionOf(t, e, "alice@localhost", "r").Throttled() == 0 {
		t.Fatal("the flooding session was never paused")
	}
	// The sender's stream stays usable: a ping is answered.
	if _, err := alice.IQ(time.Minute, "<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", "p1"); err != nil {
		t.Fatal(err)
	}
}

// gatedConn is a real TCP connection whose reader can be stopped: the
// client then reads nothing more and the server's writes back up.
type gatedConn struct {
	net.Conn
	stop   chan struct{} // closed: nothing more is read
	closed chan struct{}
	once   gosync.Once
}

func (g *gatedConn) Read(p []byte) (int, error) {
	select {
	case <-g.stop:
		<-g.closed
		return 0, net.ErrClosed
	default:
	}
	return g.Conn.Read(p)
}

func (g *gatedConn) Close() error {
	g.once.Do(func() { close(g.closed) })
	return g.Conn.Close()
}

// TestSessionBufferBytes floods a session that stops taking what it is
// sent with 16 KiB messages. The bytes held for it never exceed
// session-buffer; once the next message would, the session ends
// (resource-constraint) — whether its link is alive but unread (a small
// receive buffer, nothing read) or dead and hibernating (XEP-0198) — and
// every message sent to it is in offline storage, exactly once. The
// sender's session goes on undisturbed.
func TestSessionBufferBytes(t *testing.T) {
	for _, mode := range []string{"slow reader", "hibernated"} {
		t.Run(mode, func(t *testing.T) {
			const budget = 256 << 10
			e := servertest.Start(t, func(c *conf.Config) {
				c.Limits.MaxStanzaSize = 64 * conf.KiB
				c.Limits.SessionBuffer = budget
			})
			e.AddUser("alice", "pw-alice-1")
			e.AddUser("bob", "pw-bob-1")
			alice := e.Login("alice", "pw-alice-1", "r")
			var gate *gatedConn
			cfg := e.ClientConfig("bob", "pw-bob-1", "r")
			cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
				d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
					return rc.Control(func(fd uintptr) {
						_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
					})
				}}
				c, err := d.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				gate = &gatedConn{Conn: c, stop: make(chan struct{}), closed: make(chan struct{})}
				return gate, nil
			}
			bob := e.LoginWith(cfg)
			if _, err := bob.EnableSM(timeout, mode == "hibernated"); err != nil {
				t.Fatal(err)
			}
			s := sessionOf(t, e, "bob@localhost", "r")
			if mode == "hibernated" {
				_ = bob.Abort()
			} else {
				close(gate.stop)
			}

			body := strings.Repeat("z", 16<<10)
			var sent []string
			maxHeld := 0
			ping := 0
			marker := func() {
				ping++
				id := "p" + strconv.Itoa(ping)
				if _, err := alice.IQ(timeout, "<iq type='get' id='"+id+"' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", id); err != nil {
					t.Fatal(err)
				}
			}
		flood:
			for i := 0; ; i++ {
				select {
				case <-s.Done():
					break flood
				default:
				}
				if i > 4*budget/len(body) {
					select {
					case <-s.Done():
					case <-time.After(timeout):
						t.Fatalf("session still there after %d bytes sent to it", i*len(body))
					}
					break flood
				}
				id := "m" + strconv.Itoa(i)
				if err := alice.Send("<message to='bob@localhost/r' type='chat' id='" + id + "'><body>" + body + "</body></message>"); err != nil {
					t.Fatal(err)
				}
				sent = append(sent, id)
				marker() // the message was routed
				held := s.Buffered()
				if held > budget {
					t.Fatalf("%d bytes held for the session, over the %d limit", held, budget)
				}
				maxHeld = max(maxHeld, held)
			}
			// It ended at the limit, not before: one more message would not fit.
			if maxHeld+len(body) <= budget {
				t.Fatalf("the session ended holding %d bytes; %d more would still fit in %d", maxHeld, len(body), budget)
			}
			if e.Srv.Router.Resource("bob@localhost", "r") != nil {
				t.Fatal("the session is still bound")
			}
			// Sent after it ended: stored as for any offline user.
			if err := alice.Send("<message to='bob@localhost/r' type='chat' id='after'><body>after</body></message>"); err != nil {
				t.Fatal(err)
			}
			sent = append(sent, "after")
			// The sender got no error (one would have come before the
			// answer to this last ping), and its stream works.
			if err := alice.Send("<iq type='get' id='last' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"); err != nil {
				t.Fatal(err)
			}
			st, err := alice.Expect(timeout, func(st *wire.Stanza) bool { return st.Type == "error" || st.ID == "last" })
			if err != nil {
				t.Fatal(err)
			}
			if st.ID != "last" {
				t.Fatalf("the sender got an error: %s", st.Raw)
			}

			stored, err := e.Srv.Store.Offline().List(context.Background(), "bob@localhost")
			if err != nil {
				t.Fatal(err)
			}
			count := map[string]int{}
			for _, m := range stored {
				st, err := wire.ParseElement(m.Stanza, wire.NSClient)
				if err != nil {
					t.Fatal(err)
				}
				count[st.ID]++
			}
			for _, id := range sent {
				if count[id] != 1 {
					t.Errorf("message %s is in offline storage %d times", id, count[id])
				}
			}
			if len(stored) != len(sent) {
				t.Errorf("%d messages stored, %d sent", len(stored), len(sent))
			}
		})
	}
}

// TestBOSHBufferBounded: a BOSH client that stops sending requests is a
// slow consumer too. What waits for its requests is bounded by
// session-buffer: flooded with 16 KiB messages, its session ends once
// about session-buffer bytes wait, instead of growing without end.
func TestBOSHBufferBounded(t *testing.T) {
	const budget = 256 << 10
	e := servertest.Start(t, func(c *conf.Config) {
		c.Limits.MaxStanzaSize = 64 * conf.KiB
		c.Limits.SessionBuffer = budget
		trustLoopback(c)
	})
	e.AddUser("alice", "pw-alice-1")
	e.AddUser("bob", "pw-bob-1")
	b := &boshClient{t: t, url: e.BOSH, rid: 100, header: forwarded("", "https")}
	b.login("bob", "pw-bob-1", "web")
	s := sessionOf(t, e, "bob@localhost", "web")
	// Bob sends no more requests. Alice floods him.
	alice := e.Login("alice", "pw-alice-1", "r")
	body := strings.Repeat("w", 16<<10)
	for i := 0; ; i++ {
		select {
		case <-s.Done():
			if sent := i * len(body); sent < budget-len(body) {
				t.Fatalf("the session ended after only %d bytes", sent)
			}
			return
		default:
		}
		if i > 2*budget/len(body) {
			// The session must be ending by now (handing what it held
			// to offline storage takes a moment): no more is sent.
			select {
			case <-s.Done():
				return
			case <-time.After(timeout):
				t.Fatalf("%d bytes wait for a BOSH client that fetches nothing, and its session goes on", i*len(body))
			}
		}
		if err := alice.Send("<message to='bob@localhost/web' type='chat' id='w" + strconv.Itoa(i) + "'><body>" + body + "</body></message>"); err != nil {
			t.Fatal(err)
		}
		id := "p" + strconv.Itoa(i)
		if _, err := alice.IQ(timeout, "<iq type='get' id='"+id+"' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", id); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCSIHoldBounded: what waits for an inactive client (XEP-0352) is
// bounded by half of session-buffer (the other half is room for what
// follows while it is written). Two 60 KiB presences wait; with the third
// the hold passes 128 KiB, so all three go out at once instead of growing
// the hold, and the session, which reads, stays.
func TestCSIHoldBounded(t *testing.T) {
	const budget = 256 << 10
	e := servertest.Start(t, func(c *conf.Config) {
		c.Limits.MaxStanzaSize = 64 * conf.KiB
		c.Limits.SessionBuffer = budget
	})
	e.AddUser("alice", "pw-alice-1")
	e.AddUser("bob", "pw-bob-1")
	bob := e.Login("bob", "pw-bob-1", "r")
	if err := bob.Send("<inactive xmlns='urn:xmpp:csi:0'/>"); err != nil {
		t.Fatal(err)
	}
	// A ping answered means the <inactive/> before it was handled.
	if _, err := bob.IQ(timeout, "<iq type='get' id='i1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", "i1"); err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("p", 60<<10)
	var senders []*client.Client
	for i := range 3 {
		senders = append(senders, e.Login("alice", "pw-alice-1", "r"+strconv.Itoa(i)))
	}
	// presencesBefore sends a message (never held) from the first sender and
	// counts the presences bob got before it.
	presencesBefore := func(id string) int {
		t.Helper()
		if err := senders[0].Send("<message to='bob@localhost/r' type='chat' id='" + id + "'><body>marker</body></message>"); err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			st, err := bob.Next(timeout)
			if err != nil {
				t.Fatal(err)
			}
			if st.ID == id {
				return n
			}
			if st.Kind == wire.KindPresence {
				n++
			}
		}
	}
	for i, c := range senders[:2] {
		if err := c.Send("<presence to='bob@localhost/r'><status>" + pad + "</status></presence>"); err != nil {
			t.Fatal(err)
		}
		// The ping's answer: the presence was routed.
		if _, err := c.IQ(timeout, "<iq type='get' id='s"+strconv.Itoa(i)+"' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", "s"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := presencesBefore("m1"); n != 0 {
		t.Fatalf("%d presences reached the inactive client under the budget", n)
	}
	if err := senders[2].Send("<presence to='bob@localhost/r'><status>" + pad + "</status></presence>"); err != nil {
		t.Fatal(err)
	}
	if _, err := senders[2].IQ(timeout, "<iq type='get' id='s2' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", "s2"); err != nil {
		t.Fatal(err)
	}
	if n := presencesBefore("m2"); n != 3 {
		t.Fatalf("%d presences went out when the hold passed half the budget, want 3", n)
	}
	if held := sessionOf(t, e, "bob@localhost", "r").Buffered(); held > budget {
		t.Fatalf("%d bytes held", held)
	}
}
