package c2s

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xmppd/xmppd/wire"
)

// BOSH (XEP-0124) carrying XMPP (XEP-0206): each HTTP request carries a
// <body/> with zero or more elements; the server holds one request open
// until it has something to send or `wait` passes. A BOSH session is a
// transport like TCP or WebSocket: it feeds the same negotiation and
// session code with a synthetic stream (a stream header at creation and
// at every xmpp:restart) and turns what the session writes back into
// <body/> responses.

const (
	nsBOSH  = "http://jabber.org/protocol/httpbind"
	nsXBOSH = "urn:xmpp:xbosh"

	boshMaxWait     = 60 * time.Second
	boshInactivity  = 60 * time.Second
	boshRequests    = 2
	boshMaxBodySize = 1 << 20
)

// BOSHOptions tune the HTTP binding.
type BOSHOptions struct {
	// ClientOf tells the client's address and whether its connection was
	// TLS (behind a trusted reverse proxy: what the proxy says); nil is
	// DirectClient.
	ClientOf ClientOf
	// OutOfOrder, if set, is told the rid of each request that arrived
	// before one of its predecessors and waits for it (for metrics and
	// tests).
	OutOfOrder func(rid int64)
}

type boshSession struct {
	id       string
	srv      *Server
	addr     net.Addr
	isSec    bool
	tstate   *tls.ConnectionState
	domain   string
	lang     string // xml:lang of the session request
	wait     time.Duration
	lastRID  int64
	lastResp map[int64][]byte

	mu       sync.Mutex
	in       bytes.Buffer  // bytes for the stream reader
	inReady  chan struct{} // signalled when in grows
	out      [][]byte      // elements waiting for a request
	outBytes int           // their size, at most half of Options.SessionBuffer
	outReady chan struct{} // closed and replaced when out grows
	outTaken chan struct{} // made by a waiting writer, closed when a response takes out
	holding  chan struct{} // closed to release the request being held
	closed   bool
	terminal []byte // the <body type='terminate'/> to send once out is empty
	touched  time.Time
	// ridAdvanced is closed and replaced whenever lastRID grows: requests
	// that arrived before their predecessors wait on it (XEP-0124 §14.3).
	ridAdvanced chan struct{}
	outOfOrder  func(rid int64) // BOSHOptions.OutOfOrder
	early       int64           // the rid waiting for its predecessors, 0 if none
	// readDeadline bounds Read (the negotiation timeout); zero: none.
	readDeadline time.Time
}

type boshRegistry struct {
	mu sync.Mutex
	m  map[string]*boshSession
}

var (
	errBOSHClosed = errors.New("c2s: BOSH session closed")
	errBOSHFull   = errors.New("c2s: BOSH client fetches too little (session-buffer)")
)

// boshHolding, when a test sets it, is called with the session id each time
// a request is held with nothing to send, so that tests wait for that
// instead of guessing how long the server takes to get there.
var boshHolding atomic.Pointer[func(sid string)]

// boshFull, when a test sets it, is called with the session id each time a
// writer waits for the client to fetch what is queued for it.
var boshFull atomic.Pointer[func(sid string)]

// boshTerminal reports whether e ends the stream (it becomes the terminate
// body, not output waiting in out).
func boshTerminal(e []byte) bool {
	return len(e) == 0 || bytes.HasPrefix(e, []byte("<?xml")) || bytes.HasPrefix(e, []byte("<stream:stream")) ||
		bytes.Equal(e, []byte("</stream:stream>")) || bytes.HasPrefix(e, []byte("<stream:error"))
}

// BOSH returns the HTTP handler of XEP-0124/XEP-0206 (usually /http-bind),
// with CORS for web clients.
func (srv *Server) BOSH(o BOSHOptions) http.Handler {
	reg := &boshRegistry{m: make(map[string]*boshSession)}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Content-Type")
		h.Set("Access-Control-Max-Age", "86400")
		switch r.Method {
		case http.MethodOptions:
			w.WriteHeader(http.StatusNoContent)
			return
		case http.MethodPost:
		default:
			w.Header().Set("Allow", "POST, OPTIONS")
			http.Error(w, "BOSH needs POST", http.StatusMethodNotAllowed)
			return
		}
		raw, err := io.ReadAll(io.LimitReader(r.Body, boshMaxBodySize+1))
		if err != nil || len(raw) > boshMaxBodySize {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		body, err := wire.ParseElement(raw, nsBOSH)
		if err != nil || body.Name != "body" || body.NS != nsBOSH {
			boshTerminate(w, "bad-request")
			return
		}
		var a struct {
			RID     string `xml:"rid,attr"`
			SID     string `xml:"sid,attr"`
			To      string `xml:"to,attr"`
			Wait    string `xml:"wait,attr"`
			Type    string `xml:"type,attr"`
			Restart string `xml:"urn:xmpp:xbosh restart,attr"`
		}
		if err := body.Decode(&a); err != nil {
			boshTerminate(w, "bad-request")
			return
		}
		rid, err := strconv.ParseInt(a.RID, 10, 64)
		if err != nil || rid < 0 {
			boshTerminate(w, "bad-request")
			return
		}
		payload := boshPayload(body.Raw)
		if a.SID == "" {
			srv.boshCreate(reg, w, r, o, rid, a.To, a.Wait, body.Lang)
			return
		}
		reg.mu.Lock()
		bs := reg.m[a.SID]
		reg.mu.Unlock()
		if bs == nil {
			boshTerminate(w, "item-not-found")
			return
		}
		bs.request(w, r, rid, payload, a.Restart == "true" || a.Restart == "1", a.Type == "terminate")
	})
}

// boshPayload returns what is between <body …> and </body>.
func boshPayload(raw []byte) []byte {
	end := bytes.IndexByte(raw, '>')
	if end < 0 || raw[end-1] == '/' {
		return nil
	}
	close := bytes.LastIndex(raw, []byte("</"))
	if close <= end {
		return nil
	}
	return raw[end+1 : close]
}

func boshTerminate(w http.ResponseWriter, cond string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	_, _ = io.WriteString(w, "<body xmlns='"+nsBOSH+"' type='terminate' condition='"+cond+"'/>")
}

func (srv *Server) boshCreate(reg *boshRegistry, w http.ResponseWriter, r *http.Request, o BOSHOptions, rid int64, to, waitAttr, lang string) {
	wait := boshMaxWait
	if n, err := strconv.Atoi(waitAttr); err == nil && n >= 0 && time.Duration(n)*time.Second < wait {
		wait = time.Duration(n) * time.Second
	}
	clientOf := o.ClientOf
	if clientOf == nil {
		clientOf = DirectClient
	}
	ip, secure := clientOf(r)
	bs := &boshSession{
		id: newID(), srv: srv, addr: clientAddr(r, ip), isSec: secure, tstate: r.TLS, domain: to, lang: lang, wait: wait, lastRID: rid,
		lastResp: map[int64][]byte{}, inReady: make(chan struct{}, 1), outReady: make(chan struct{}),
		ridAdvanced: make(chan struct{}), outOfOrder: o.OutOfOrder, touched: time.Now(),
	}
	cn := &conn{t: bs}
	if !srv.admit(cn) {
		boshTerminate(w, "policy-violation")
		return
	}
	reg.mu.Lock()
	reg.m[bs.id] = bs
	reg.mu.Unlock()
	bs.feedHeader()
	go func() {
		defer func() {
			reg.mu.Lock()
			delete(reg.m, bs.id)
			reg.mu.Unlock()
		}()
		defer srv.release(cn)
		if s, rd, gen := srv.negotiate(cn, false); s != nil {
			s.loop(context.Background(), rd, gen)
		}
	}()
	go bs.watchInactivity()
	bs.respond(w, rid, true)
}

// feedHeader gives the stream reader the header the BOSH client implies.
func (bs *boshSession) feedHeader() {
	bs.mu.Lock()
	bs.feedHeaderLocked()
	bs.mu.Unlock()
	bs.signalIn()
}

func (bs *boshSession) feedHeaderLocked() {
	bs.in.WriteString("<stream:stream xmlns='jabber:client' xmlns:stream='" + wire.NSStream + "' to='")
	bs.in.Write(wire.AppendEscapedAttr(nil, bs.domain))
	if bs.lang != "" { // the session request's xml:lang is the stream's (XEP-0124 §7.1, XEP-0206)
		bs.in.WriteString("' xml:lang='")
		bs.in.Write(wire.AppendEscapedAttr(nil, bs.lang))
	}
	bs.in.WriteString("' version='1.0'>")
}

func (bs *boshSession) signalIn() {
	select {
	case bs.inReady <- struct{}{}:
	default:
	}
}

func (bs *boshSession) request(w http.ResponseWriter, r *http.Request, rid int64, payload []byte, restart, terminate bool) {
	bs.mu.Lock()
	if rid > bs.lastRID+1 && rid <= bs.lastRID+boshRequests && !bs.closed {
		if bs.early == rid {
			// A second request for a rid already waiting: more requests
			// at once than the window allows (XEP-0124 §11, overactive).
			if bs.terminal == nil {
				bs.terminal = []byte("<body xmlns='" + nsBOSH + "' type='terminate' condition='policy-violation'/>")
			}
			bs.mu.Unlock()
			bs.close()
			boshTerminate(w, "policy-violation")
			return
		}
		// XEP-0124 §14.3: it overtook a request still on its way; process
		// it after that one, in rid order.
		if !bs.awaitPredecessors(r, rid) || bs.closed {
			term := bs.terminal
			bs.mu.Unlock()
			if term == nil {
				boshTerminate(w, "item-not-found")
				return
			}
			w.Header().Set("Content-Type", "text/xml; charset=utf-8")
			_, _ = w.Write(term)
			return
		}
	}
	switch {
	case rid <= bs.lastRID:
		// A retransmission: answer it again if we still can.
		resp, ok := bs.lastResp[rid]
		bs.mu.Unlock()
		if !ok {
			boshTerminate(w, "item-not-found")
			return
		}
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		_, _ = w.Write(resp)
		return
	case rid > bs.lastRID+boshRequests:
		bs.mu.Unlock()
		boshTerminate(w, "item-not-found")
		return
	}
	bs.lastRID = rid
	close(bs.ridAdvanced)
	bs.ridAdvanced = make(chan struct{})
	bs.touched = time.Now()
	bs.in.Write(payload)
	if terminate {
		bs.in.WriteString("</stream:stream>")
	}
	if restart {
		// Under the same lock: a request that overtook this one must
		// not slip its payload in before the new stream header.
		bs.feedHeaderLocked()
	}
	bs.mu.Unlock()
	bs.signalIn()
	bs.respond(w, rid, false)
}

// awaitPredecessors waits, with bs.mu held on entry and on return, until
// every request before rid was processed. It gives up (false) when the
// missing request does not come within the inactivity period, or when the
// client goes away; the session is then over.
func (bs *boshSession) awaitPredecessors(r *http.Request, rid int64) bool {
	if bs.outOfOrder != nil {
		bs.outOfOrder(rid)
	}
	bs.early = rid
	defer func() { bs.early = 0 }() // runs with bs.mu held
	timer := time.NewTimer(boshInactivity)
	defer timer.Stop()
	for rid > bs.lastRID+1 && !bs.closed {
		advanced := bs.ridAdvanced
		bs.mu.Unlock()
		select {
		case <-advanced:
			bs.mu.Lock()
		case <-timer.C:
			bs.close()
			bs.mu.Lock()
			return false
		case <-r.Context().Done():
			bs.mu.Lock()
			return false
		}
	}
	return true
}

// respond holds the request until there is output, wait passes, or a newer
// request takes its place, then answers with what is queued.
func (bs *boshSession) respond(w http.ResponseWriter, rid int64, creation bool) {
	bs.mu.Lock()
	if bs.holding != nil {
		close(bs.holding) // one held request at a time (hold=1)
	}
	mine := make(chan struct{})
	bs.holding = mine
	bs.mu.Unlock()
	timer := time.NewTimer(bs.wait)
	defer timer.Stop()
	for {
		bs.mu.Lock()
		ready := len(bs.out) > 0 || bs.terminal != nil || bs.closed
		outReady := bs.outReady
		bs.mu.Unlock()
		if ready {
			break
		}
		if f := boshHolding.Load(); f != nil {
			(*f)(bs.id)
		}
		select {
		case <-outReady:
			continue
		case <-timer.C:
		case <-mine:
		}
		break
	}
	bs.mu.Lock()
	if bs.holding == mine {
		bs.holding = nil
	}
	out := bs.out
	bs.out, bs.outBytes = nil, 0
	if len(out) > 0 && bs.outTaken != nil { // room for the writer waiting for it
		close(bs.outTaken)
		bs.outTaken = nil
	}
	var b []byte
	if creation {
		b = []byte("<body xmlns='" + nsBOSH + "' xmlns:stream='" + wire.NSStream + "' xmlns:xmpp='" + nsXBOSH +
			"' sid='" + bs.id + "' wait='" + strconv.Itoa(int(bs.wait/time.Second)) +
			"' requests='" + strconv.Itoa(boshRequests) + "' hold='1' inactivity='" + strconv.Itoa(int(boshInactivity/time.Second)) +
			"' polling='2' ver='1.11' xmpp:version='1.0' xmpp:restartlogic='true' from='")
		b = wire.AppendEscapedAttr(b, bs.domain)
		b = append(b, "'>"...)
	} else {
		b = []byte("<body xmlns='" + nsBOSH + "' xmlns:stream='" + wire.NSStream + "'>")
	}
	if len(out) == 0 && bs.terminal != nil {
		b = bs.terminal
	} else {
		for _, e := range out {
			b = append(b, e...)
		}
		b = append(b, "</body>"...)
	}
	bs.lastResp[rid] = b
	delete(bs.lastResp, rid-boshRequests)
	bs.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	_, _ = w.Write(b)
}

func (bs *boshSession) watchInactivity() {
	for {
		time.Sleep(5 * time.Second)
		bs.mu.Lock()
		closed := bs.closed
		idle := bs.holding == nil && time.Since(bs.touched) > boshInactivity+bs.wait
		bs.mu.Unlock()
		if closed {
			return
		}
		if idle {
			bs.close() // the link is gone: the session hibernates or ends
			return
		}
	}
}

// transport implementation.

func (bs *boshSession) Read(p []byte) (int, error) {
	for {
		bs.mu.Lock()
		if bs.in.Len() > 0 {
			n, _ := bs.in.Read(p)
			bs.mu.Unlock()
			return n, nil
		}
		closed, deadline := bs.closed, bs.readDeadline
		bs.mu.Unlock()
		if closed {
			return 0, errBOSHClosed
		}
		if deadline.IsZero() {
			<-bs.inReady
			continue
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return 0, os.ErrDeadlineExceeded
		}
		t := time.NewTimer(wait)
		select {
		case <-bs.inReady:
		case <-t.C:
		}
		t.Stop()
	}
}

func (bs *boshSession) writeBatch(elems [][]byte, deadline time.Time) error {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if bs.closed && bs.terminal == nil {
		return errBOSHClosed
	}
	// What waits for the client's requests is bounded like a TCP socket's
	// buffer: past half the session buffer the writer waits for a request
	// to take it, until its deadline, as a write to a client that does not
	// read blocks. Meanwhile the session's queue holds what follows, within
	// the session buffer, and senders that go on once a stanza is written
	// (offline delivery) wait too. A client that stops fetching is a slow
	// consumer and loses its session. The stream error and close that end
	// a session do not wait: they do not go into out.
	n := 0
	for _, e := range elems {
		if !boshTerminal(e) {
			n += len(e)
		}
	}
	for n > 0 && bs.outBytes+n > bs.srv.opts.SessionBuffer/2 && len(bs.out) > 0 {
		if bs.closed {
			return errBOSHClosed
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return errBOSHFull
		}
		if bs.outTaken == nil {
			bs.outTaken = make(chan struct{})
		}
		taken := bs.outTaken
		bs.mu.Unlock()
		if f := boshFull.Load(); f != nil {
			(*f)(bs.id)
		}
		t := time.NewTimer(wait)
		select {
		case <-taken:
		case <-t.C:
		}
		t.Stop()
		bs.mu.Lock()
	}
	if bs.closed && bs.terminal == nil {
		return errBOSHClosed
	}
	bs.outBytes += n
	for _, e := range elems {
		switch {
		case len(e) == 0:
		case bytes.HasPrefix(e, []byte("<?xml")), bytes.HasPrefix(e, []byte("<stream:stream")):
			// The session creation response stands for the stream header.
		case bytes.Equal(e, []byte("</stream:stream>")):
			if bs.terminal == nil {
				bs.terminal = []byte("<body xmlns='" + nsBOSH + "' type='terminate'/>")
			}
		case bytes.HasPrefix(e, []byte("<stream:error")):
			t := []byte("<body xmlns='" + nsBOSH + "' xmlns:stream='" + wire.NSStream + "' type='terminate' condition='remote-stream-error'>")
			t = append(t, e...)
			bs.terminal = append(t, "</body>"...)
		default:
			bs.out = append(bs.out, qualify(e))
		}
	}
	close(bs.outReady)
	bs.outReady = make(chan struct{})
	return nil
}

// setReadDeadline bounds reads as on a socket: the negotiation timeout
// applies to BOSH sessions too.
func (bs *boshSession) setReadDeadline(d time.Time) {
	bs.mu.Lock()
	bs.readDeadline = d
	bs.mu.Unlock()
	bs.signalIn() // a blocked Read looks at the new deadline
}

func (bs *boshSession) close() error {
	bs.mu.Lock()
	if !bs.closed {
		bs.closed = true
		close(bs.outReady)
		bs.outReady = make(chan struct{})
		if bs.outTaken != nil { // a waiting writer sees the session closed
			close(bs.outTaken)
			bs.outTaken = nil
		}
		if bs.ridAdvanced != nil { // wake requests waiting for their turn
			close(bs.ridAdvanced)
			bs.ridAdvanced = make(chan struct{})
		}
	}
	bs.mu.Unlock()
	bs.signalIn()
	return nil
}

func (bs *boshSession) remoteAddr() net.Addr           { return bs.addr }
func (bs *boshSession) tlsState() *tls.ConnectionState { return bs.tstate }
func (bs *boshSession) secure() bool                   { return bs.isSec }
func (bs *boshSession) framed() bool                   { return false }
