package c2s

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// transport frames bytes for a session. A Session never knows which one it
// rides on: TCP (plain, STARTTLS or direct TLS) or WebSocket.
type transport interface {
	io.Reader
	// writeBatch writes complete elements in order, as one write where the
	// framing allows it.
	writeBatch(elems [][]byte, deadline time.Time) error
	setReadDeadline(t time.Time)
	close() error
	remoteAddr() net.Addr
	// tlsState returns the TLS state, or nil when the link is not TLS.
	tlsState() *tls.ConnectionState
	// secure reports whether the link is confidential (TLS, or a WebSocket
	// from a trusted local proxy).
	secure() bool
	framed() bool
}

var batchPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// tcpTransport carries a stream over a TCP or TLS connection.
type tcpTransport struct {
	conn net.Conn
	tls  *tls.Conn // non-nil once TLS is up
	// leaf is the certificate this link's handshake presented (nil before
	// TLS and for a resumed TLS session).
	leaf *x509.Certificate
	// park is the idle poller's state of this link (park_linux.go).
	park parkState
}

func (t *tcpTransport) Read(p []byte) (int, error) { return t.conn.Read(p) }

func (t *tcpTransport) writeBatch(elems [][]byte, deadline time.Time) error {
	_ = t.conn.SetWriteDeadline(deadline)
	if len(elems) == 1 {
		_, err := t.conn.Write(elems[0])
		return err
	}
	bp := batchPool.Get().(*[]byte)
	b := (*bp)[:0]
	for _, e := range elems {
		b = append(b, e...)
	}
	_, err := t.conn.Write(b)
	if cap(b) <= 64<<10 {
		*bp = b[:0]
		batchPool.Put(bp)
	}
	return err
}

func (t *tcpTransport) setReadDeadline(d time.Time) { _ = t.conn.SetReadDeadline(d) }
func (t *tcpTransport) close() error {
	t.closeParked() // a link waiting in the idle poller reads again, and ends
	return t.conn.Close()
}
func (t *tcpTransport) remoteAddr() net.Addr { return t.conn.RemoteAddr() }
func (t *tcpTransport) framed() bool         { return false }
func (t *tcpTransport) secure() bool         { return t.tls != nil }
func (t *tcpTransport) tlsState() *tls.ConnectionState {
	if t.tls == nil {
		return nil
	}
	cs := t.tls.ConnectionState()
	return &cs
}

// wsTransport carries a stream over RFC 7395 WebSocket framing: every
// element is one text message.
type wsTransport struct {
	c      *websocket.Conn
	addr   net.Addr
	isSec  bool
	tstate *tls.ConnectionState
	cur    io.Reader
	// cancelCur releases the context of the message being read; the
	// message body is read under it.
	cancelCur context.CancelFunc

	dmu      sync.Mutex
	deadline time.Time
}

func (t *wsTransport) Read(p []byte) (int, error) {
	for {
		if t.cur != nil {
			n, err := t.cur.Read(p)
			if err == io.EOF {
				t.cur = nil
				t.cancelCur()
				if n > 0 {
					return n, nil
				}
				continue
			}
			return n, err
		}
		ctx := context.Background()
		t.dmu.Lock()
		d := t.deadline
		t.dmu.Unlock()
		var cancel context.CancelFunc = func() {}
		if !d.IsZero() {
			ctx, cancel = context.WithDeadline(ctx, d)
		}
		typ, r, err := t.c.Reader(ctx)
		if err != nil {
			cancel()
			if websocket.CloseStatus(err) != -1 {
				return 0, io.EOF
			}
			return 0, err
		}
		if typ != websocket.MessageText {
			cancel()
			return 0, errBinaryFrame
		}
		t.cur, t.cancelCur = r, cancel
	}
}

func (t *wsTransport) writeBatch(elems [][]byte, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	for _, e := range elems {
		if err := t.c.Write(ctx, websocket.MessageText, qualify(e)); err != nil {
			return err
		}
	}
	return nil
}

func (t *wsTransport) setReadDeadline(d time.Time) {
	t.dmu.Lock()
	t.deadline = d
	t.dmu.Unlock()
}
func (t *wsTransport) close() error                   { return t.c.CloseNow() }
func (t *wsTransport) remoteAddr() net.Addr           { return t.addr }
func (t *wsTransport) framed() bool                   { return true }
func (t *wsTransport) secure() bool                   { return t.isSec }
func (t *wsTransport) tlsState() *tls.ConnectionState { return t.tstate }

// qualify adds xmlns='jabber:client' to a stanza's start tag when it has
// none: on WebSocket every message is a standalone document (RFC 7395 §3.3.3).
func qualify(e []byte) []byte {
	var name string
	switch {
	case bytes.HasPrefix(e, []byte("<message")):
		name = "<message"
	case bytes.HasPrefix(e, []byte("<presence")):
		name = "<presence"
	case bytes.HasPrefix(e, []byte("<iq")):
		name = "<iq"
	default:
		return e
	}
	end := bytes.IndexByte(e, '>')
	if end < 0 || bytes.Contains(e[:end], []byte("xmlns=")) {
		return e
	}
	out := make([]byte, 0, len(e)+22)
	out = append(out, name...)
	out = append(out, " xmlns='jabber:client'"...)
	return append(out, e[len(name):]...)
}
