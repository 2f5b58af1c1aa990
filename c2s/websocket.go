package c2s

import (
	"context"
	"errors"
	"net"
	"net/http"

	"github.com/coder/websocket"
)

var errBinaryFrame = errors.New("c2s: binary WebSocket frame")

// WebSocket returns the HTTP handler for RFC 7395 XMPP over WebSocket
// (subprotocol "xmpp"). The stream counts as secure when the HTTP listener
// is TLS or the request came through a trusted TLS-terminating proxy.
func (srv *Server) WebSocket() http.Handler { return srv.WebSocketWith(srv.opts.TrustedProxy) }

// WebSocketWith is WebSocket with its own trusted-proxy test (one per HTTP
// listener).
func (srv *Server) WebSocketWith(trusted func(*http.Request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
			Subprotocols:       []string{"xmpp"},
			InsecureSkipVerify: true, // browsers on any origin may connect; auth is SASL
		})
		if err != nil {
			return
		}
		if c.Subprotocol() != "xmpp" {
			c.Close(websocket.StatusProtocolError, "the xmpp subprotocol is required")
			return
		}
		c.SetReadLimit(int64(srv.opts.MaxStanza) + 1024)
		addr, _ := net.ResolveTCPAddr("tcp", r.RemoteAddr)
		var ra net.Addr = addr
		if addr == nil {
			ra = &net.TCPAddr{}
		}
		t := &wsTransport{c: c, addr: ra, tstate: r.TLS}
		t.isSec = r.TLS != nil || (trusted != nil && trusted(r))
		cn := &conn{t: t}
		if !srv.admit(cn) {
			c.Close(websocket.StatusPolicyViolation, "too many connections")
			return
		}
		defer srv.release(cn)
		if s, rd, gen := srv.negotiate(cn, false); s != nil {
			s.loop(context.Background(), rd, gen)
		}
	})
}
