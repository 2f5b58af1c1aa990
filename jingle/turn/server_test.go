package turn

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/logging"
	pionturn "github.com/pion/turn/v4"

	"github.com/xmppd/xmppd/certs"
)

const (
	testSecret = "test-secret-0123456789abcdef0123456789"
	testRealm  = "example.org"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

func testLog() *slog.Logger {
	if os.Getenv("XMPPD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func testTLS(t testing.TB) *tls.Config {
	dir := t.TempDir()
	cs, err := certs.New("", "", dir, []string{testRealm})
	if err != nil {
		t.Fatal(err)
	}
	return cs.TLSConfig(tls.VersionTLS12)
}

// startServer runs a server on loopback with ephemeral ports; edit may
// change the options first.
func startServer(t testing.TB, edit func(*Options)) *Server {
	t.Helper()
	o := Options{
		Listen: "127.0.0.1:0", TLSListen: "127.0.0.1:0", TLS: testTLS(t),
		RelayAddress: netip.MustParseAddr("127.0.0.1"),
		Realm:        testRealm, Secret: testSecret, Allow: loopback,
		Log: testLog(),
	}
	if edit != nil {
		edit(&o)
	}
	s, err := NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type quietLogs struct{}

func (quietLogs) NewLogger(string) logging.LeveledLogger {
	l := logging.NewDefaultLeveledLoggerForScope("turn-client", logging.LogLevelDisabled, io.Discard)
	return l
}

// client connects a pion TURN client over conn (UDP when nil) to addr.
func client(t testing.TB, addr net.Addr, conn net.PacketConn, user, pass string) *pionturn.Client {
	t.Helper()
	if conn == nil {
		var err error
		if conn, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	c, err := pionturn.NewClient(&pionturn.ClientConfig{
		STUNServerAddr: addr.String(), TURNServerAddr: addr.String(), Conn: conn,
		Username: user, Password: pass, Realm: testRealm, LoggerFactory: quietLogs{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	return c
}

func udpPeer(t testing.TB) *net.UDPConn {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// relayBothWays sends through relay to peer and back.
func relayBothWays(t *testing.T, relay net.PacketConn, peer *net.UDPConn) {
	t.Helper()
	if _, err := relay.WriteTo([]byte("ping from client"), peer.LocalAddr()); err != nil {
		t.Fatalf("relay write: %v", err)
	}
	buf := make([]byte, 1500)
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := peer.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping from client" {
		t.Fatalf("peer read: %q %v", buf[:n], err)
	}
	if from.String() != relay.LocalAddr().String() {
		t.Errorf("peer got the packet from %v, the relay address is %v", from, relay.LocalAddr())
	}
	if _, err := peer.WriteTo([]byte("pong from peer"), from); err != nil {
		t.Fatal(err)
	}
	_ = relay.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err = relay.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "pong from peer" {
		t.Fatalf("relay read: %q %v", buf[:n], err)
	}
	if from.String() != peer.LocalAddr().String() {
		t.Errorf("client got the packet from %v, want the peer %v", from, peer.LocalAddr())
	}
}

func TestRelayUDP(t *testing.T) {
	s := startServer(t, nil)
	u, p, _ := s.Credentials("alice@example.org", time.Hour)
	c := client(t, s.UDPAddr(), nil, u, p)
	mapped, err := c.SendBindingRequest()
	if err != nil {
		t.Fatalf("STUN binding: %v", err)
	}
	if !strings.HasPrefix(mapped.String(), "127.0.0.1:") {
		t.Errorf("mapped address %v", mapped)
	}
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("allocate: %v", err)
	}
	defer relay.Close()
	peer := udpPeer(t)
	relayBothWays(t, relay, peer)

	st := s.Stats()
	if st.Allocations != 1 || st.AllocationsTotal != 1 {
		t.Errorf("allocations %d/%d", st.Allocations, st.AllocationsTotal)
	}
	if st.BytesToPeers != uint64(len("ping from client")) || st.BytesFromPeers != uint64(len("pong from peer")) ||
		st.PacketsToPeers != 1 || st.PacketsFromPeers != 1 {
		t.Errorf("stats %+v", st)
	}
	relay.Close() // deallocates (Refresh with lifetime 0)
	waitFor(t, func() bool { return s.Stats().Allocations == 0 })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met in 5s")
}

func TestRelayTCPAndTLS(t *testing.T) {
	s := startServer(t, nil)
	u, p, _ := s.Credentials("alice@example.org", time.Hour)
	for _, tc := range []struct {
		name string
		dial func() (net.Conn, error)
		addr net.Addr
	}{
		{"tcp", func() (net.Conn, error) { return net.Dial("tcp", s.TCPAddr().String()) }, s.TCPAddr()},
		{"tls", func() (net.Conn, error) {
			c, err := tls.Dial("tcp", s.TLSAddr().String(), &tls.Config{ServerName: testRealm, InsecureSkipVerify: true, NextProtos: []string{"stun.turn"}}) //nolint:gosec // self-signed test certificate
			if err == nil && c.ConnectionState().NegotiatedProtocol != "stun.turn" {
				t.Errorf("ALPN %q", c.ConnectionState().NegotiatedProtocol)
			}
			return c, err
		}, s.TLSAddr()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := tc.dial()
			if err != nil {
				t.Fatal(err)
			}
			c := client(t, tc.addr, pionturn.NewSTUNConn(nc), u, p)
			relay, err := c.Allocate()
			if err != nil {
				t.Fatalf("allocate: %v", err)
			}
			defer relay.Close()
			relayBothWays(t, relay, udpPeer(t))
		})
	}
}

func TestCredentialsRefused(t *testing.T) {
	s := startServer(t, nil)
	good, pass, _ := s.Credentials("alice@example.org", time.Hour)
	expired, expiredPass, _ := s.Credentials("alice@example.org", -time.Minute)
	for _, tc := range []struct{ name, user, pass string }{
		{"forged", good, "AAAAAAAAAAAAAAAAAAAAAAAAAAA="},
		{"other user", strings.Replace(good, "alice", "mallory", 1), pass},
		{"expired", expired, expiredPass},
		{"not REST", "alice", "secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Stats().AuthFailures
			c := client(t, s.UDPAddr(), nil, tc.user, tc.pass)
			_, err := c.Allocate()
			if err == nil {
				t.Fatal("allocated")
			}
			if !strings.Contains(err.Error(), "401") {
				t.Errorf("error %v, want 401 Unauthorized", err)
			}
			if s.Stats().AuthFailures == before {
				t.Error("AuthFailures not counted")
			}
		})
	}
	if s.Stats().AllocationsTotal != 0 {
		t.Fatal("an allocation was made")
	}
}

func TestDefaultPolicyRefusesLoopback(t *testing.T) {
	s := startServer(t, func(o *Options) { o.Allow = nil })
	u, p, _ := s.Credentials("alice@example.org", time.Hour)
	c := client(t, s.UDPAddr(), nil, u, p)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	peer := udpPeer(t)
	if _, err := relay.WriteTo([]byte("hello"), peer.LocalAddr()); err == nil {
		t.Error("write to a loopback peer succeeded")
	} else if !strings.Contains(err.Error(), "403") {
		t.Errorf("error %v, want 403 Forbidden", err)
	}
	if err := c.CreatePermission(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}); err == nil {
		t.Error("CreatePermission for 127.0.0.1 succeeded")
	}
	// The server answered both refusals: anything it relayed to the peer
	// before is queued there ahead of a marker sent now.
	marker := udpPeer(t)
	if _, err := marker.WriteTo([]byte("marker"), peer.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, from, err := peer.ReadFrom(buf); err != nil || from.String() != marker.LocalAddr().String() {
		t.Errorf("peer received %q from %v before the marker (%v)", buf[:n], from, err)
	}
	st := s.Stats()
	if st.PermissionsRefused < 2 || st.PacketsToPeers != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestQuota(t *testing.T) {
	s := startServer(t, func(o *Options) { o.MaxAllocationsPerUser = 2 })
	u, p, _ := s.Credentials("alice@example.org", time.Hour)
	var relays []net.PacketConn
	for i := 0; i < 2; i++ {
		r, err := client(t, s.UDPAddr(), nil, u, p).Allocate()
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		relays = append(relays, r)
	}
	_, err := client(t, s.UDPAddr(), nil, u, p).Allocate()
	if err == nil || !strings.Contains(err.Error(), "486") {
		t.Fatalf("third allocation: %v, want 486 Allocation Quota Reached", err)
	}
	// Another user is not affected, and neither are fresh credentials of the same user.
	bu, bp, _ := s.Credentials("bob@example.org", time.Hour)
	if _, err := client(t, s.UDPAddr(), nil, bu, bp).Allocate(); err != nil {
		t.Fatalf("bob: %v", err)
	}
	u2, p2, _ := s.Credentials("alice@example.org", 2*time.Hour)
	if _, err := client(t, s.UDPAddr(), nil, u2, p2).Allocate(); err == nil {
		t.Fatal("alice with other credentials went over her quota")
	}
	relays[0].Close()
	waitFor(t, func() bool { return s.Stats().Allocations == 2 })
	if _, err := client(t, s.UDPAddr(), nil, u, p).Allocate(); err != nil {
		t.Fatalf("after freeing one: %v", err)
	}
	if st := s.Stats(); st.QuotaRefused != 2 {
		t.Errorf("QuotaRefused %d", st.QuotaRefused)
	}
}

func TestBandwidthLimit(t *testing.T) {
	s := startServer(t, func(o *Options) { o.BandwidthPerAllocation = 4000 })
	u, p, _ := s.Credentials("alice@example.org", time.Hour)
	relay, err := client(t, s.UDPAddr(), nil, u, p).Allocate()
	if err != nil {
		t.Fatal(err)
	}
	peer := udpPeer(t)
	payload := bytes.Repeat([]byte("x"), 1000)
	start := time.Now()
	for i := 0; i < 20; i++ { // 20 kB at once against 4 kB/s with a 4 kB burst
		if _, err := relay.WriteTo(payload, peer.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	refill := int(time.Since(start).Seconds()*4) + 1 // what the bucket regained meanwhile
	// A one-byte marker through the same relay comes after every packet
	// the server passed. The limit may drop a marker too: another one is
	// sent whenever none came for a while, until one does.
	got, markers, passed := 0, 0, 0
	buf := make([]byte, 2000)
	for passed == 0 {
		if markers == 100 {
			t.Fatal("no marker passed the limit")
		}
		if _, err := relay.WriteTo([]byte{'m'}, peer.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		markers++
		for {
			_ = peer.SetReadDeadline(time.Now().Add(time.Second))
			n, _, err := peer.ReadFrom(buf)
			if err != nil {
				break // send another marker
			}
			if n == 1 {
				passed++
				break
			}
			got++
		}
	}
	if got < 3 || got > 4+refill {
		t.Errorf("%d of 20 packets passed a 4 kB/s limit", got)
	}
	// Every packet and marker handled: the markers the server counted as
	// sent, beyond the one read, are the only datagrams still to come.
	waitFor(t, func() bool { st := s.Stats(); return st.PacketsToPeers+st.DroppedToPeers == uint64(20+markers) })
	st := s.Stats()
	for more := int(st.PacketsToPeers) - got - passed; more > 0; more-- {
		_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := peer.ReadFrom(buf)
		if err != nil || n != 1 {
			t.Fatalf("PacketsToPeers %d, but %d packets and %d markers arrived (%v)", st.PacketsToPeers, got, passed, err)
		}
		passed++
	}
	if want := uint64(20 - got + markers - passed); st.DroppedToPeers != want {
		t.Errorf("DroppedToPeers %d, want %d", st.DroppedToPeers, want)
	}
}

func TestUnpermittedPeerDropped(t *testing.T) {
	s := startServer(t, nil)
	u, p, _ := s.Credentials("alice@example.org", time.Hour)
	relay, err := client(t, s.UDPAddr(), nil, u, p).Allocate()
	if err != nil {
		t.Fatal(err)
	}
	stranger := udpPeer(t)
	if _, err := stranger.WriteTo([]byte("unsolicited"), relay.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return s.Stats().Unpermitted == 1 })
	// The server has handled the stranger's packet: a permitted peer's
	// answer, relayed after it, must be the first thing the client reads.
	relayBothWays(t, relay, udpPeer(t))
}

func TestSecretFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "turn-secret")
	a, err := loadSecret(path)
	if err != nil || len(a) != 64 {
		t.Fatal(a, err)
	}
	b, err := loadSecret(path)
	if err != nil || a != b {
		t.Fatalf("second load: %q %v", b, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
}

// Two allocations on this server relaying to each other (both parties of a
// call forced to relay): one client on UDP, the other on TCP.
func TestRelayToRelay(t *testing.T) {
	s := startServer(t, nil)
	u, p, _ := s.Credentials("alice@example.org", time.Hour)
	a, err := client(t, s.UDPAddr(), nil, u, p).Allocate()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	bu, bp, _ := s.Credentials("bob@example.org", time.Hour)
	bc := client(t, s.TCPAddr(), pionturn.NewSTUNConn(nc), bu, bp)
	b, err := bc.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	if err := bc.CreatePermission(a.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	for i := 0; i < 20; i++ { // data indications first, ChannelData once pion's clients bound channels
		msg := fmt.Sprintf("a→b %d", i)
		if _, err := a.WriteTo([]byte(msg), b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := b.ReadFrom(buf)
		if err != nil || string(buf[:n]) != msg || from.String() != a.LocalAddr().String() {
			t.Fatalf("b got %q from %v: %v", buf[:n], from, err)
		}
		msg = fmt.Sprintf("b→a %d", i)
		if _, err := b.WriteTo([]byte(msg), a.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		_ = a.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err = a.ReadFrom(buf)
		if err != nil || string(buf[:n]) != msg || from.String() != b.LocalAddr().String() {
			t.Fatalf("a got %q from %v: %v", buf[:n], from, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := s.Stats(); st.PacketsToPeers != 40 || st.PacketsFromPeers != 40 || st.Unpermitted != 0 {
		t.Errorf("stats %+v", st)
	}
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	bound := 0
	for _, rc := range s.relays {
		rc.pmu.RLock()
		bound += len(rc.chans)
		rc.pmu.RUnlock()
	}
	if bound != 2 {
		t.Errorf("%d channels bound, want one per allocation", bound)
	}
}

// Without a permission of its own, an allocation hears nothing from
// another allocation of this server.
func TestRelayToRelayNeedsPermission(t *testing.T) {
	s := startServer(t, nil)
	u, p, _ := s.Credentials("alice@example.org", time.Hour)
	a, err := client(t, s.UDPAddr(), nil, u, p).Allocate()
	if err != nil {
		t.Fatal(err)
	}
	b, err := client(t, s.UDPAddr(), nil, u, p).Allocate()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.WriteTo([]byte("hello"), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return s.Stats().Unpermitted == 1 })
	if st := s.Stats(); st.PacketsFromPeers != 0 {
		t.Errorf("stats %+v", st)
	}
	// The server has handled a's packet: a permitted peer's answer,
	// relayed after it, must be the first thing b reads.
	relayBothWays(t, b, udpPeer(t))
}

// An allocation made while its credentials were valid keeps working after
// they expire (permissions, channels, refreshes); new allocations with them
// are refused.
func TestExpiryDoesNotCutCalls(t *testing.T) {
	s := startServer(t, nil)
	u, p, exp := s.Credentials("alice@example.org", 2*time.Second)
	c := client(t, s.UDPAddr(), nil, u, p)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(exp) + 1100*time.Millisecond)
	relayBothWays(t, relay, udpPeer(t)) // CreatePermission and ChannelBind with expired credentials
	if _, err := client(t, s.UDPAddr(), nil, u, p).Allocate(); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("new allocation with expired credentials: %v", err)
	}
}
