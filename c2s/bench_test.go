package c2s

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/wire"
)

// memTransport is a transport over memory: reads come from a repeating
// message, writes go nowhere (counted).
type memTransport struct {
	head    []byte // served once, first
	src     []byte
	off     int
	mu      sync.Mutex
	written int
}

func (t *memTransport) Read(p []byte) (int, error) {
	n := 0
	if len(t.head) > 0 {
		n = copy(p, t.head)
		t.head = t.head[n:]
	}
	for n < len(p) {
		c := copy(p[n:], t.src[t.off:])
		n += c
		t.off = (t.off + c) % len(t.src)
	}
	return n, nil
}

func (t *memTransport) writeBatch(elems [][]byte, _ time.Time) error {
	t.mu.Lock()
	for _, e := range elems {
		t.written += len(e)
	}
	t.mu.Unlock()
	return nil
}
func (t *memTransport) setReadDeadline(time.Time)      {}
func (t *memTransport) close() error                   { return nil }
func (t *memTransport) remoteAddr() net.Addr           { return &net.TCPAddr{} }
func (t *memTransport) tlsState() *tls.ConnectionState { return nil }
func (t *memTransport) secure() bool                   { return true }
func (t *memTransport) framed() bool                   { return false }

type everyone struct{}

func (everyone) Exists(context.Context, string) bool { return true }

// BenchmarkRouteMessage measures one chat message from a sender's socket
// bytes to the recipient's outbound queue and writer: read and split,
// check and stamp, route to a full JID, queue, write.
func BenchmarkRouteMessage(b *testing.B) { benchRoute(b, false, false) }

// BenchmarkRouteMessageSM is the same with XEP-0198 on for both sessions:
// alice's stanzas are counted, bob keeps what he is sent until he acks
// (every 100 messages here, as a client would).
func BenchmarkRouteMessageSM(b *testing.B) { benchRoute(b, true, false) }

// BenchmarkRouteMessageHeld is BenchmarkRouteMessageSM with a hook that
// holds every message on a write that is already done (router.Context.Hold,
// as the archive does): the cost of the pending-write queue and its
// goroutine, without the storage.
func BenchmarkRouteMessageHeld(b *testing.B) { benchRoute(b, true, true) }

func benchRoute(b *testing.B, sm, held bool) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := router.New(log, func(d string) bool { return d == "localhost" }, everyone{})
	srv := New(Options{Log: log, Router: r, OutboundQueue: 1 << 20})
	if held {
		done := make(chan error)
		close(done)
		r.OnInbound(wire.KindMessage, func(c *router.Context) bool { c.Hold(done); return false })
	}
	msg := []byte("<message type='chat' id='a1b2c3' to='bob@localhost/phone'><body>Hello Bob, how are you today?</body></message>")
	mk := func(user, res string, src []byte) *Session {
		j := jid.MustParse(user + "@localhost/" + res)
		t := &memTransport{src: src}
		s := &Session{srv: srv, t: t, in: &activityReader{t: t}, j: j, jstr: j.String(), done: make(chan struct{})}
		r.Bind(s)
		return s
	}
	alice := mk("alice", "laptop", msg)
	bob := mk("bob", "phone", []byte(" "))
	if sm {
		alice.sm.enabled, bob.sm.enabled = true, true
	}
	alice.t.(*memTransport).head = []byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>")
	rd := wire.NewReader(alice.in, 1<<16)
	if _, err := rd.Header(); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st, err := rd.Next()
		if err != nil {
			b.Fatal(err)
		}
		if err := alice.handle(ctx, st); err != nil {
			b.Fatal(err)
		}
		if sm && i%100 == 99 {
			bob.mu.Lock()
			err := bob.ackLocked(bob.sm.acked + uint32(len(bob.sm.unacked)))
			bob.mu.Unlock()
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	for {
		bob.mu.Lock()
		busy := bob.writing
		bob.mu.Unlock()
		if !busy {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if got := bob.t.(*memTransport).written; got < b.N*len(msg) {
		b.Fatalf("bob got %d bytes, want at least %d", got, b.N*len(msg))
	}
}
