//go:build !linux

package turn

import (
	"net"
	"net/netip"
)

// batch is recvmmsg/sendmmsg on Linux; elsewhere each datagram has its
// own system call (newBatch returns nil).
type batch struct{ n int }

func newBatch(*net.UDPConn, int) *batch { return nil }

func (b *batch) recv() error                           { return nil }
func (b *batch) datagram(int) ([]byte, netip.AddrPort) { return nil, netip.AddrPort{} }
func (b *batch) add([]byte, netip.AddrPort)            {}
func (b *batch) flush()                                {}
