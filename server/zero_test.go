package server_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/blocking"
	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/pep"
	"github.com/xmppd/xmppd/private"
	"github.com/xmppd/xmppd/push"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/upload"
	"github.com/xmppd/xmppd/vcard"
	"github.com/xmppd/xmppd/wire"
)

// TestZeroMeansWhatTheExampleSays: every numeric limit that the example
// documents with a special value 0 ("unlimited", "no resumption", "only the
// stanza size limit") is run with 0 and driven past its default.
func TestZeroMeansWhatTheExampleSays(t *testing.T) {
	const pw = "pw-alice-1"
	// noError fails if c received an error among what the server queued for
	// it before a ping answer.
	noError := func(t *testing.T, c *client.Client, what string) {
		t.Helper()
		if _, err := c.IQ(timeout, "<iq type='get' id='zbarrier' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", "zbarrier"); err != nil {
			t.Fatal(err)
		}
		if st, err := c.Expect(0, func(s *wire.Stanza) bool { return s.Type == "error" }); err == nil {
			t.Fatalf("%s: %s", what, st.Raw)
		}
	}
	result := func(t *testing.T, c *client.Client, raw, id string) {
		t.Helper()
		st, err := c.IQ(timeout, raw, id)
		if err != nil || st.Type != "result" {
			t.Fatalf("%.200s: %v %v", raw, err, st)
		}
	}
	cases := []struct {
		key   string
		edit  func(*conf.Config)
		check func(t *testing.T, e *servertest.Env)
	}{
		{"limits@max-sessions-per-account", func(c *conf.Config) { c.Limits.MaxSessionsPerAccount = 0 }, func(t *testing.T, e *servertest.Env) {
			for i := range 21 { // default 20
				e.Login("alice", pw, fmt.Sprint("r", i))
			}
		}},
		{"limits@max-connections-per-ip", func(c *conf.Config) { c.Limits.MaxConnectionsPerIP = 0 }, func(t *testing.T, e *servertest.Env) {
			for i := range 101 { // default 100
				conn, err := net.Dial("tcp", e.Plain)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = conn.Close() })
				rd := wire.NewReader(conn, 0)
				_, _ = conn.Write([]byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"))
				if _, err := rd.Header(); err != nil {
					t.Fatalf("connection %d: %v", i+1, err)
				}
				if st, err := rd.Next(); err != nil || st.Name != "features" {
					t.Fatalf("connection %d: %v %v", i+1, err, st)
				}
			}
		}},
		{"limits@max-roster-items", func(c *conf.Config) { c.Limits.MaxRosterItems = 0 }, func(t *testing.T, e *servertest.Env) {
			c := e.Login("alice", pw, "r")
			for i := range 1001 { // default 1000
				_ = c.Send(fmt.Sprintf("<iq type='set' id='rs%d'><query xmlns='jabber:iq:roster'><item jid='c%d@example.org'/></query></iq>", i, i))
			}
			noError(t, c, "roster set")
		}},
		{"modules/blocking@max-items", func(c *conf.Config) { c.Module("blocking").(*blocking.Config).MaxItems = 0 }, func(t *testing.T, e *servertest.Env) {
			var b strings.Builder
			for i := range 1001 { // default 1000
				fmt.Fprintf(&b, "<item jid='c%d@example.org'/>", i)
			}
			result(t, e.Login("alice", pw, "r"), "<iq type='set' id='bl'><block xmlns='urn:xmpp:blocking'>"+b.String()+"</block></iq>", "bl")
		}},
		{"modules/vcard@max-size", func(c *conf.Config) { c.Module("vcard").(*vcard.Config).MaxSize = 0 }, func(t *testing.T, e *servertest.Env) {
			desc := strings.Repeat("x", 150<<10) // default 128KiB
			result(t, e.Login("alice", pw, "r"), "<iq type='set' id='vc'><vCard xmlns='vcard-temp'><DESC>"+desc+"</DESC></vCard></iq>", "vc")
		}},
		{"modules/private@max-size", func(c *conf.Config) { c.Module("private").(*private.Config).MaxSize = 0 }, func(t *testing.T, e *servertest.Env) {
			c := e.Login("alice", pw, "r")
			text := strings.Repeat("x", 220<<10)
			for i := range 5 { // 1.1 MiB; default 1MiB
				id := fmt.Sprint("pv", i)
				result(t, c, fmt.Sprintf("<iq type='set' id='%s'><query xmlns='jabber:iq:private'><x xmlns='urn:example:%d'>%s</x></query></iq>", id, i, text), id)
			}
		}},
		{"modules/offline@max-messages", func(c *conf.Config) { c.Module("offline").(interface{ SetMax(int) }).SetMax(0) }, func(t *testing.T, e *servertest.Env) {
			e.AddUser("bob", "pw-bob-1")
			c := e.Login("alice", pw, "r")
			for i := range 1001 { // default 1000
				_ = c.Send(fmt.Sprintf("<message to='bob@localhost' type='chat' id='m%d'><body>%d</body></message>", i, i))
			}
			noError(t, c, "offline message")
		}},
		{"modules/push@max-devices", func(c *conf.Config) { c.Module("push").(*push.Config).MaxDevices = 0 }, func(t *testing.T, e *servertest.Env) {
			c := e.Login("alice", pw, "r")
			for i := range 11 { // default 10
				id := fmt.Sprint("en", i)
				result(t, c, fmt.Sprintf("<iq type='set' id='%s'><enable xmlns='urn:xmpp:push:0' jid='app@localhost' node='device-%d'/></iq>", id, i), id)
			}
		}},
		{"modules/upload@quota,requests-per-minute", func(c *conf.Config) {
			u := c.Module("upload").(*upload.Config)
			u.Quota, u.RequestsPerMinute = 0, 0
		}, func(t *testing.T, e *servertest.Env) {
			c := e.Login("alice", pw, "r")
			for i := range 31 { // default 30 a minute; 31 × 100MiB > the 1GiB default quota
				id := fmt.Sprint("up", i)
				result(t, c, fmt.Sprintf("<iq type='get' id='%s' to='upload.localhost'><request xmlns='urn:xmpp:http:upload:0' filename='f%d.bin' size='%d' content-type='application/octet-stream'/></iq>", id, i, 100<<20), id)
			}
		}},
		{"modules/stream-management@resume-timeout", func(c *conf.Config) {
			c.Module("stream-management").(interface{ SetResumeTimeout(time.Duration) }).SetResumeTimeout(0)
		}, func(t *testing.T, e *servertest.Env) {
			c := e.Login("alice", pw, "r")
			if _, err := c.EnableSM(timeout, true); err != nil {
				t.Fatal(err)
			}
			if c.SMID() != "" {
				t.Fatalf("resumption offered (id %q) with resume-timeout=0", c.SMID())
			}
		}},
		{"registration@per-ip-per-hour", func(c *conf.Config) {
			c.Registration.Enabled, c.Registration.PerIPPerHour = true, 0
		}, func(t *testing.T, e *servertest.Env) {
			for i := range 6 { // default 5
				cfg := e.ClientConfig(fmt.Sprint("new", i), "pw-new-user-1", "")
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				err := client.Register(ctx, cfg)
				cancel()
				if err != nil {
					t.Fatalf("registration %d: %v", i+1, err)
				}
			}
		}},
		{"modules/pep@max-nodes", func(c *conf.Config) { c.Module("pep").(*pep.Config).MaxNodes = 0 }, func(t *testing.T, e *servertest.Env) {
			c := e.Login("alice", pw, "r")
			for i := range 257 { // default 256
				id := fmt.Sprint("pub", i)
				result(t, c, fmt.Sprintf("<iq type='set' id='%s'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:example:n%d'><item id='x'><x xmlns='urn:example'/></item></publish></pubsub></iq>", id, i), id)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.key, func(t *testing.T) {
			e := servertest.Start(t, tc.edit)
			e.AddUser("alice", pw)
			tc.check(t, e)
		})
	}
}
