package turn

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	pionturn "github.com/pion/turn/v4"

	"github.com/xmppd/xmppd/internal/accept"
	"github.com/xmppd/xmppd/internal/lograte"
)

// Options configure an embedded TURN/STUN server.
type Options struct {
	// Listen is the UDP and TCP address ("host:port") for STUN and TURN;
	// TLSListen is TURNS (TLS over TCP). "" turns either off.
	Listen, TLSListen string
	// TLS serves TLSListen (the domain's certificate).
	TLS *tls.Config
	// RelayAddress is the IPv4 address put in XOR-RELAYED-ADDRESS: the
	// public address peers send to.
	RelayAddress netip.Addr
	// RelayBind is the local address relay sockets bind to; invalid means
	// RelayAddress when it is an address of this machine, else 0.0.0.0
	// (a public address NATed to this host).
	RelayBind netip.Addr
	// MinPort and MaxPort bound the relay ports (inclusive).
	MinPort, MaxPort int
	// Realm is the STUN realm (the XMPP domain).
	Realm string
	// Secret is the TURN REST API shared secret.
	Secret string
	// MaxAllocationsPerUser caps live allocations per user (the JID in the
	// username); 0 = unlimited. Beyond it Allocate fails with 486.
	MaxAllocationsPerUser int
	// BandwidthPerAllocation and BandwidthPerUser cap the bytes per second
	// relayed in each direction (client → peers, peers → client), per
	// allocation and summed over a user's allocations; 0 = unlimited.
	// Packets beyond the limit are dropped (a one-second burst is allowed).
	BandwidthPerAllocation, BandwidthPerUser int64
	// Allow and Deny adjust the peer policy (see Policy).
	Allow, Deny []netip.Prefix
	// UDPSockets is the number of UDP sockets sharing the listening port
	// (SO_REUSEPORT, one reader each); 0 = DefaultUDPSockets().
	UDPSockets int
	// ReceiveBuffer and SendBuffer size each UDP listening socket's kernel
	// buffers (SO_RCVBUF, SO_SNDBUF; Linux caps them at net.core.rmem_max
	// and wmem_max); 0 = DefaultSocketBuffer.
	ReceiveBuffer, SendBuffer int
	// Log receives the server's messages (nil: slog.Default()).
	Log *slog.Logger
}

// DefaultUDPSockets is 4 × GOMAXPROCS. The kernel sends each client's
// packets to one socket (by address hash), and each socket has one reader:
// with one reader per core, a reader whose thread is descheduled holds up
// its share of the clients until it runs again, while more readers than
// cores let the running ones take over. At 500 calls on 2 cores, 8 sockets
// gave p50 1.8 ms / p99 23 ms where 2 gave 18 ms / 237 ms (README).
func DefaultUDPSockets() int { return 4 * runtime.GOMAXPROCS(0) }

// DefaultSocketBuffer is the default receive and send buffer of the UDP
// listening sockets.
const DefaultSocketBuffer = 4 << 20

// Stats are the server's counters since it started.
type Stats struct {
	Allocations        int64  // live allocations
	AllocationsTotal   uint64 // allocations created
	BytesToPeers       uint64 // relayed from clients to peers (UDP payload bytes)
	BytesFromPeers     uint64 // relayed from peers to clients
	PacketsToPeers     uint64
	PacketsFromPeers   uint64
	DroppedToPeers     uint64 // packets dropped by a bandwidth limit or the peer policy
	DroppedFromPeers   uint64 // packets dropped by a bandwidth limit
	Unpermitted        uint64 // packets from peers without a permission, dropped
	PermissionsRefused uint64 // CreatePermission/ChannelBind peers refused by the policy
	AuthFailures       uint64 // requests refused with 401 (forged, expired or malformed credentials)
	QuotaRefused       uint64 // Allocate refused with 486 (max-allocations-per-user)
}

type counters struct {
	allocations                                    atomic.Int64
	allocationsTotal                               atomic.Uint64
	bytesToPeers, bytesFromPeers                   atomic.Uint64
	packetsToPeers, packetsFromPeers               atomic.Uint64
	droppedToPeers, droppedFromPeers, unpermitted  atomic.Uint64
	permissionsRefused, authFailures, quotaRefused atomic.Uint64
}

// Server is a running embedded TURN/STUN server (pion/turn underneath).
type Server struct {
	opts      Options
	log       *slog.Logger
	policy    Policy
	relayBind netip.Addr
	pion      *pionturn.Server

	udp              []*net.UDPConn
	tcp, tls         net.Listener
	udpAddr, tcpAddr net.Addr
	tlsAddr          net.Addr
	listenPorts      map[int]bool // our own STUN/TURN ports, never a relay target

	mu         sync.Mutex
	users      map[string]*user
	quotaCalls int

	rmu     sync.RWMutex
	relays  map[int]*relayConn            // live relay sockets by port
	clients map[netip.AddrPort]*relayConn // allocations of UDP clients by client address

	smu     sync.Mutex
	streams map[string]*streamConn // live TCP/TLS clients (streamKey)

	stats  counters
	closed atomic.Bool
}

// NewServer starts a TURN server listening as o says.
func NewServer(o Options) (*Server, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Secret == "" {
		return nil, errors.New("turn: no shared secret")
	}
	if !o.RelayAddress.Is4() && !o.RelayAddress.Is4In6() {
		return nil, fmt.Errorf("turn: relay address %v is not an IPv4 address", o.RelayAddress)
	}
	o.RelayAddress = o.RelayAddress.Unmap()
	if o.MinPort == 0 && o.MaxPort == 0 {
		o.MinPort, o.MaxPort = 49152, 65535
	}
	if o.MinPort < 1 || o.MaxPort > 65535 || o.MinPort > o.MaxPort {
		return nil, fmt.Errorf("turn: bad relay port range %d-%d", o.MinPort, o.MaxPort)
	}
	if o.Listen == "" && o.TLSListen == "" {
		return nil, errors.New("turn: no listener")
	}
	if o.TLSListen != "" && o.TLS == nil {
		return nil, errors.New("turn: tls-listen without a certificate")
	}
	if o.UDPSockets <= 0 {
		o.UDPSockets = DefaultUDPSockets()
	}
	if o.ReceiveBuffer <= 0 {
		o.ReceiveBuffer = DefaultSocketBuffer
	}
	if o.SendBuffer <= 0 {
		o.SendBuffer = DefaultSocketBuffer
	}
	// Refused packets are logged: a client retransmitting with a wrong
	// password must not be able to flood the log (internal/lograte).
	s := &Server{opts: o, log: lograte.Limit(o.Log, lograte.Window, lograte.Burst), users: map[string]*user{}, relays: map[int]*relayConn{}, clients: map[netip.AddrPort]*relayConn{}, streams: map[string]*streamConn{}, listenPorts: map[int]bool{}}
	own := ownAddrs(o.RelayAddress)
	s.relayBind = o.RelayBind
	if !s.relayBind.IsValid() {
		s.relayBind = netip.IPv4Unspecified()
		if own[o.RelayAddress] {
			s.relayBind = o.RelayAddress
		}
	}
	own[s.relayBind] = true
	if err := s.listen(); err != nil {
		s.closeListeners()
		return nil, err
	}
	for _, a := range []net.Addr{s.udpAddr, s.tcpAddr, s.tlsAddr} {
		if a != nil {
			ap := addrPort(a)
			own[ap.Addr().Unmap()] = true
			s.listenPorts[int(ap.Port())] = true
		}
	}
	delete(own, netip.IPv4Unspecified())
	delete(own, netip.IPv6Unspecified())
	s.policy = Policy{Allow: o.Allow, Deny: o.Deny, Own: own, Relay: o.RelayAddress}

	gen := relayGen{s}
	cfg := pionturn.ServerConfig{
		Realm:         o.Realm,
		AuthHandler:   s.authKey,
		QuotaHandler:  s.quota,
		LoggerFactory: pionLogs{s.log},
		EventHandler: pionturn.EventHandler{
			OnAllocationCreated: s.allocationCreated,
			OnAllocationDeleted: s.allocationDeleted,
			OnPermissionCreated: func(_, _ net.Addr, _, _, _ string, relay net.Addr, peer net.IP) {
				s.permission(relay, peer, +1)
			},
			OnPermissionDeleted: func(_, _ net.Addr, _, _, _ string, relay net.Addr, peer net.IP) {
				s.permission(relay, peer, -1)
			},
			OnChannelCreated: func(_, _ net.Addr, _, _, _ string, relay, peer net.Addr, ch uint16) {
				s.channel(relay, peer, ch, true)
			},
			OnChannelDeleted: func(_, _ net.Addr, _, _, _ string, relay, peer net.Addr, ch uint16) {
				s.channel(relay, peer, ch, false)
			},
		},
	}
	for _, uc := range s.udp {
		cfg.PacketConnConfigs = append(cfg.PacketConnConfigs, pionturn.PacketConnConfig{
			PacketConn: newScreenedPacketConn(uc, s), RelayAddressGenerator: gen, PermissionHandler: s.permit})
	}
	for _, l := range []net.Listener{s.tcp, s.tls} {
		if l != nil {
			cfg.ListenerConfigs = append(cfg.ListenerConfigs, pionturn.ListenerConfig{
				Listener: &screenedListener{Listener: accept.Retrying(l, s.log), s: s}, RelayAddressGenerator: gen, PermissionHandler: s.permit})
		}
	}
	srv, err := pionturn.NewServer(cfg)
	if err != nil {
		s.closeListeners()
		return nil, err
	}
	s.pion = srv
	s.log.Info("turn: listening", "udp", str(s.udpAddr), "tcp", str(s.tcpAddr), "tls", str(s.tlsAddr),
		"relay", o.RelayAddress.String(), "ports", strconv.Itoa(o.MinPort)+"-"+strconv.Itoa(o.MaxPort))
	return s, nil
}

func str(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort()
	case *net.TCPAddr:
		return a.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// listen opens the UDP sockets, and TCP on the same port, then TLS.
func (s *Server) listen() error {
	if s.opts.Listen != "" {
		var err error
		for try := 0; try < 10; try++ {
			if err = s.listenUDPTCP(s.opts.Listen); err == nil {
				break
			}
			s.closeListeners()
			if _, p, _ := net.SplitHostPort(s.opts.Listen); p != "0" {
				return err
			}
		}
		if err != nil {
			return err
		}
	}
	if s.opts.TLSListen != "" {
		l, err := net.Listen("tcp", s.opts.TLSListen)
		if err != nil {
			return fmt.Errorf("turn: tls-listen: %w", err)
		}
		cfg := s.opts.TLS.Clone()
		cfg.NextProtos = []string{"stun.turn"} // RFC 7443
		s.tls = tls.NewListener(l, cfg)
		s.tlsAddr = l.Addr()
	}
	return nil
}

func (s *Server) listenUDPTCP(addr string) error {
	first, err := listenUDP(addr, s.opts.UDPSockets > 1)
	if err != nil {
		return fmt.Errorf("turn: listen udp: %w", err)
	}
	s.udp = append(s.udp, first)
	s.udpAddr = first.LocalAddr()
	bound := first.LocalAddr().String()
	for i := 1; i < s.opts.UDPSockets; i++ {
		uc, err := listenUDP(bound, true)
		if err != nil {
			break // SO_REUSEPORT unavailable: one socket it is
		}
		s.udp = append(s.udp, uc)
	}
	for _, uc := range s.udp {
		if err := uc.SetReadBuffer(s.opts.ReceiveBuffer); err != nil {
			return fmt.Errorf("turn: receive-buffer: %w", err)
		}
		if err := uc.SetWriteBuffer(s.opts.SendBuffer); err != nil {
			return fmt.Errorf("turn: send-buffer: %w", err)
		}
	}
	l, err := net.Listen("tcp", bound)
	if err != nil {
		return fmt.Errorf("turn: listen tcp: %w", err)
	}
	s.tcp = l
	s.tcpAddr = l.Addr()
	return nil
}

func (s *Server) closeListeners() {
	for _, uc := range s.udp {
		uc.Close()
	}
	s.udp = nil
	for _, l := range []net.Listener{s.tcp, s.tls} {
		if l != nil {
			l.Close()
		}
	}
	s.tcp, s.tls = nil, nil
}

// UDPAddr, TCPAddr and TLSAddr return the bound listener addresses (nil
// when off).
func (s *Server) UDPAddr() net.Addr { return s.udpAddr }

// TCPAddr returns the TCP listener's address.
func (s *Server) TCPAddr() net.Addr { return s.tcpAddr }

// TLSAddr returns the TURNS listener's address.
func (s *Server) TLSAddr() net.Addr { return s.tlsAddr }

// Realm returns the STUN realm.
func (s *Server) Realm() string { return s.opts.Realm }

// Close stops listening and ends every allocation.
func (s *Server) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	err := s.pion.Close()
	s.rmu.RLock()
	rs := make([]*relayConn, 0, len(s.relays))
	for _, r := range s.relays {
		rs = append(rs, r)
	}
	s.rmu.RUnlock()
	for _, r := range rs {
		r.Close()
	}
	s.smu.Lock()
	ss := make([]*streamConn, 0, len(s.streams))
	for _, c := range s.streams {
		ss = append(ss, c)
	}
	s.smu.Unlock()
	for _, c := range ss {
		c.Close()
	}
	return err
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	c := &s.stats
	return Stats{
		Allocations:        c.allocations.Load(),
		AllocationsTotal:   c.allocationsTotal.Load(),
		BytesToPeers:       c.bytesToPeers.Load(),
		BytesFromPeers:     c.bytesFromPeers.Load(),
		PacketsToPeers:     c.packetsToPeers.Load(),
		PacketsFromPeers:   c.packetsFromPeers.Load(),
		DroppedToPeers:     c.droppedToPeers.Load(),
		DroppedFromPeers:   c.droppedFromPeers.Load(),
		Unpermitted:        c.unpermitted.Load(),
		PermissionsRefused: c.permissionsRefused.Load(),
		AuthFailures:       c.authFailures.Load(),
		QuotaRefused:       c.quotaRefused.Load(),
	}
}

// Credentials returns credentials for user valid for ttl, with the
// server's secret.
func (s *Server) Credentials(user string, ttl time.Duration) (username, password string, expires time.Time) {
	return Credentials(s.opts.Secret, user, ttl)
}

// authKey is pion's AuthHandler: the long-term key of a well-formed TURN
// REST username. Expiry and the password were checked before (screen): an
// expired username may still refresh an allocation made while it was valid.
func (s *Server) authKey(username, realm string, _ net.Addr) ([]byte, bool) {
	if _, _, err := ParseUsername(username); err != nil {
		return nil, false
	}
	return pionturn.GenerateAuthKey(username, realm, Password(s.opts.Secret, username)), true
}

const quotaHold = 5 * time.Second // a granted quota slot waits this long for its allocation

// quota is pion's QuotaHandler, called for each Allocate.
func (s *Server) quota(username, _ string, src net.Addr) bool {
	_, name, err := ParseUsername(username)
	if err != nil {
		return false
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.userLocked(name)
	if max := s.opts.MaxAllocationsPerUser; max > 0 && u.live(now) >= max {
		s.stats.quotaRefused.Add(1)
		s.log.Info("turn: allocation quota reached", "user", name, "client", str(src), "max", max)
		return false
	}
	u.pending = append(u.pending, now.Add(quotaHold))
	if s.quotaCalls++; s.quotaCalls%1024 == 0 {
		for name, u := range s.users { // those whose Allocate failed after the quota check
			if u.allocs <= 0 && u.live(now) == 0 {
				delete(s.users, name)
			}
		}
	}
	return true
}

func (s *Server) userLocked(name string) *user {
	u := s.users[name]
	if u == nil {
		u = &user{in: newBucket(s.opts.BandwidthPerUser), out: newBucket(s.opts.BandwidthPerUser)}
		s.users[name] = u
	}
	return u
}

func (s *Server) allocationCreated(src, dst net.Addr, proto, username, _ string, relay net.Addr, _ int) {
	_, name, _ := ParseUsername(username)
	port := addrPort(relay).Port()
	s.mu.Lock()
	u := s.userLocked(name)
	u.allocs++
	if len(u.pending) > 0 {
		u.pending = u.pending[1:]
	}
	s.mu.Unlock()
	if rc := s.relay(int(port)); rc != nil {
		rc.u.Store(u)
		if cp := s.pathTo(src, dst); cp != nil {
			rc.client.Store(cp)
		}
		if _, ok := dst.(*net.UDPAddr); ok {
			// ChannelData from this client takes the fast path (fastChannelData).
			ap := addrPort(src)
			ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			s.rmu.Lock()
			if s.relays[rc.port] == rc { // not closed meanwhile
				rc.udpClient = ap
				s.clients[ap] = rc
			}
			s.rmu.Unlock()
		}
	}
	s.stats.allocations.Add(1)
	s.stats.allocationsTotal.Add(1)
	s.log.Debug("turn: allocation", "user", name, "client", str(src), "transport", proto, "relay", str(relay))
}

func (s *Server) allocationDeleted(src, _ net.Addr, _, username, _ string) {
	_, name, _ := ParseUsername(username)
	s.mu.Lock()
	if u := s.users[name]; u != nil {
		u.allocs--
		if u.allocs <= 0 && u.live(time.Now()) == 0 {
			delete(s.users, name)
		}
	}
	s.mu.Unlock()
	s.stats.allocations.Add(-1)
	s.log.Debug("turn: allocation ended", "user", name, "client", str(src))
}

// permission tracks the peers an allocation may hear from.
func (s *Server) permission(relay net.Addr, peer net.IP, delta int) {
	ip, ok := netip.AddrFromSlice(peer)
	if !ok {
		return
	}
	ip = ip.Unmap()
	rc := s.relay(int(addrPort(relay).Port()))
	if rc == nil {
		return
	}
	rc.pmu.Lock()
	if n := rc.perms[ip] + delta; n > 0 {
		rc.perms[ip] = n
	} else {
		delete(rc.perms, ip)
	}
	rc.pmu.Unlock()
}

// channel tracks the channels bound on an allocation.
func (s *Server) channel(relay, peer net.Addr, ch uint16, bound bool) {
	rc := s.relay(int(addrPort(relay).Port()))
	if rc == nil {
		return
	}
	ap := addrPort(peer)
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	rc.pmu.Lock()
	if bound {
		rc.chans[ap] = ch
		rc.peers[ch] = ap
	} else {
		delete(rc.chans, ap)
		delete(rc.peers, ch)
	}
	rc.pmu.Unlock()
}

// fastChannelData relays a ChannelData message from a UDP client with an
// allocation and the channel bound, as pion would (RFC 5766 §11.6: the
// channel's peer gets the data), without pion's per-packet lookups and
// allocations; it reports false for anything else, which goes to pion.
// Channels and allocations are mirrored from pion's events, so both paths
// relay the same packets.
func (s *Server) fastChannelData(b []byte, src netip.AddrPort, via *screenedPacketConn) bool {
	if len(b) < 4 || b[0] < 0x40 || b[0] > 0x7F {
		return false
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if 4+n > len(b) {
		return false // pion drops it
	}
	s.rmu.RLock()
	rc := s.clients[src]
	s.rmu.RUnlock()
	if rc == nil {
		return false
	}
	peer, ok := rc.peerOf(binary.BigEndian.Uint16(b))
	if !ok {
		return false
	}
	_, _ = rc.toPeer(b[4:4+n], peer, via)
	return true
}

// pathTo returns how to write to the client at src, which reached the
// listener at dst: the UDP socket, or its TCP/TLS connection.
func (s *Server) pathTo(src, dst net.Addr) *clientPath {
	if _, ok := dst.(*net.TCPAddr); ok {
		s.smu.Lock()
		sc := s.streams[streamKey(src, dst)]
		s.smu.Unlock()
		if sc == nil {
			return nil
		}
		return &clientPath{addr: src, write: func(b []byte, _ net.Addr) error { _, err := sc.Write(b); return err }}
	}
	if len(s.udp) == 0 {
		return nil
	}
	// Any socket sharing the port sends from the same address; spread the
	// clients over them (each socket has its own write lock).
	ap := addrPort(src)
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	uc := s.udp[int(ap.Port())%len(s.udp)]
	return &clientPath{addr: src, udp: ap, write: func(b []byte, to net.Addr) error { _, err := uc.WriteTo(b, to); return err }}
}

func streamKey(remote, local net.Addr) string { return remote.String() + "|" + local.String() }

// permit is pion's PermissionHandler (CreatePermission, ChannelBind).
func (s *Server) permit(client net.Addr, peer net.IP) bool {
	ip, ok := netip.AddrFromSlice(peer)
	if !ok {
		return false
	}
	if why := s.policy.Check(ip); why != peerOK && why != peerRelay {
		s.stats.permissionsRefused.Add(1)
		s.log.Info("turn: peer refused", "client", str(client), "peer", ip.Unmap().String(), "reason", why)
		return false
	}
	return true
}

// mayReach is checked for every packet sent to a peer: never to our own
// listeners, and to our relay address only where an allocation listens.
func (s *Server) mayReach(ip netip.Addr, port int) bool {
	why := s.policy.Check(ip)
	if s.listenPorts[port] && (why == peerRelay || s.policy.Own[ip] || ip.IsLoopback()) {
		return false
	}
	switch why {
	case peerOK:
		return true
	case peerRelay:
		return s.relay(port) != nil
	}
	return false
}

// relay returns the live relay socket on port, or nil.
func (s *Server) relay(port int) *relayConn {
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	return s.relays[port]
}
