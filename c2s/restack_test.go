package c2s_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"net"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xmppd/xmppd/c2s"
	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/wire"
)

// restacks returns a channel closed once n idle links have moved their
// reading to a fresh goroutine.
func restacks(t *testing.T, n int64) <-chan struct{} {
	ch := make(chan struct{})
	var count atomic.Int64
	c2s.OnRestack(t, func() {
		if count.Add(1) == n {
			close(ch)
		}
	})
	return ch
}

// expect reads from c until want has arrived (or the test's bound).
func expect(t *testing.T, c net.Conn, buf *bytes.Buffer, want string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	b := make([]byte, 4096)
	for !bytes.Contains(buf.Bytes(), []byte(want)) {
		n, err := c.Read(b)
		buf.Write(b[:n])
		if err != nil {
			t.Fatalf("waiting for %q: %v; got %q", want, err, buf.String())
		}
	}
	buf.Reset()
}

// rawLogin logs user in over plain TCP with PLAIN, binds and sends initial
// presence, with nothing but a socket on the client side (no goroutine).
func rawLogin(t *testing.T, addr, user string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var buf bytes.Buffer
	w := func(s string) {
		if _, err := c.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	w(header)
	expect(t, c, &buf, "</stream:features>")
	w("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00pw")) + "</auth>")
	expect(t, c, &buf, "<success")
	w(header)
	expect(t, c, &buf, "</stream:features>")
	w("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>")
	expect(t, c, &buf, "</iq>")
	w("<presence/>")
	expect(t, c, &buf, "<presence") // its own presence, reflected
	return c
}

// An idle session keeps a small stack: handling its login (bind, initial
// presence through the roster, vCard and archive modules, SQLite) grows
// its reader's stack, and once the link is silent for idle-restack the
// reading goes on in a fresh goroutine (on Linux: waits in the idle poller
// with none). Measured over 200 sessions whose clients are bare sockets, so
// that the stacks and goroutines counted are the server's.
func TestIdleSessionStackIsSmall(t *testing.T) {
	const n = 200
	e := servertest.Start(t, func(c *conf.Config) {
		c.Auth.RequireTLS = false
		c.Limits.MaxConnectionsPerIP = 0
		c.Limits.IdleRestack = 50 * time.Millisecond
	})
	for i := range n {
		e.AddUser("u"+strconv.Itoa(i), "pw")
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	goroutines := runtime.NumGoroutine()
	all := restacks(t, n)
	conns := make([]net.Conn, n)
	for i := range n {
		conns[i] = rawLogin(t, e.Plain, "u"+strconv.Itoa(i))
	}
	servertest.Wait(t, all, "every idle session's reading to move to a fresh goroutine")
	var after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	perSession := (int64(after.StackInuse) - int64(before.StackInuse)) / n
	extra := runtime.NumGoroutine() - goroutines
	t.Logf("goroutine stacks: %d bytes per idle session; %d goroutines for %d idle sessions", perSession, extra, n)
	limit := int64(4096)
	if runtime.GOOS == "linux" {
		// Idle links wait in the idle poller, without a goroutine.
		limit = 1536
		if extra > n/4 {
			t.Errorf("%d goroutines for %d idle sessions, want no goroutine per idle session", extra, n)
		}
	}
	if perSession > limit {
		t.Fatalf("idle sessions hold %d bytes of goroutine stack each, want at most %d", perSession, limit)
	}
	// The sessions still work: u0 sends u1 a message, which arrives.
	var buf bytes.Buffer
	if _, err := conns[0].Write([]byte("<message to='u1@localhost/r' type='chat'><body>after restack</body></message>")); err != nil {
		t.Fatal(err)
	}
	expect(t, conns[1], &buf, "after restack</body>")
}

// Over STARTTLS, a read interrupted for restacking loses nothing: a session
// whose reading moved while the client was silent, including one that went
// silent in the middle of an element, goes on where it was.
func TestRestackKeepsTLSStream(t *testing.T) {
	e := servertest.Start(t, func(c *conf.Config) { c.Limits.IdleRestack = 50 * time.Millisecond })
	e.AddUser("alice", "pw")
	e.AddUser("bob", "pw")
	moved := restacks(t, 2)
	a := e.Login("alice", "pw", "a")
	b := e.Login("bob", "pw", "b")
	for _, c := range []*client.Client{a, b} {
		if err := c.Send("<presence/>"); err != nil {
			t.Fatal(err)
		}
	}
	servertest.Wait(t, moved, "both links to restack")
	// A stanza (handling it arms the idle deadline again), half an
	// element, then silence until the link restacks again.
	again := restacks(t, 1)
	if err := a.Send("<presence/><message to='" + b.JID + "' type='chat'><body>split "); err != nil {
		t.Fatal(err)
	}
	servertest.Wait(t, again, "alice's link to restack in the middle of an element")
	if err := a.Send("across a restack</body></message>"); err != nil {
		t.Fatal(err)
	}
	st, err := b.Expect(timeout, func(st *wire.Stanza) bool { return st.Name == "message" })
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(st.Raw, []byte("<body>split across a restack</body>")) {
		t.Fatalf("got %s", st.Raw)
	}
}

// A link that waits idle ends as any other: when the client hangs up, and
// when the server ends the stream (here a second login for the same full
// JID replaces it, RFC 6120 §7.7.2.2), the session is unbound and the
// client gets the stream error before the close.
func TestIdleLinkEnds(t *testing.T) {
	e := servertest.Start(t, func(c *conf.Config) {
		c.Auth.RequireTLS = false
		c.Limits.IdleRestack = 50 * time.Millisecond
	})
	e.AddUser("alice", "pw")
	e.AddUser("bob", "pw")
	bobGone := servertest.Signal(e.Srv.Router.OnUnbound, "bob@localhost/r")
	aliceGone := servertest.Signal(e.Srv.Router.OnUnbound, "alice@localhost/r")
	moved := restacks(t, 2)
	a := rawLogin(t, e.Plain, "alice")
	b := rawLogin(t, e.Plain, "bob")
	servertest.Wait(t, moved, "both links to go idle")

	b.Close()
	servertest.Wait(t, bobGone, "bob's session to end after he hung up")

	rawLogin(t, e.Plain, "alice") // the same resource
	servertest.Wait(t, aliceGone, "the idle session to be replaced")
	var buf bytes.Buffer
	expect(t, a, &buf, "<conflict")
	_ = a.SetReadDeadline(time.Now().Add(timeout))
	if _, err := io.Copy(io.Discard, a); err != nil {
		t.Fatalf("the replaced link was not closed: %v", err)
	}
}
