package turn_test

import (
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/logging"
	pionturn "github.com/pion/turn/v4"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/jingle/turn"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/wire"
)

type service struct {
	Type       string `xml:"type,attr"`
	Host       string `xml:"host,attr"`
	Port       int    `xml:"port,attr"`
	Transport  string `xml:"transport,attr"`
	Username   string `xml:"username,attr"`
	Password   string `xml:"password,attr"`
	Expires    string `xml:"expires,attr"`
	Restricted string `xml:"restricted,attr"`
}

type answer struct {
	Services *struct {
		Type    string    `xml:"type,attr"`
		Service []service `xml:"service"`
	} `xml:"urn:xmpp:extdisco:2 services"`
	Credentials *struct {
		Service []service `xml:"service"`
	} `xml:"urn:xmpp:extdisco:2 credentials"`
}

func startEnv(t *testing.T, edit func(*turn.Config)) (*servertest.Env, *turn.Module) {
	t.Helper()
	env := servertest.Start(t, func(cfg *conf.Config) {
		tc := cfg.Module("turn").(*turn.Config)
		tc.SetEnabled(true)
		tc.Listen, tc.TLSListen = "127.0.0.1:0", "127.0.0.1:0"
		tc.AllowPeers = conf.PrefixList{netip.MustParsePrefix("127.0.0.0/8")}
		if edit != nil {
			edit(tc)
		}
	})
	m := turn.Lookup(env.Srv.Router)
	if m == nil {
		t.Fatal("the turn module is not registered")
	}
	t.Cleanup(func() { m.Close() })
	return env, m
}

func iq(t *testing.T, c *client.Client, to, payload string) *wire.Stanza {
	t.Helper()
	id := "q" + strconv.FormatInt(time.Now().UnixNano(), 36)
	st, err := c.IQ(10*time.Second, "<iq type='get' id='"+id+"' to='"+to+"'>"+payload+"</iq>", id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func decode(t *testing.T, st *wire.Stanza) answer {
	t.Helper()
	if st.Type != "result" {
		t.Fatalf("answer: %s", st.Raw)
	}
	var a answer
	if err := st.Decode(&a); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestExtDisco(t *testing.T) {
	env, m := startEnv(t, nil)
	srv := m.Server()
	env.AddUser("alice", "password1")
	c := env.Login("alice", "password1", "phone")
	jid := "alice@" + env.Domain

	info := iq(t, c, env.Domain, "<query xmlns='http://jabber.org/protocol/disco#info'/>")
	if !client.Contains(info, "var='urn:xmpp:extdisco:2'") && !client.Contains(info, `var="urn:xmpp:extdisco:2"`) {
		t.Fatalf("disco#info lacks urn:xmpp:extdisco:2: %s", info.Raw)
	}

	a := decode(t, iq(t, c, env.Domain, "<services xmlns='urn:xmpp:extdisco:2'/>"))
	if a.Services == nil {
		t.Fatal("no <services/>")
	}
	udpPort := srv.UDPAddr().(*net.UDPAddr).Port
	tlsPort := srv.TLSAddr().(*net.TCPAddr).Port
	want := map[string]int{"stun/udp": udpPort, "turn/udp": udpPort, "turn/tcp": udpPort, "turns/tcp": tlsPort}
	byKind := map[string]service{}
	for _, s := range a.Services.Service {
		k := s.Type + "/" + s.Transport
		byKind[k] = s
		if want[k] != s.Port || s.Host != "127.0.0.1" {
			t.Errorf("unexpected entry %+v", s)
		}
		if s.Type == "stun" {
			if s.Username != "" || s.Restricted != "" {
				t.Errorf("stun with credentials: %+v", s)
			}
			continue
		}
		if s.Restricted != "1" || !strings.HasSuffix(s.Username, ":"+jid) || s.Password == "" {
			t.Errorf("entry without credentials: %+v", s)
		}
		exp, err := time.Parse(time.RFC3339, s.Expires)
		if err != nil || !strings.HasSuffix(s.Expires, "Z") {
			t.Errorf("expires %q: %v", s.Expires, err)
		}
		if left := time.Until(exp); left < 23*time.Hour || left > 24*time.Hour {
			t.Errorf("credentials valid for %v", left)
		}
		if ts, _, _ := strings.Cut(s.Username, ":"); ts != strconv.FormatInt(exp.Unix(), 10) {
			t.Errorf("username %q and expires %q disagree", s.Username, s.Expires)
		}
	}
	if len(byKind) != len(want) {
		t.Fatalf("entries %v", byKind)
	}

	// The credentials work against the running TURN server, over UDP and TURNS.
	tu := byKind["turn/udp"]
	relayBothWays(t, allocate(t, tu, nil))
	ts := byKind["turns/tcp"]
	tc, err := tls.Dial("tcp", net.JoinHostPort(ts.Host, strconv.Itoa(ts.Port)), &tls.Config{ServerName: env.Domain, InsecureSkipVerify: true}) //nolint:gosec // self-signed test certificate
	if err != nil {
		t.Fatal(err)
	}
	relayBothWays(t, allocate(t, ts, pionturn.NewSTUNConn(tc)))
	if st := m.Stats(); st.AllocationsTotal != 2 || st.PacketsToPeers != 2 || st.PacketsFromPeers != 2 {
		t.Errorf("stats %+v", st)
	}

	// type filter
	a = decode(t, iq(t, c, env.Domain, "<services xmlns='urn:xmpp:extdisco:2' type='turn'/>"))
	if a.Services.Type != "turn" || len(a.Services.Service) != 2 {
		t.Errorf("type='turn': %+v", a.Services)
	}
	for _, s := range a.Services.Service {
		if s.Type != "turn" {
			t.Errorf("type='turn' gave %+v", s)
		}
	}

	// <credentials/> refresh
	time.Sleep(1100 * time.Millisecond) // a new expiry second
	a = decode(t, iq(t, c, env.Domain, "<credentials xmlns='urn:xmpp:extdisco:2'><service host='127.0.0.1' type='turn' port='"+strconv.Itoa(udpPort)+"'/></credentials>"))
	if a.Credentials == nil || len(a.Credentials.Service) != 2 {
		t.Fatalf("credentials: %+v", a.Credentials)
	}
	fresh := a.Credentials.Service[0]
	if fresh.Username == tu.Username || fresh.Password == "" || fresh.Type != "turn" {
		t.Errorf("refreshed credentials %+v (old %q)", fresh, tu.Username)
	}
	relayBothWays(t, allocate(t, fresh, nil))

	st := iq(t, c, env.Domain, "<credentials xmlns='urn:xmpp:extdisco:2'><service host='turn.example.net' type='turn'/></credentials>")
	if st.Type != "error" || !client.Contains(st, "item-not-found") {
		t.Errorf("unknown service: %s", st.Raw)
	}
	st = iq(t, c, env.Domain, "<credentials xmlns='urn:xmpp:extdisco:2'/>")
	if st.Type != "error" || !client.Contains(st, "bad-request") {
		t.Errorf("empty credentials request: %s", st.Raw)
	}
}

func TestExtDiscoExternal(t *testing.T) {
	env, _ := startEnv(t, func(tc *turn.Config) {
		tc.Embedded = false
		tc.External = []turn.External{
			{Host: "turn.example.net", Port: 3478, TLSPort: 5349, Transports: "udp", STUN: true, Secret: "coturn-secret"},
		}
	})
	env.AddUser("bob", "password1")
	c := env.Login("bob", "password1", "laptop")
	a := decode(t, iq(t, c, env.Domain, "<services xmlns='urn:xmpp:extdisco:2'/>"))
	var kinds []string
	for _, s := range a.Services.Service {
		kinds = append(kinds, s.Type+"/"+s.Transport+"/"+strconv.Itoa(s.Port))
		if s.Host != "turn.example.net" {
			t.Errorf("host %q", s.Host)
		}
		if s.Type != "stun" && s.Password != turn.Password("coturn-secret", s.Username) {
			t.Errorf("password of %+v is not HMAC(coturn-secret, username)", s)
		}
	}
	if got := strings.Join(kinds, " "); got != "stun/udp/3478 turn/udp/3478 turns/tcp/5349" {
		t.Errorf("entries %s", got)
	}
}

// allocate makes an allocation with the credentials of s (over conn, or UDP).
func allocate(t *testing.T, s service, conn net.PacketConn) net.PacketConn {
	t.Helper()
	if conn == nil {
		var err error
		if conn, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	addr := net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	c, err := pionturn.NewClient(&pionturn.ClientConfig{
		STUNServerAddr: addr, TURNServerAddr: addr, Conn: conn,
		Username: s.Username, Password: s.Password, LoggerFactory: quiet{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("allocate with %s credentials: %v", s.Type, err)
	}
	t.Cleanup(func() { relay.Close(); c.Close(); conn.Close() })
	return relay
}

type quiet struct{}

func (quiet) NewLogger(string) logging.LeveledLogger {
	return logging.NewDefaultLeveledLoggerForScope("", logging.LogLevelDisabled, io.Discard)
}

func relayBothWays(t *testing.T, relay net.PacketConn) {
	t.Helper()
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if _, err := relay.WriteTo([]byte("to peer"), peer.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := peer.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "to peer" {
		t.Fatalf("peer: %q %v", buf[:n], err)
	}
	if _, err := peer.WriteTo([]byte("to client"), from); err != nil {
		t.Fatal(err)
	}
	_ = relay.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _, err = relay.ReadFrom(buf); err != nil || string(buf[:n]) != "to client" {
		t.Fatalf("client: %q %v", buf[:n], err)
	}
}
