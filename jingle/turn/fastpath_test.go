package turn

import (
	"encoding/binary"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// rawClient is a TURN client over its own UDP socket that sends and reads
// ChannelData itself, so that a test sees every byte the server sends.
type rawClient struct {
	t      *testing.T
	conn   *net.UDPConn
	server netip.AddrPort
	attrs  []stun.Setter // USERNAME, REALM, NONCE, MESSAGE-INTEGRITY
	relay  netip.AddrPort
}

func newRawClient(t *testing.T, s *Server, user string) *rawClient {
	t.Helper()
	c := &rawClient{t: t, conn: udpPeer(t), server: addrPort(s.UDPAddr())}
	u, p, _ := Credentials(testSecret, user, time.Hour)
	res := c.do(stun.MethodAllocate, requestedTransportUDP{})
	var realm stun.Realm
	var nonce stun.Nonce
	if realm.GetFrom(res) != nil || nonce.GetFrom(res) != nil {
		t.Fatalf("first Allocate: %v", res)
	}
	c.attrs = []stun.Setter{stun.NewUsername(u), realm, nonce, stun.NewLongTermIntegrity(u, realm.String(), p)}
	res = c.do(stun.MethodAllocate, requestedTransportUDP{})
	var ra stun.XORMappedAddress
	if res.Type.Class != stun.ClassSuccessResponse || ra.GetFromAs(res, stun.AttrXORRelayedAddress) != nil {
		t.Fatalf("Allocate: %v", res)
	}
	a, _ := netip.AddrFromSlice(ra.IP)
	c.relay = netip.AddrPortFrom(a.Unmap(), uint16(ra.Port))
	return c
}

type requestedTransportUDP struct{}

func (requestedTransportUDP) AddTo(m *stun.Message) error {
	m.Add(stun.AttrRequestedTransport, []byte{17, 0, 0, 0})
	return nil
}

// do runs a transaction and returns the answer.
func (c *rawClient) do(method stun.Method, extra ...stun.Setter) *stun.Message {
	c.t.Helper()
	setters := append([]stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}, extra...)
	setters = append(append(setters, c.attrs...), stun.Fingerprint)
	req := stun.MustBuild(setters...)
	if _, err := c.conn.WriteToUDPAddrPort(req.Raw, c.server); err != nil {
		c.t.Fatal(err)
	}
	buf := make([]byte, 1500)
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer func() { _ = c.conn.SetReadDeadline(time.Time{}) }()
	for {
		n, _, err := c.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			c.t.Fatalf("%v: %v", method, err)
		}
		res := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
		if res.Decode() == nil && res.TransactionID == req.TransactionID {
			return res
		}
	}
}

// bind binds channel ch to peer.
func (c *rawClient) bind(ch uint16, peer netip.AddrPort) {
	c.t.Helper()
	res := c.do(stun.MethodChannelBind,
		stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{byte(ch >> 8), byte(ch), 0, 0}},
		peerAddress(peer))
	if res.Type.Class != stun.ClassSuccessResponse {
		c.t.Fatalf("ChannelBind: %v", res)
	}
}

// channelData returns frame (4 spare bytes in front) as ChannelData on ch.
func channelData(frame []byte, ch uint16) []byte {
	binary.BigEndian.PutUint16(frame, ch)
	binary.BigEndian.PutUint16(frame[2:], uint16(len(frame)-4))
	return frame
}

// TestChannelDataRelayedWithoutAllocating: the server relays a UDP
// client's ChannelData (to a peer, and to another allocation here) without
// allocating memory per packet, so that a busy relay does not make garbage
// for the collector to pause on.
func TestChannelDataRelayedWithoutAllocating(t *testing.T) {
	s := startServer(t, func(o *Options) { o.TLSListen = ""; o.UDPSockets = 1 })
	a := newRawClient(t, s, "alice@example.org")
	b := newRawClient(t, s, "bob@example.org")
	peer := udpPeer(t)
	a.bind(0x4000, peer.LocalAddr().(*net.UDPAddr).AddrPort())
	a.bind(0x4001, b.relay)
	b.bind(0x4000, a.relay) // b accepts a's relay, and hears it on channel 0x4000

	frame := make([]byte, 4+160)
	buf := make([]byte, 1500)
	// relay sends one packet through each path and waits for both.
	relay := func(i int) {
		binary.BigEndian.PutUint32(frame[4:], uint32(i))
		if _, err := a.conn.WriteToUDPAddrPort(channelData(frame, 0x4000), a.server); err != nil {
			t.Fatal(err)
		}
		n, from, err := peer.ReadFromUDPAddrPort(buf)
		if err != nil || n != 160 || binary.BigEndian.Uint32(buf) != uint32(i) || from != a.relay {
			t.Fatalf("peer: %d bytes from %v, %v", n, from, err)
		}
		if _, err := a.conn.WriteToUDPAddrPort(channelData(frame, 0x4001), a.server); err != nil {
			t.Fatal(err)
		}
		n, _, err = b.conn.ReadFromUDPAddrPort(buf)
		if err != nil || n < 4+160 || binary.BigEndian.Uint16(buf) != 0x4000 || binary.BigEndian.Uint32(buf[4:]) != uint32(i) {
			t.Fatalf("b: % x, %v", buf[:min(n, 8)], err)
		}
	}
	_ = peer.SetReadDeadline(time.Now().Add(30 * time.Second))
	_ = b.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for i := range 100 { // warm up (buffers, pools)
		relay(i)
	}
	const packets = 2000
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for i := range packets {
		relay(i)
	}
	runtime.ReadMemStats(&m1)
	if per := float64(m1.Mallocs-m0.Mallocs) / (2 * packets); per > 0.1 && !raceEnabled {
		t.Errorf("%.2f allocations per relayed packet, want none", per)
	}
	if st := s.Stats(); st.PacketsToPeers != 2*(100+packets) {
		t.Errorf("%d packets to peers counted, want %d", st.PacketsToPeers, 2*(100+packets))
	}
}
