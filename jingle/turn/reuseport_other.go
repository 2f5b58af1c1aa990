//go:build !linux

package turn

import "net"

// listenUDP opens a UDP socket. Sharing a port (SO_REUSEPORT) is only done
// on Linux; elsewhere a second socket on the same port fails to bind and
// the server keeps one.
func listenUDP(addr string, _ bool) (*net.UDPConn, error) {
	a, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	return net.ListenUDP("udp", a)
}
