package turn

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v3"
)

// Requests are screened before pion sees them: credentials that are
// forged, malformed, or expired (for Allocate) are answered 401
// Unauthorized here, as RFC 5389 §10.2.2 asks (pion would answer 400).

// refreshAfterExpiry is how long after its credentials expired an
// allocation may still be refreshed (and permissions and channels made):
// a call is not cut when its credentials expire, but cannot go on forever.
const refreshAfterExpiry = 12 * time.Hour

// screen decides whether a packet from a client goes on to pion; reply
// sends a response back to the client.
func (s *Server) screen(b []byte, src net.Addr, reply func([]byte)) bool {
	if len(b) < 20 || b[0]&0xC0 != 0 || !stun.IsMessage(b) {
		return true // ChannelData, or junk pion drops
	}
	var t stun.MessageType
	t.ReadValue(binary.BigEndian.Uint16(b))
	if t.Class != stun.ClassRequest || t.Method == stun.MethodBinding {
		return true
	}
	m := &stun.Message{Raw: b}
	if err := m.Decode(); err != nil || !m.Contains(stun.AttrMessageIntegrity) {
		return true // pion answers 400, or 401 with a nonce
	}
	var (
		username stun.Username
		realm    stun.Realm
		nonce    stun.Nonce
	)
	if username.GetFrom(m) != nil || realm.GetFrom(m) != nil || nonce.GetFrom(m) != nil {
		return true // 400
	}
	why := ""
	exp, name, err := ParseUsername(username.String())
	switch {
	case err != nil:
		why = "malformed username"
	case stun.NewLongTermIntegrity(username.String(), realm.String(), Password(s.opts.Secret, username.String())).Check(m) != nil:
		why = "wrong password"
	case t.Method == stun.MethodAllocate && time.Now().After(exp):
		why = "expired"
	case time.Since(exp) > refreshAfterExpiry:
		why = "expired long ago"
	case t.Method == stun.MethodCreatePermission || t.Method == stun.MethodChannelBind:
		return s.screenPeers(m, t.Method, src, name, username.String(), realm.String(), reply)
	default:
		return true
	}
	s.stats.authFailures.Add(1)
	s.log.Info("turn: credentials refused", "client", str(src), "user", name, "method", t.Method.String(), "reason", why)
	resp, err := stun.Build(stun.NewTransactionIDSetter(m.TransactionID),
		stun.NewType(t.Method, stun.ClassErrorResponse),
		stun.CodeUnauthorized, stun.NewRealm(s.opts.Realm), nonce, stun.Fingerprint)
	if err == nil {
		reply(resp.Raw)
	}
	return false
}

// screenPeers answers 403 Forbidden (RFC 5766 §9.1, §11.2) to a
// CreatePermission or ChannelBind for a peer the policy refuses; pion would
// answer an error without a code, or 401.
func (s *Server) screenPeers(m *stun.Message, method stun.Method, src net.Addr, name, username, realm string, reply func([]byte)) bool {
	refused := ""
	_ = m.ForEach(stun.AttrXORPeerAddress, func(m *stun.Message) error {
		var pa stun.XORMappedAddress
		if pa.GetFromAs(m, stun.AttrXORPeerAddress) != nil {
			return nil // pion answers 400
		}
		ip, ok := netip.AddrFromSlice(pa.IP)
		if why := s.policy.Check(ip); !ok || why != peerOK && why != peerRelay {
			refused = ip.Unmap().String() + " (" + why + ")"
		}
		return nil
	})
	if refused == "" {
		return true
	}
	s.stats.permissionsRefused.Add(1)
	s.log.Info("turn: peer refused", "client", str(src), "user", name, "peer", refused)
	resp, err := stun.Build(stun.NewTransactionIDSetter(m.TransactionID),
		stun.NewType(method, stun.ClassErrorResponse), stun.CodeForbidden,
		stun.NewLongTermIntegrity(username, realm, Password(s.opts.Secret, username)), stun.Fingerprint)
	if err == nil {
		reply(resp.Raw)
	}
	return false
}

// screenedPacketConn is a UDP listening socket as pion sees it. On Linux
// it reads up to batchSize datagrams per system call (recvmmsg) and relays
// the ChannelData among them itself (fastChannelData), queueing what goes
// to UDP clients of this server for one sendmmsg, sent before the next
// read waits and before anything is handed to pion.
type screenedPacketConn struct {
	*net.UDPConn
	s       *Server
	in, out *batch // nil: a system call per datagram
	next    int    // the next datagram of in
}

func newScreenedPacketConn(uc *net.UDPConn, s *Server) *screenedPacketConn {
	c := &screenedPacketConn{UDPConn: uc, s: s, in: newBatch(uc, 2048), out: newBatch(uc, 2048)}
	if c.in == nil || c.out == nil {
		c.in, c.out = nil, nil
	}
	return c
}

func (c *screenedPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		var b []byte
		var ap netip.AddrPort
		if c.in != nil {
			if c.next >= c.in.n {
				c.out.flush()
				c.in.n, c.next = 0, 0
				if err := c.in.recv(); err != nil {
					return 0, nil, err
				}
			}
			b, ap = c.in.datagram(c.next)
			c.next++
			if !ap.IsValid() {
				continue
			}
		} else {
			n, a, err := c.UDPConn.ReadFromUDPAddrPort(p)
			if err != nil {
				return n, nil, err
			}
			b, ap = p[:n], netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		}
		// pion drops what fills its buffer as possibly truncated; so does
		// the fast path.
		if len(b) < len(p) && c.s.fastChannelData(b, ap, c) {
			continue
		}
		c.flush()
		addr := net.UDPAddrFromAddrPort(ap)
		if c.s.screen(b, addr, func(r []byte) { _, _ = c.UDPConn.WriteTo(r, addr) }) {
			return copy(p, b), addr, nil
		}
	}
}

// send writes b to a UDP client of this server: queued for the batch, or
// at once.
func (c *screenedPacketConn) send(b []byte, to netip.AddrPort) {
	if c.out != nil {
		c.out.add(b, to)
		return
	}
	_, _ = c.UDPConn.WriteToUDPAddrPort(b, to)
}

// flush sends the queued datagrams.
func (c *screenedPacketConn) flush() {
	if c.out != nil {
		c.out.flush()
	}
}

// screenedListener hands pion TCP (or TLS) connections that screen
// requests frame by frame and time out when idle.
type screenedListener struct {
	net.Listener
	s *Server
}

func (l *screenedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	sc := &streamConn{Conn: c, s: l.s, br: bufio.NewReaderSize(c, 4096)}
	key := streamKey(c.RemoteAddr(), c.LocalAddr())
	l.s.smu.Lock()
	l.s.streams[key] = sc
	l.s.smu.Unlock()
	return sc, nil
}

const (
	firstFrameTimeout = 30 * time.Second // TLS handshake and the first request
	streamIdleTimeout = 15 * time.Minute // longer than any refresh interval (allocations live ≤ 10 min unless refreshed)
)

// streamConn frames a TURN-over-TCP stream (RFC 5766 §2.1: STUN messages
// and ChannelData padded to 4 bytes) so that each request can be screened.
type streamConn struct {
	net.Conn
	s       *Server
	br      *bufio.Reader
	pending []byte
	started bool
	wmu     sync.Mutex
}

var errBadFrame = errors.New("turn: stream is not STUN or ChannelData")

func (c *streamConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	for {
		d := streamIdleTimeout
		if !c.started {
			d = firstFrameTimeout
		}
		_ = c.Conn.SetReadDeadline(time.Now().Add(d))
		frame, err := c.frame()
		if err != nil {
			return 0, err
		}
		c.started = true
		if c.s.screen(frame, c.RemoteAddr(), func(r []byte) { _, _ = c.Write(r) }) {
			n := copy(p, frame)
			c.pending = frame[n:]
			return n, nil
		}
	}
}

// Close closes the connection and forgets it.
func (c *streamConn) Close() error {
	key := streamKey(c.RemoteAddr(), c.LocalAddr())
	c.s.smu.Lock()
	if c.s.streams[key] == c {
		delete(c.s.streams, key)
	}
	c.s.smu.Unlock()
	return c.Conn.Close()
}

func (c *streamConn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.Conn.Write(b)
}

func (c *streamConn) frame() ([]byte, error) {
	h, err := c.br.Peek(4)
	if err != nil {
		return nil, err
	}
	var n int
	switch {
	case h[0]&0xC0 == 0: // STUN
		n = 20 + int(binary.BigEndian.Uint16(h[2:4]))
	case h[0] >= 0x40 && h[0] <= 0x7F: // ChannelData, padded over TCP
		n = 4 + (int(binary.BigEndian.Uint16(h[2:4]))+3)&^3
	default:
		return nil, errBadFrame
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c.br, b); err != nil {
		return nil, err
	}
	return b, nil
}

// pionLogs adapts pion's leveled loggers to slog. pion logs every relayed
// packet at debug level, so its Trace and Debug are below slog's debug, its
// Info is debug, and its warnings and errors are warnings, at most ten a
// second.
type pionLogs struct{ log *slog.Logger }

func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return &pionLogger{log: f.log.With("pion", scope)}
}

type pionLogger struct {
	log *slog.Logger
	mu  sync.Mutex
	sec int64
	n   int
}

const levelTrace = slog.LevelDebug - 4

func (l *pionLogger) emit(level slog.Level, msg string) {
	if level >= slog.LevelWarn {
		now := time.Now().Unix()
		l.mu.Lock()
		if now != l.sec {
			l.sec, l.n = now, 0
		}
		l.n++
		over := l.n > 10
		l.mu.Unlock()
		if over {
			return
		}
	}
	l.log.Log(context.Background(), level, "turn: "+msg)
}

func (l *pionLogger) emitf(level slog.Level, format string, args ...any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	l.emit(level, fmt.Sprintf(format, args...))
}

func (l *pionLogger) Trace(msg string) { l.emitf(levelTrace, "%s", msg) }
func (l *pionLogger) Tracef(format string, args ...any) {
	l.emitf(levelTrace, format, args...)
}
func (l *pionLogger) Debug(msg string) { l.emitf(levelTrace, "%s", msg) }
func (l *pionLogger) Debugf(format string, args ...any) {
	l.emitf(levelTrace, format, args...)
}
func (l *pionLogger) Info(msg string) { l.emitf(slog.LevelDebug, "%s", msg) }
func (l *pionLogger) Infof(format string, args ...any) {
	l.emitf(slog.LevelDebug, format, args...)
}
func (l *pionLogger) Warn(msg string) { l.emitf(slog.LevelWarn, "%s", msg) }
func (l *pionLogger) Warnf(format string, args ...any) {
	l.emitf(slog.LevelWarn, format, args...)
}
func (l *pionLogger) Error(msg string) { l.emitf(slog.LevelWarn, "%s", msg) }
func (l *pionLogger) Errorf(format string, args ...any) {
	l.emitf(slog.LevelWarn, format, args...)
}
