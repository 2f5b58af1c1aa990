package c2s

import (
	"context"
	"errors"
	"net/http"

	"github.com/coder/websocket"
)

var errBinaryFrame = errors.New("c2s: binary WebSocket frame")

// WebSocket returns the HTTP handler for RFC 7395 XMPP over WebSocket
// (subprotocol "xmpp"), with Options.ClientOf (DirectClient if nil) telling
// the client's address and whether its connection was TLS.
func (srv *Server) WebSocket() http.Handler { return srv.WebSocketWith(srv.opts.ClientOf) }

// WebSocketWith is WebSocket with its own ClientOf (one per HTTP listener:
// each has its trusted proxies).
func (srv *Server) WebSocketWith(clientOf ClientOf) http.Handler {
	if clientOf == nil {
		clientOf = DirectClient
	}
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
		ip, secure := clientOf(r)
		t := &wsTransport{c: c, addr: clientAddr(r, ip), tstate: r.TLS, isSec: secure}
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
