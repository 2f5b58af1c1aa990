//go:build !linux

package main

import "net"

func timestamps(*net.UDPConn) {}

// recvStamped reads c's datagrams; without kernel timestamps the latency
// is measured when the generator reads them.
func recvStamped(c *net.UDPConn) func([]byte) (int, int64, error) {
	return func(p []byte) (int, int64, error) {
		n, _, err := c.ReadFromUDPAddrPort(p)
		return n, 0, err
	}
}
