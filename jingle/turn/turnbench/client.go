package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pion/stun/v3"

	"github.com/xmppd/xmppd/jingle/turn"
)

// lean is a minimal TURN client for the load: it sets up an allocation and
// a channel with a few STUN transactions, then sends and receives
// ChannelData on its own socket, so that the generator costs little next
// to the server it measures.
type lean struct {
	conn   *net.UDPConn
	server netip.AddrPort
	user   stun.Username
	realm  stun.Realm
	nonce  stun.Nonce
	integ  stun.MessageIntegrity
	relay  netip.AddrPort
	ch     uint16
	rbuf   []byte
	read   func([]byte) (int, int64, error)
}

func dialLean(server netip.AddrPort, secret, user string) (*lean, error) {
	u, p, _ := turn.Credentials(secret, user, time.Hour)
	c := &lean{conn: udp(), server: server, user: stun.NewUsername(u)}
	// First Allocate without credentials: 401 with realm and nonce.
	res, err := c.do(stun.MethodAllocate, false, requestedUDP)
	if err != nil {
		return nil, err
	}
	if err := c.realm.GetFrom(res); err != nil {
		return nil, fmt.Errorf("no realm in the answer: %w", class(res))
	}
	if err := c.nonce.GetFrom(res); err != nil {
		return nil, fmt.Errorf("no nonce in %v", res)
	}
	c.integ = stun.NewLongTermIntegrity(u, c.realm.String(), p)
	if res, err = c.do(stun.MethodAllocate, true, requestedUDP); err != nil {
		return nil, err
	}
	if err := class(res); err != nil {
		return nil, err
	}
	var ra stun.XORMappedAddress
	if err := ra.GetFromAs(res, stun.AttrXORRelayedAddress); err != nil {
		return nil, err
	}
	a, _ := netip.AddrFromSlice(ra.IP)
	c.relay = netip.AddrPortFrom(a.Unmap(), uint16(ra.Port))
	return c, nil
}

var requestedUDP = setterFunc(func(m *stun.Message) error {
	m.Add(stun.AttrRequestedTransport, []byte{17, 0, 0, 0}) // UDP
	return nil
})

func class(m *stun.Message) error {
	if m.Type.Class == stun.ClassSuccessResponse {
		return nil
	}
	var code stun.ErrorCodeAttribute
	_ = code.GetFrom(m)
	return fmt.Errorf("%v: %v", m.Type, code)
}

// do runs one transaction (the socket is not read by anyone else yet).
func (c *lean) do(method stun.Method, auth bool, extra ...stun.Setter) (*stun.Message, error) {
	setters := []stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}
	setters = append(setters, extra...)
	if auth {
		setters = append(setters, c.user, c.realm, c.nonce, c.integ)
	}
	setters = append(setters, stun.Fingerprint)
	req, err := stun.Build(setters...)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 1500)
	for try := 0; try < 5; try++ {
		if _, err := c.conn.WriteToUDPAddrPort(req.Raw, c.server); err != nil {
			return nil, err
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, _, err := c.conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				break // timeout: send again
			}
			res := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if res.Decode() != nil || res.TransactionID != req.TransactionID {
				continue
			}
			_ = c.conn.SetReadDeadline(time.Time{})
			return res, nil
		}
	}
	return nil, errors.New("no answer from the TURN server")
}

// release deletes the allocation (a Refresh with LIFETIME 0, not waiting
// for the answer: the socket is being read by the load) and closes the
// socket, so that the server's relay ports are free for the next run.
func (c *lean) release() {
	req, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodRefresh, stun.ClassRequest),
		stun.RawAttribute{Type: stun.AttrLifetime, Value: []byte{0, 0, 0, 0}},
		c.user, c.realm, c.nonce, c.integ, stun.Fingerprint)
	if err == nil {
		_, _ = c.conn.WriteToUDPAddrPort(req.Raw, c.server)
	}
	c.conn.Close()
}

// bind binds channel ch to peer (which also creates the permission).
func (c *lean) bind(peer netip.AddrPort, ch uint16) error {
	res, err := c.do(stun.MethodChannelBind, true,
		stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{byte(ch >> 8), byte(ch), 0, 0}},
		peerAddr(peer))
	if err != nil {
		return err
	}
	c.ch = ch
	return class(res)
}

func peerAddr(p netip.AddrPort) stun.Setter {
	return setterFunc(func(m *stun.Message) error {
		return stun.XORMappedAddress{IP: p.Addr().AsSlice(), Port: int(p.Port())}.AddToAs(m, stun.AttrXORPeerAddress)
	})
}

type setterFunc func(*stun.Message) error

func (f setterFunc) AddTo(m *stun.Message) error { return f(m) }

// send writes payload as ChannelData (buf must have 4 spare bytes in front).
func (c *lean) send(frame []byte) error {
	binary.BigEndian.PutUint16(frame, c.ch)
	binary.BigEndian.PutUint16(frame[2:], uint16(len(frame)-4))
	_, err := c.conn.WriteToUDPAddrPort(frame, c.server)
	return err
}

// recv returns the next ChannelData payload and its kernel receive time.
func (c *lean) recv(p []byte) (int, int64, error) {
	if c.rbuf == nil {
		c.rbuf = make([]byte, 2048)
		c.read = recvStamped(c.conn)
	}
	buf := c.rbuf
	for {
		n, kernel, err := c.read(buf)
		if err != nil {
			return 0, 0, err
		}
		if n < 4 || buf[0] < 0x40 || buf[0] > 0x7F {
			continue // a STUN message (none expected after setup)
		}
		l := int(binary.BigEndian.Uint16(buf[2:]))
		if 4+l > n {
			continue
		}
		return copy(p, buf[4:4+l]), kernel, nil
	}
}
