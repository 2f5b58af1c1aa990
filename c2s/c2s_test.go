package c2s_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/wire"
)

const timeout = 10 * time.Second

// rawSession writes input on a plain connection and returns everything
// the server wrote until it closed the connection.
func rawSession(t *testing.T, addr string, input ...string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	for _, in := range input {
		if _, err := io.WriteString(c, in); err != nil {
			break
		}
	}
	out, _ := io.ReadAll(c)
	return string(out)
}

const header = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"

func wantStreamError(t *testing.T, out, cond string) {
	t.Helper()
	i := strings.Index(out, "<stream:error")
	if i < 0 || !strings.Contains(out[i:], "<"+cond+" xmlns='urn:ietf:params:xml:ns:xmpp-streams'") {
		t.Fatalf("want stream error %s, got %q", cond, out)
	}
	if !strings.HasSuffix(strings.TrimSpace(out), "</stream:stream>") {
		t.Fatalf("stream not closed after the error: %q", out)
	}
}

func TestStreamErrors(t *testing.T) {
	e := servertest.Start(t, func(c *conf.Config) { c.Limits.MaxStanzaSize = 10000 })
	cases := []struct {
		name  string
		input []string
		cond  string
	}{
		{"unknown host", []string{strings.Replace(header, "to='localhost'", "to='example.net'", 1)}, "host-unknown"},
		{"no host", []string{strings.Replace(header, " to='localhost'", "", 1)}, "host-unknown"},
		{"wrong content namespace", []string{strings.Replace(header, "jabber:client", "jabber:server", 1)}, "invalid-namespace"},
		{"wrong stream namespace", []string{strings.Replace(header, "http://etherx.jabber.org/streams", "urn:wrong", 1)}, "invalid-namespace"},
		{"not well-formed", []string{header, "<message><body>x</message>"}, "not-well-formed"},
		{"doctype", []string{"<?xml version='1.0'?><!DOCTYPE foo [<!ENTITY x 'y'>]>" + header}, "restricted-xml"},
		{"comment", []string{header, "<!-- hi -->"}, "restricted-xml"},
		{"oversize", []string{header, "<message><body>" + strings.Repeat("a", 20000) + "</body></message>"}, "policy-violation"},
		{"stanza before auth", []string{header, "<message to='x@localhost'><body>hi</body></message>"}, "not-authorized"},
		{"auth without TLS", []string{header, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>"}, "policy-violation"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := rawSession(t, e.StartTLS, tc.input...)
			wantStreamError(t, out, tc.cond)
		})
	}
}

func TestNegotiationTimeout(t *testing.T) {
	e := servertest.Start(t, func(c *conf.Config) { c.Limits.NegotiationTimeout = 500 * time.Millisecond })
	start := time.Now()
	out := rawSession(t, e.StartTLS, header)
	wantStreamError(t, out, "connection-timeout")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("idle unauthenticated connection lived %v", d)
	}
}

func TestLoginMechanisms(t *testing.T) {
	e := servertest.Start(t, nil)
	e.AddUser("alice", "secret-pw")
	for _, mech := range []string{"SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-512-PLUS", "PLAIN"} {
		for _, mode := range []client.Mode{client.StartTLS, client.DirectTLS} {
			cfg := e.ClientConfig("alice", "secret-pw", "r")
			cfg.Mechanism = mech
			cfg.Mode = mode
			if mode == client.DirectTLS {
				cfg.Addr = e.DirectTLS
			}
			c := e.LoginWith(cfg)
			if c.JID != "alice@localhost/r" {
				t.Fatalf("%s: bound %q", mech, c.JID)
			}
			if _, err := c.IQ(timeout, "<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", "p1"); err != nil {
				t.Fatalf("%s: ping: %v", mech, err)
			}
			c.Close()
		}
	}
}

func TestTLS13Exporter(t *testing.T) {
	e := servertest.Start(t, nil)
	e.AddUser("alice", "secret-pw")
	cfg := e.ClientConfig("alice", "secret-pw", "r")
	cfg.Mechanism = "SCRAM-SHA-256-PLUS"
	cfg.TLS.MinVersion = tls.VersionTLS13
	c := e.LoginWith(cfg)
	if c.JID == "" {
		t.Fatal("no JID")
	}
}

func TestAuthFailureRetryAndLimit(t *testing.T) {
	e := servertest.Start(t, func(c *conf.Config) { c.Auth.MaxFailures = 2 })
	e.AddUser("alice", "secret-pw")
	cfg := e.ClientConfig("alice", "wrong", "r")
	_, err := client.Dial(context.Background(), cfg)
	var ae *client.AuthError
	if !errors.As(err, &ae) || !strings.Contains(ae.Raw, "<not-authorized/>") {
		t.Fatalf("want not-authorized, got %v", err)
	}
	// Unknown users fail the same way.
	cfg.Username = "nobody"
	_, err = client.Dial(context.Background(), cfg)
	if !errors.As(err, &ae) || !strings.Contains(ae.Raw, "<not-authorized/>") {
		t.Fatalf("unknown user: want not-authorized, got %v", err)
	}
}

func TestWebSocketLogin(t *testing.T) {
	e := servertest.Start(t, trustLoopback) // as behind a TLS-terminating proxy
	e.AddUser("alice", "secret-pw")
	e.AddUser("bob", "secret-pw")
	cfg := e.ClientConfig("alice", "secret-pw", "web")
	cfg.Mode, cfg.Addr = client.WebSocket, e.WS
	cfg.Header = forwarded("", "https")
	a := e.LoginWith(cfg)
	b := e.Login("bob", "secret-pw", "tcp")
	_ = a.Send("<presence/>")
	_ = b.Send("<presence/>")
	_ = a.Send("<message xmlns='jabber:client' to='bob@localhost/tcp' type='chat' id='m1'><body>over websocket</body></message>")
	m, err := b.Expect(timeout, client.Kind(wire.KindMessage))
	if err != nil {
		t.Fatal(err)
	}
	if m.From != "alice@localhost/web" || !client.Contains(m, "over websocket") {
		t.Fatalf("got %s", m.Raw)
	}
	_ = b.Send("<message to='alice@localhost/web' type='chat' id='m2'><body>back over tcp</body></message>")
	m, err = a.Expect(timeout, client.Kind(wire.KindMessage))
	if err != nil {
		t.Fatal(err)
	}
	if !client.Contains(m, "back over tcp") {
		t.Fatalf("got %s", m.Raw)
	}
}

func TestResourceConflict(t *testing.T) {
	e := servertest.Start(t, nil)
	e.AddUser("alice", "secret-pw")
	first := e.Login("alice", "secret-pw", "phone")
	second := e.Login("alice", "secret-pw", "phone")
	st, err := first.Next(timeout)
	if err != nil {
		t.Fatal(err)
	}
	if st.Name != "error" || !client.Contains(st, "<conflict") {
		t.Fatalf("old session got %s", st.Raw)
	}
	if _, err := second.IQ(timeout, "<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>", "p"); err != nil {
		t.Fatal(err)
	}
}

func TestServerGeneratedResource(t *testing.T) {
	e := servertest.Start(t, nil)
	e.AddUser("alice", "secret-pw")
	c := e.Login("alice", "secret-pw", "")
	if !strings.HasPrefix(c.JID, "alice@localhost/") || len(c.JID) <= len("alice@localhost/") {
		t.Fatalf("bound %q", c.JID)
	}
}

func TestSpoofedFrom(t *testing.T) {
	e := servertest.Start(t, nil)
	e.AddUser("alice", "secret-pw")
	c := e.Login("alice", "secret-pw", "r")
	_ = c.Send("<message from='bob@localhost/x' to='alice@localhost'><body>spoof</body></message>")
	st, err := c.Next(timeout)
	if err != nil {
		t.Fatal(err)
	}
	if !client.Contains(st, "<invalid-from") {
		t.Fatalf("got %s", st.Raw)
	}
}

func TestStanzaErrors(t *testing.T) {
	e := servertest.Start(t, nil)
	e.AddUser("alice", "secret-pw")
	c := e.Login("alice", "secret-pw", "r")
	cases := []struct{ send, id, cond string }{
		{"<iq type='get' id='a' to='localhost'><query xmlns='urn:example:unknown'/></iq>", "a", "service-unavailable"},
		{"<iq type='get' id='b' to='nobody@localhost'><query xmlns='jabber:iq:version'/></iq>", "b", "service-unavailable"},
		{"<iq type='get' id='c' to='alice@localhost/offline'><ping xmlns='urn:xmpp:ping'/></iq>", "c", "service-unavailable"},
		{"<message id='d' to='a@b@c' type='chat'><body>x</body></message>", "d", "jid-malformed"},
		{"<message id='e' to='nobody@localhost' type='chat'><body>x</body></message>", "e", "service-unavailable"},
		{"<iq type='get' id='f' to='user@remote.example'><ping xmlns='urn:xmpp:ping'/></iq>", "f", "remote-server-not-found"},
		{"<iq type='get' id='g' to='localhost'/>", "g", "bad-request"},
	}
	for _, tc := range cases {
		st, err := c.IQ(timeout, tc.send, tc.id)
		if err != nil {
			t.Fatalf("%s: %v", tc.id, err)
		}
		if st.Type != "error" || !client.Contains(st, "<"+tc.cond+" xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'") {
			t.Fatalf("%s: want %s, got %s", tc.id, tc.cond, st.Raw)
		}
	}
}

func TestSmallServices(t *testing.T) {
	e := servertest.Start(t, nil)
	e.AddUser("alice", "secret-pw")
	c := e.Login("alice", "secret-pw", "r")
	cases := []struct{ send, id, want string }{
		{"<iq type='get' id='v' to='localhost'><query xmlns='jabber:iq:version'/></iq>", "v", "<name>xmppd</name>"},
		{"<iq type='get' id='t' to='localhost'><time xmlns='urn:xmpp:time'/></iq>", "t", "<utc>"},
		{"<iq type='get' id='l' to='localhost'><query xmlns='jabber:iq:last'/></iq>", "l", "seconds='"},
		{"<iq type='get' id='d' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", "d", "<feature var='urn:xmpp:ping'/>"},
		{"<iq type='get' id='i' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>", "i", "disco#items"},
		{"<iq type='get' id='a' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", "a", "category='account'"},
		{"<iq type='set' id='s'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>", "s", "type='result'"},
	}
	for _, tc := range cases {
		st, err := c.IQ(timeout, tc.send, tc.id)
		if err != nil {
			t.Fatalf("%s: %v", tc.id, err)
		}
		if st.Type != "result" || !client.Contains(st, tc.want) {
			t.Fatalf("%s: want %q in a result, got %s", tc.id, tc.want, st.Raw)
		}
	}
	if !bytes.Contains(c.Features, []byte("http://jabber.org/protocol/caps")) {
		t.Fatalf("no caps in stream features: %s", c.Features)
	}
}

func TestShutdownSendsSystemShutdown(t *testing.T) {
	e := servertest.Start(t, nil)
	e.AddUser("alice", "secret-pw")
	c := e.Login("alice", "secret-pw", "r")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := e.Srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := c.Next(timeout)
	if err != nil {
		t.Fatal(err)
	}
	if !client.Contains(st, "<system-shutdown") {
		t.Fatalf("got %s", st.Raw)
	}
}

func TestDeadClientDropped(t *testing.T) {
	e := servertest.Start(t, func(c *conf.Config) {
		c.Limits.PingInterval = 300 * time.Millisecond
		c.Limits.PingTimeout = 300 * time.Millisecond
	})
	e.AddUser("alice", "secret-pw")
	cfg := e.ClientConfig("alice", "secret-pw", "r")
	cfg.Silent = true
	c := e.LoginWith(cfg)
	// The client reads the ping but never answers it.
	st, err := c.Expect(timeout, func(s *wire.Stanza) bool { return s.PayloadNS == "urn:xmpp:ping" })
	if err != nil {
		t.Fatalf("no ping from the server: %v", err)
	}
	if st.Type != "get" {
		t.Fatalf("got %s", st.Raw)
	}
	st, err = c.Expect(timeout, func(s *wire.Stanza) bool { return s.Name == "error" })
	if err != nil {
		t.Fatalf("silent client not dropped: %v", err)
	}
	if !client.Contains(st, "<connection-timeout") {
		t.Fatalf("got %s", st.Raw)
	}
}

func TestConnectionsPerIPLimit(t *testing.T) {
	e := servertest.Start(t, func(c *conf.Config) { c.Limits.MaxConnectionsPerIP = 3 })
	var held []net.Conn
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", e.StartTLS)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
		_, _ = io.WriteString(c, header)
	}
	// Wait until the server has answered the three, so they are counted.
	for _, c := range held {
		_ = c.SetReadDeadline(time.Now().Add(timeout))
		buf := make([]byte, 64)
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	out := rawSession(t, e.StartTLS, header)
	wantStreamError(t, out, "policy-violation")
	// Closing one makes room again, as soon as the server has seen it go:
	// new connections are refused until then, and accepted after.
	held[0].Close()
	deadline := time.Now().Add(timeout)
	for {
		out = rawSession(t, e.StartTLS, header, "</stream:stream>")
		if !strings.Contains(out, "policy-violation") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still refused %v after another connection closed: %q", timeout, out)
		}
	}
	if !strings.HasSuffix(out, "</stream:stream>") || !strings.Contains(out, "<stream:features") {
		t.Fatalf("the new connection was not served: %q", out)
	}
}

func TestStanzaFloodIsShaped(t *testing.T) {
	e := servertest.Start(t, func(c *conf.Config) { c.Limits.StanzasPerSecond = 20 })
	e.AddUser("alice", "secret-pw")
	c := e.Login("alice", "secret-pw", "r")
	const n = 60
	start := time.Now()
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString("<iq type='get' id='f" + strconv.Itoa(i) + "' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	}
	_ = c.Send(b.String())
	for i := 0; i < n; i++ {
		st, err := c.Expect(timeout, client.ID("f"+strconv.Itoa(i)))
		if err != nil || st.Type != "result" {
			t.Fatalf("ping %d: %v %v", i, err, st)
		}
	}
	// 60 stanzas at 20/s with a burst of 20 take at least two seconds;
	// none is lost or refused.
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Fatalf("60 stanzas answered in %v despite a limit of 20/s", d)
	}
}
