package server_test

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/jingle/turn"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/wire"
)

// Every configuration key does what conf/xmppd.example.xml says, or config
// check refuses it. These tests run the real server with a key set and look
// at what a client sees.

// rawStream is a TLS connection speaking XMPP by hand, for what the client
// package does not do (several SASL attempts on one stream).
type rawStream struct {
	t    *testing.T
	conn net.Conn
	rd   *wire.Reader
}

func dialRaw(t *testing.T, e *servertest.Env) *rawStream {
	t.Helper()
	conn, err := tls.Dial("tcp", e.DirectTLS, &tls.Config{ServerName: e.Domain, InsecureSkipVerify: true}) //nolint:gosec // self-signed test certificate
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	r := &rawStream{t: t, conn: conn, rd: wire.NewReader(conn, 0)}
	r.open(e.Domain)
	return r
}

func (r *rawStream) send(s string) {
	r.t.Helper()
	if _, err := r.conn.Write([]byte(s)); err != nil {
		r.t.Fatal(err)
	}
}

// open sends a stream header and returns the features.
func (r *rawStream) open(domain string) *wire.Stanza {
	r.t.Helper()
	r.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" + domain + "' version='1.0'>")
	if _, err := r.rd.Header(); err != nil {
		r.t.Fatal(err)
	}
	return r.next()
}

func (r *rawStream) next() *wire.Stanza {
	r.t.Helper()
	st, err := r.rd.Next()
	if err != nil {
		r.t.Fatal(err)
	}
	return st
}

func plain(user, pw string) string {
	return "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
		base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pw)) + "</auth>"
}

// TestMaxFailuresZeroIsUnlimited: <auth max-failures="0"/> is documented
// as unlimited; the stream stays open after any number of failed attempts,
// and the right password then succeeds on it.
func TestMaxFailuresZeroIsUnlimited(t *testing.T) {
	e := servertest.Start(t, func(cfg *conf.Config) {
		cfg.Auth.MaxFailures = 0
		cfg.Auth.IPFailuresPerMinute = 0
		cfg.Auth.AccountFailuresPerMinute = 0
	})
	e.AddUser("alice", "pw-alice-1")
	r := dialRaw(t, e)
	for i := range 6 {
		r.send(plain("alice", "wrong"))
		if st := r.next(); st.Name != "failure" {
			t.Fatalf("attempt %d: %s", i+1, st.Raw)
		}
	}
	r.send(plain("alice", "pw-alice-1"))
	if st := r.next(); st.Name != "success" {
		t.Fatalf("right password after 6 failures: %s", st.Raw)
	}

	// A positive value still closes the stream.
	e = servertest.Start(t, func(cfg *conf.Config) {
		cfg.Auth.MaxFailures = 2
		cfg.Auth.IPFailuresPerMinute = 0
		cfg.Auth.AccountFailuresPerMinute = 0
	})
	e.AddUser("alice", "pw-alice-1")
	r = dialRaw(t, e)
	r.send(plain("alice", "wrong"))
	if st := r.next(); st.Name != "failure" {
		t.Fatalf("first attempt: %s", st.Raw)
	}
	r.send(plain("alice", "wrong"))
	if st := r.next(); st.Name != "failure" {
		t.Fatalf("second attempt: %s", st.Raw)
	}
	if st := r.next(); st.Name != "error" || !client.Contains(st, "policy-violation") {
		t.Fatalf("after max-failures: %s", st.Raw)
	}
}

// disco returns the features the server lists for the domain and for the
// user's bare JID, the items of the domain, and the stream features after
// authentication.
func disco(t *testing.T, e *servertest.Env) (features []string, items, streamFeatures string) {
	t.Helper()
	j := e.AddUser("probe", "pw-probe-1")
	c := e.Login("probe", "pw-probe-1", "r")
	for i, to := range []string{e.Domain, j} {
		id := "d" + string(rune('0'+i))
		st, err := c.IQ(timeout, "<iq type='get' id='"+id+"' to='"+to+"'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", id)
		if err != nil || st.Type != "result" {
			t.Fatalf("disco#info %s: %v %v", to, err, st)
		}
		var v struct {
			Features []struct {
				Var string `xml:"var,attr"`
			} `xml:"query>feature"`
		}
		if err := st.Decode(&v); err != nil {
			t.Fatal(err)
		}
		for _, f := range v.Features {
			features = append(features, f.Var)
		}
	}
	// What has no disco feature shows by answering: "answers:NS".
	for _, ns := range []string{"jabber:iq:private", "jabber:iq:roster"} {
		q := "<query xmlns='" + ns + "'/>"
		if ns == "jabber:iq:private" {
			q = "<query xmlns='" + ns + "'><x xmlns='urn:example'/></query>"
		}
		if st, err := c.IQ(timeout, "<iq type='get' id='a'>"+q+"</iq>", "a"); err == nil && st.Type == "result" {
			features = append(features, "answers:"+ns)
		}
	}
	st, err := c.IQ(timeout, "<iq type='get' id='di' to='"+e.Domain+"'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>", "di")
	if err != nil {
		t.Fatal(err)
	}
	return features, string(st.Raw), string(c.Features)
}

// TestModuleEnabledSwitches: for every module, enabled="false" takes away
// what the module serves (and its default state is what the example says).
// A module registered without a row here fails the test, so a new module
// must say how its switch shows.
func TestModuleEnabledSwitches(t *testing.T) {
	type shows func(features []string, items, streamFeatures string) bool
	feature := func(f string) shows {
		return func(fs []string, _, _ string) bool { return slices.Contains(fs, f) }
	}
	item := func(prefix string) shows {
		return func(_ []string, items, _ string) bool { return strings.Contains(items, "jid='"+prefix) }
	}
	rows := map[string]struct {
		on    bool // the default, as the example writes it
		shows shows
	}{
		"stream-management": {true, func(_ []string, _, sf string) bool { return strings.Contains(sf, "<sm xmlns='urn:xmpp:sm:3'/>") }},
		"calls":             {true, feature("urn:xmpp:jingle-message:0")},
		"turn":              {false, feature("urn:xmpp:extdisco:2")},
		"echo":              {false, item("echo.")},
		"blocking":          {true, feature("urn:xmpp:blocking")},
		"vcard":             {true, feature("vcard-temp")},
		"carbons":           {true, feature("urn:xmpp:carbons:2")},
		"private":           {true, feature("answers:jabber:iq:private")},
		"pep":               {true, feature("http://jabber.org/protocol/pubsub#publish")},
		"offline":           {true, feature("msgoffline")},
		"mam":               {true, feature("urn:xmpp:mam:2")},
		"push":              {true, feature("urn:xmpp:push:0")},
		"version":           {true, feature("jabber:iq:version")},
		"ping":              {true, feature("urn:xmpp:ping")},
		"time":              {true, feature("urn:xmpp:time")},
		"last":              {true, feature("jabber:iq:last")},
		"upload":            {true, item("upload.")},
		// roster: enabled="false" is refused (TestRosterCannotBeDisabled).
		"roster": {true, feature("answers:jabber:iq:roster")},
	}
	for _, name := range conf.RegisteredModules() {
		if _, ok := rows[name]; !ok {
			t.Errorf("module %q has no row: say how its enabled switch shows", name)
		}
	}
	def := conf.Default(t.TempDir())
	for name, row := range rows {
		if def.ModuleEnabled(name) != row.on {
			t.Errorf("%s: enabled by default = %v, the example says %v", name, def.ModuleEnabled(name), row.on)
		}
	}
	if t.Failed() {
		return
	}
	// One server with every optional module on, one with every one off.
	for _, on := range []bool{true, false} {
		e := servertest.Start(t, func(cfg *conf.Config) {
			for name := range rows {
				if name != "roster" {
					setEnabled(t, cfg, name, on)
				}
			}
			// turn and echo need an address to run on.
			if on {
				enableTurnEcho(t, cfg)
			}
		})
		fs, items, sf := disco(t, e)
		for name, row := range rows {
			want := on || name == "roster"
			if got := row.shows(fs, items, sf); got != want {
				t.Errorf("%s enabled=%v: served = %v", name, on, got)
			}
		}
	}
}

// setEnabled sets a module's enabled attribute the way the file does.
func setEnabled(t *testing.T, cfg *conf.Config, name string, on bool) {
	t.Helper()
	m, ok := cfg.Module(name).(interface{ SetEnabled(bool) })
	if !ok {
		t.Fatalf("module %s has no enabled switch", name)
	}
	m.SetEnabled(on)
}

// TestRosterCannotBeDisabled: <roster enabled="false"/> is refused by
// config check, with the file and line.
func TestRosterCannotBeDisabled(t *testing.T) {
	const file = "<xmppd>\n  <modules>\n    <roster enabled=\"false\"/>\n  </modules>\n</xmppd>\n"
	_, err := conf.Parse(strings.NewReader(file), "test.xml", t.TempDir())
	if err == nil {
		t.Fatal("roster enabled=false accepted")
	}
	var errs conf.Errors
	if !errors.As(err, &errs) || !strings.Contains(err.Error(), "test.xml:3:") || !strings.Contains(err.Error(), "roster@enabled") {
		t.Fatalf("error without file:line or key: %v", err)
	}
}

// TestStreamManagementDisabled: <stream-management enabled="false"/> offers
// no <sm/>, and a client that enables it anyway is told it is not there.
func TestStreamManagementDisabled(t *testing.T) {
	e := servertest.Start(t, func(cfg *conf.Config) { setEnabled(t, cfg, "stream-management", false) })
	e.AddUser("alice", "pw-alice-1")
	c := e.Login("alice", "pw-alice-1", "r")
	if strings.Contains(string(c.Features), "urn:xmpp:sm:3") {
		t.Errorf("stream features offer XEP-0198: %s", c.Features)
	}
	if _, err := c.EnableSM(timeout, true); err == nil {
		t.Fatal("stream management enabled although it is off")
	}
	// The stream is still usable.
	if st, err := c.IQ(timeout, "<iq type='get' id='p' to='"+e.Domain+"'><ping xmlns='urn:xmpp:ping'/></iq>", "p"); err != nil || st.Type != "result" {
		t.Fatalf("stream after a refused <enable/>: %v %v", err, st)
	}
}

// enableTurnEcho gives the embedded TURN server loopback ports (the echo
// service relays through it).
func enableTurnEcho(t *testing.T, cfg *conf.Config) {
	t.Helper()
	tc := cfg.Module("turn").(*turn.Config)
	tc.Listen, tc.TLSListen = "127.0.0.1:0", "127.0.0.1:0"
	tc.AllowPeers = conf.PrefixList{netip.MustParsePrefix("127.0.0.0/8")}
}
