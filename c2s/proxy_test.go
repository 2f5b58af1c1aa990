package c2s_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/xmppd/xmppd/c2s"
	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/server/servertest"
)

func TestBehindProxies(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	cases := []struct {
		name   string
		peer   string
		tls    bool
		header map[string][]string
		ip     string
		secure bool
	}{
		{"untrusted peer: headers ignored", "192.0.2.7:4000", false,
			map[string][]string{"X-Forwarded-For": {"198.51.100.1"}, "X-Forwarded-Proto": {"https"}}, "192.0.2.7", false},
		{"untrusted loopback is not secure", "127.0.0.1:4000", false, nil, "127.0.0.1", false},
		{"untrusted peer over TLS", "192.0.2.7:4000", true, nil, "192.0.2.7", true},
		{"trusted proxy, one hop", "10.1.1.1:4000", false,
			map[string][]string{"X-Forwarded-For": {"198.51.100.1"}, "X-Forwarded-Proto": {"https"}}, "198.51.100.1", true},
		{"client-written hops left of the real one are ignored", "10.1.1.1:4000", false,
			map[string][]string{"X-Forwarded-For": {"203.0.113.9, 198.51.100.1"}}, "198.51.100.1", false},
		{"chain of trusted proxies", "10.1.1.1:4000", false,
			map[string][]string{"X-Forwarded-For": {"203.0.113.9, 198.51.100.1", "10.2.2.2"}}, "198.51.100.1", false},
		{"only trusted hops: the leftmost", "10.1.1.1:4000", false,
			map[string][]string{"X-Forwarded-For": {"10.3.3.3, 10.2.2.2"}}, "10.3.3.3", false},
		{"unparsable hop stops the walk", "10.1.1.1:4000", false,
			map[string][]string{"X-Forwarded-For": {"198.51.100.1, unknown, 10.2.2.2"}}, "10.2.2.2", false},
		{"hop with a port", "10.1.1.1:4000", false,
			map[string][]string{"X-Forwarded-For": {"198.51.100.1:5555"}}, "198.51.100.1", false},
		{"IPv6 hop in brackets", "[::1]:4000", false,
			map[string][]string{"X-Forwarded-For": {"[2001:db8::1]"}}, "2001:db8::1", false},
		{"no header: the proxy itself", "10.1.1.1:4000", false, nil, "10.1.1.1", false},
		{"proto http", "10.1.1.1:4000", false, map[string][]string{"X-Forwarded-Proto": {"http"}}, "10.1.1.1", false},
		{"nearest proxy's proto wins", "10.1.1.1:4000", false, map[string][]string{"X-Forwarded-Proto": {"https, http"}}, "10.1.1.1", false},
		{"Forwarded proto", "10.1.1.1:4000", false, map[string][]string{"Forwarded": {`for=198.51.100.1;proto=https`}}, "10.1.1.1", true},
		{"Forwarded, last element", "10.1.1.1:4000", false, map[string][]string{"Forwarded": {`proto=https, for=10.2.2.2;proto=http`}}, "10.1.1.1", false},
	}
	clientOf := c2s.BehindProxies(trusted)
	for _, tc := range cases {
		r := httptest.NewRequest("GET", "/xmpp-websocket", nil)
		r.RemoteAddr = tc.peer
		if tc.tls {
			r.TLS = &tls.ConnectionState{}
		}
		for k, v := range tc.header {
			r.Header[k] = v
		}
		ip, secure := clientOf(r)
		if ip.String() != tc.ip || secure != tc.secure {
			t.Errorf("%s: got %s secure=%v, want %s secure=%v", tc.name, ip, secure, tc.ip, tc.secure)
		}
	}
}

// wsOpen opens an XMPP WebSocket stream with header and returns the
// connection and the stream features, or the close status if the server
// refused the connection.
func wsOpen(t *testing.T, e *servertest.Env, header http.Header) (*websocket.Conn, string, websocket.StatusCode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, e.WS, &websocket.DialOptions{Subprotocols: []string{"xmpp"}, HTTPHeader: header})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	if err := c.Write(ctx, websocket.MessageText, []byte("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>")); err != nil {
		if s := websocket.CloseStatus(err); s != -1 {
			return nil, "", s
		}
		t.Fatal(err)
	}
	var features string
	for i := 0; i < 2; i++ {
		_, b, err := c.Read(ctx)
		if err != nil {
			if s := websocket.CloseStatus(err); s != -1 {
				return nil, "", s
			}
			t.Fatal(err)
		}
		features = string(b)
	}
	if !strings.Contains(features, "<stream:features") {
		t.Fatalf("want stream features, got %s", features)
	}
	return c, features, -1
}

func forwarded(ip, proto string) http.Header {
	h := http.Header{}
	if ip != "" {
		h.Set("X-Forwarded-For", ip)
	}
	if proto != "" {
		h.Set("X-Forwarded-Proto", proto)
	}
	return h
}

func trustLoopback(c *conf.Config) {
	c.Listeners.HTTP[0].TrustedProxies = conf.PrefixList{netip.MustParsePrefix("127.0.0.0/8")}
}

// TestWebSocketSecureOnlyThroughTrustedProxy: a plain-HTTP WebSocket from
// loopback is not secure by itself (no SASL where TLS is required); it is
// when a trusted proxy says the client came over TLS, and a peer that is
// not trusted cannot say so.
func TestWebSocketSecureOnlyThroughTrustedProxy(t *testing.T) {
	t.Run("untrusted", func(t *testing.T) {
		e := servertest.Start(t, nil)
		for _, h := range []http.Header{nil, forwarded("198.51.100.1", "https")} {
			c, f, _ := wsOpen(t, e, h)
			if strings.Contains(f, "<mechanisms") {
				t.Fatalf("SASL offered on plain HTTP from an untrusted peer: %s", f)
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			_ = c.Write(ctx, websocket.MessageText, []byte("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldC1wdw==</auth>"))
			_, b, err := c.Read(ctx)
			cancel()
			if err != nil || !strings.Contains(string(b), "<encryption-required/>") {
				t.Fatalf("auth on an insecure stream: %q %v", b, err)
			}
		}
	})
	t.Run("trusted", func(t *testing.T) {
		e := servertest.Start(t, trustLoopback)
		e.AddUser("alice", "secret-pw")
		for _, proto := range []string{"", "http"} {
			if _, f, _ := wsOpen(t, e, forwarded("198.51.100.1", proto)); strings.Contains(f, "<mechanisms") {
				t.Fatalf("proto %q: SASL offered: %s", proto, f)
			}
		}
		cfg := e.ClientConfig("alice", "secret-pw", "web")
		cfg.Mode, cfg.Addr = client.WebSocket, e.WS
		cfg.Header = forwarded("198.51.100.1", "https")
		if c := e.LoginWith(cfg); c.JID != "alice@localhost/web" {
			t.Fatalf("bound %q", c.JID)
		}
	})
}

// TestWebSocketLimitsApplyToRealClient: max-connections-per-ip counts the
// client address a trusted proxy reports, and only a trusted proxy's.
func TestWebSocketLimitsApplyToRealClient(t *testing.T) {
	limit := func(c *conf.Config) { c.Limits.MaxConnectionsPerIP = 1 }
	t.Run("trusted", func(t *testing.T) {
		e := servertest.Start(t, func(c *conf.Config) { limit(c); trustLoopback(c) })
		if _, _, st := wsOpen(t, e, forwarded("198.51.100.1", "https")); st != -1 {
			t.Fatalf("first client refused: %v", st)
		}
		if _, _, st := wsOpen(t, e, forwarded("198.51.100.2", "https")); st != -1 {
			t.Fatalf("a second client behind the same proxy refused: %v", st)
		}
		if _, _, st := wsOpen(t, e, forwarded("198.51.100.1", "https")); st != websocket.StatusPolicyViolation {
			t.Fatalf("second connection of one client: %v, want policy violation", st)
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		e := servertest.Start(t, limit)
		if _, _, st := wsOpen(t, e, forwarded("198.51.100.1", "")); st != -1 {
			t.Fatalf("first connection refused: %v", st)
		}
		if _, _, st := wsOpen(t, e, forwarded("198.51.100.2", "")); st != websocket.StatusPolicyViolation {
			t.Fatalf("an untrusted peer's X-Forwarded-For was believed: %v", st)
		}
	})
}

// TestWebSocketAuthThrottleAppliesToRealClient: failed logins are charged
// to the client a trusted proxy reports, not to the proxy.
func TestWebSocketAuthThrottleAppliesToRealClient(t *testing.T) {
	e := servertest.Start(t, func(c *conf.Config) {
		trustLoopback(c)
		c.Auth.IPFailuresPerMinute = 1
	})
	e.AddUser("alice", "secret-pw")
	login := func(ip, password string) string {
		cfg := e.ClientConfig("alice", password, "web")
		cfg.Mode, cfg.Addr = client.WebSocket, e.WS
		cfg.Header = forwarded(ip, "https")
		c, err := client.Dial(context.Background(), cfg)
		if err == nil {
			c.Close()
			return ""
		}
		var ae *client.AuthError
		if !errors.As(err, &ae) {
			t.Fatal(err)
		}
		return ae.Raw
	}
	if got := login("198.51.100.1", "guess"); !strings.Contains(got, "<not-authorized/>") {
		t.Fatalf("wrong password: %s", got)
	}
	if got := login("198.51.100.1", "secret-pw"); !strings.Contains(got, "<temporary-auth-failure/>") {
		t.Fatalf("right password from the throttled client: %q", got)
	}
	if got := login("198.51.100.2", "secret-pw"); got != "" {
		t.Fatalf("another client behind the same proxy: %s", got)
	}
}
