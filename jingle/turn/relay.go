package turn

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun/v3"
)

// bucket is a token bucket of bytes: rate bytes/s, burst one second's worth.
// A packet that does not fit is dropped, never delayed: media would rather
// lose a late packet than queue it.
type bucket struct {
	mu     sync.Mutex
	rate   float64 // bytes per second; 0 = unlimited
	tokens float64
	last   time.Time
}

func newBucket(rate int64) *bucket {
	if rate <= 0 {
		return nil
	}
	return &bucket{rate: float64(rate), tokens: float64(rate), last: time.Now()}
}

// take reports whether n bytes may pass now, and takes them if so.
func (b *bucket) take(n int, now time.Time) bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if el := now.Sub(b.last); el > 0 {
		b.tokens += el.Seconds() * b.rate
		if b.tokens > b.rate {
			b.tokens = b.rate
		}
		b.last = now
	}
	if b.tokens < float64(n) {
		return false
	}
	b.tokens -= float64(n)
	return true
}

// user is what the server keeps per TURN user (the JID in the username).
type user struct {
	allocs  int         // live allocations
	pending []time.Time // quota granted, allocation not yet created (until deadline)
	in, out *bucket     // per-user bandwidth (nil = unlimited)
}

// live counts allocations and unexpired reservations.
func (u *user) live(now time.Time) int {
	k := 0
	for _, d := range u.pending {
		if d.After(now) {
			u.pending[k] = d
			k++
		}
	}
	u.pending = u.pending[:k]
	return u.allocs + k
}

// relayConn is an allocation's relay socket. It counts what passes, applies
// the bandwidth limits, lets in only packets from peers the allocation has a
// permission or channel for, and sends to the server's own relay address
// only where a live allocation listens. Packets between two allocations of
// this server skip the kernel: the sender's WriteTo hands them to the
// receiving allocation's client directly (deliver), as its relay loop would.
type relayConn struct {
	*net.UDPConn
	s    *Server
	port int

	out, in *bucket              // per allocation: to peers, from peers
	u       atomic.Pointer[user] // set when the allocation is created
	client  atomic.Pointer[clientPath]

	pmu   sync.RWMutex
	perms map[netip.Addr]int        // peer IP → permission (Server.permission)
	chans map[netip.AddrPort]uint16 // peer → channel number (Server.channel)
	peers map[uint16]netip.AddrPort // channel number → peer (ChannelData from the client)

	udpClient netip.AddrPort // the client's address when it reaches us over UDP (Server.clients)

	closeOnce sync.Once
	closeErr  error
}

// clientPath is how to reach an allocation's client.
type clientPath struct {
	addr  net.Addr
	write func(b []byte, to net.Addr) error
	udp   netip.AddrPort // valid when the client is on UDP: any listening socket may send to it
}

// admits reports whether packets from peer reach the client, and the
// channel bound to it (0: none, send a Data indication).
func (c *relayConn) admits(peer netip.AddrPort) (ch uint16, ok bool) {
	c.pmu.RLock()
	defer c.pmu.RUnlock()
	if ch, ok := c.chans[peer]; ok {
		return ch, true
	}
	_, ok = c.perms[peer.Addr()]
	return 0, ok
}

// ReadFrom returns the next packet from a permitted peer within the limits.
func (c *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, ap, err := c.UDPConn.ReadFromUDPAddrPort(p)
		if err != nil {
			return n, nil, err
		}
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if _, ok := c.admits(ap); !ok {
			c.s.stats.unpermitted.Add(1)
			continue
		}
		if !c.takeIn(n) {
			continue
		}
		return n, &net.UDPAddr{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}, nil
	}
}

// takeIn applies the inbound limits to n bytes and counts them.
func (c *relayConn) takeIn(n int) bool {
	now := time.Now()
	if !c.in.take(n, now) || !c.userTake(n, now, false) {
		c.s.stats.droppedFromPeers.Add(1)
		return false
	}
	c.s.stats.bytesFromPeers.Add(uint64(n))
	c.s.stats.packetsFromPeers.Add(1)
	return true
}

func (c *relayConn) userTake(n int, now time.Time, out bool) bool {
	u := c.u.Load()
	if u == nil {
		return true
	}
	if out {
		return u.out.take(n, now)
	}
	return u.in.take(n, now)
}

// WriteTo sends a client's packet to a peer (the allocation holds a
// permission for it: pion checked).
func (c *relayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, fmt.Errorf("turn: relay to %T", addr)
	}
	ip, _ := netip.AddrFromSlice(ua.IP)
	return c.toPeer(p, netip.AddrPortFrom(ip.Unmap(), uint16(ua.Port)), nil)
}

// peerOf returns the peer bound to channel ch.
func (c *relayConn) peerOf(ch uint16) (netip.AddrPort, bool) {
	c.pmu.RLock()
	defer c.pmu.RUnlock()
	peer, ok := c.peers[ch]
	return peer, ok
}

// toPeer sends a client's packet to peer: the policy, the limits, the
// counters, then the socket, or the receiving allocation when the peer is
// another allocation here. via is the listening socket the packet came in
// on (nil: not UDP): the receiving allocation's UDP client is written to
// through it, so that each socket's reader writes on its own socket rather
// than all of them queueing on one socket's write lock.
func (c *relayConn) toPeer(p []byte, peer netip.AddrPort, via *screenedPacketConn) (int, error) {
	ip, port := peer.Addr(), int(peer.Port())
	if !c.s.mayReach(ip, port) {
		c.s.stats.droppedToPeers.Add(1)
		return len(p), nil
	}
	now := time.Now()
	if !c.out.take(len(p), now) || !c.userTake(len(p), now, true) {
		c.s.stats.droppedToPeers.Add(1)
		return len(p), nil // dropped, as a congested link would
	}
	// Counted before sending, so that whoever sees the packet arrive also
	// sees it counted.
	c.s.stats.bytesToPeers.Add(uint64(len(p)))
	c.s.stats.packetsToPeers.Add(1)
	if ip == c.s.opts.RelayAddress {
		if peer := c.s.relay(port); peer != nil && peer != c {
			peer.deliver(p, netip.AddrPortFrom(ip, uint16(c.port)), via)
			return len(p), nil
		}
	}
	n, err := c.UDPConn.WriteToUDPAddrPort(p, peer)
	if err != nil {
		c.s.stats.bytesToPeers.Add(^uint64(len(p) - 1))
		c.s.stats.packetsToPeers.Add(^uint64(0))
		c.s.stats.droppedToPeers.Add(1)
	}
	return n, err
}

var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// deliver gives p, sent by the relay address from of another allocation
// here, to this allocation's client: ChannelData when a channel is bound to
// from, else a Data indication when a permission exists.
func (c *relayConn) deliver(p []byte, from netip.AddrPort, via *screenedPacketConn) {
	cp := c.client.Load()
	ch, ok := c.admits(from)
	if cp == nil || !ok {
		c.s.stats.unpermitted.Add(1)
		return
	}
	if !c.takeIn(len(p)) {
		return
	}
	if ch == 0 {
		m, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodData, stun.ClassIndication),
			peerAddress(from), stun.RawAttribute{Type: stun.AttrData, Value: p})
		if err == nil {
			_ = cp.write(m.Raw, cp.addr)
		}
		return
	}
	bp := framePool.Get().(*[]byte)
	b := append((*bp)[:0], byte(ch>>8), byte(ch), byte(len(p)>>8), byte(len(p)))
	b = append(b, p...)
	for len(b)%4 != 0 { // padded, as RFC 5766 §11.5 asks over TCP (harmless over UDP)
		b = append(b, 0)
	}
	if via != nil && cp.udp.IsValid() {
		via.send(b, cp.udp)
	} else {
		_ = cp.write(b, cp.addr)
	}
	*bp = b
	framePool.Put(bp)
}

type peerAddress netip.AddrPort

func (a peerAddress) AddTo(m *stun.Message) error {
	ap := netip.AddrPort(a)
	return stun.XORMappedAddress{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}.AddToAs(m, stun.AttrXORPeerAddress)
}

// Close closes the socket and forgets the relay port; closing again is a
// no-op (pion and Server.Close may both close it).
func (c *relayConn) Close() error {
	c.closeOnce.Do(func() {
		c.s.rmu.Lock()
		if c.s.relays[c.port] == c {
			delete(c.s.relays, c.port)
		}
		if c.udpClient.IsValid() && c.s.clients[c.udpClient] == c {
			delete(c.s.clients, c.udpClient)
		}
		c.s.rmu.Unlock()
		c.closeErr = c.UDPConn.Close()
	})
	return c.closeErr
}

// relayGen hands out relay sockets in the configured port range.
type relayGen struct{ s *Server }

var errNoTCPRelay = errors.New("turn: TCP relaying (RFC 6062) is not offered")

func (g relayGen) Validate() error { return nil }

func (g relayGen) AllocateConn(string, int) (net.Conn, net.Addr, error) {
	return nil, nil, errNoTCPRelay
}

func (g relayGen) AllocatePacketConn(network string, requestedPort int) (net.PacketConn, net.Addr, error) {
	s := g.s
	lo, hi := s.opts.MinPort, s.opts.MaxPort
	try := func(port int) (net.PacketConn, net.Addr, error) {
		uc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(s.relayBind, uint16(port))))
		if err != nil {
			return nil, nil, err
		}
		port = uc.LocalAddr().(*net.UDPAddr).Port
		c := &relayConn{UDPConn: uc, s: s, port: port, perms: map[netip.Addr]int{}, chans: map[netip.AddrPort]uint16{}, peers: map[uint16]netip.AddrPort{},
			in: newBucket(s.opts.BandwidthPerAllocation), out: newBucket(s.opts.BandwidthPerAllocation)}
		s.rmu.Lock()
		s.relays[port] = c
		s.rmu.Unlock()
		return c, &net.UDPAddr{IP: s.opts.RelayAddress.AsSlice(), Port: port}, nil
	}
	if requestedPort != 0 { // EVEN-PORT / RESERVATION-TOKEN
		if requestedPort < lo || requestedPort > hi {
			return nil, nil, fmt.Errorf("turn: port %d is outside the relay range %d-%d", requestedPort, lo, hi)
		}
		return try(requestedPort)
	}
	var err error
	for range 32 {
		var c net.PacketConn
		var a net.Addr
		if c, a, err = try(lo + rand.IntN(hi-lo+1)); err == nil {
			return c, a, nil
		}
	}
	return nil, nil, fmt.Errorf("turn: no free relay port in %d-%d: %w", lo, hi, err)
}

// ParsePorts parses a port range "LOW-HIGH".
func ParsePorts(s string) (lo, hi int, err error) {
	a, b, ok := cutDash(s)
	if ok {
		lo, err = strconv.Atoi(a)
		if err == nil {
			hi, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("%q is not a port range LOW-HIGH within 1-65535", s)
	}
	return lo, hi, nil
}

func cutDash(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '-' {
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}
