package turn

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestBatchIO: one recvmmsg returns every datagram already queued on the
// socket, each with its source; one flush sends what was queued, to several
// destinations, on an IPv4 and on a dual-stack socket.
func TestBatchIO(t *testing.T) {
	for _, network := range []string{"udp4", "udp"} {
		t.Run(network, func(t *testing.T) {
			pc, err := net.ListenPacket(network, "127.0.0.1:0")
			if network == "udp" {
				pc, err = net.ListenPacket(network, ":0") // dual stack
			}
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			uc := pc.(*net.UDPConn)
			port := uc.LocalAddr().(*net.UDPAddr).Port
			to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
			in, out := newBatch(uc, 2048), newBatch(uc, 2048)

			a, b := udpPeer(t), udpPeer(t)
			const n = batchSize + 8 // more than one batch
			for i := range n {
				from := a
				if i%2 == 1 {
					from = b
				}
				// Sending on loopback queues the datagram on the receiving
				// socket before sendto returns.
				if _, err := from.WriteToUDPAddrPort(fmt.Appendf(nil, "datagram %d", i), to); err != nil {
					t.Fatal(err)
				}
			}
			if err := in.recv(); err != nil || in.n != batchSize {
				t.Fatalf("first recvmmsg: %d datagrams, %v; want %d", in.n, err, batchSize)
			}
			got := 0
			for batches := 0; got < n; batches++ {
				if batches > 0 {
					if err := in.recv(); err != nil {
						t.Fatal(err)
					}
				}
				for i := range in.n {
					p, src := in.datagram(i)
					want := addrPort(a.LocalAddr())
					if got%2 == 1 {
						want = addrPort(b.LocalAddr())
					}
					if string(p) != fmt.Sprintf("datagram %d", got) || src != want {
						t.Fatalf("datagram %d: %q from %v, want from %v", got, p, src, want)
					}
					got++
				}
			}

			// Queue more than a batch to both peers; flush sends the rest.
			for i := range n {
				dst := addrPort(a.LocalAddr())
				if i%2 == 1 {
					dst = addrPort(b.LocalAddr())
				}
				out.add(fmt.Appendf(nil, "reply %d", i), dst)
			}
			out.flush()
			buf := make([]byte, 64)
			for i := range n {
				c := a
				if i%2 == 1 {
					c = b
				}
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				m, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil || string(buf[:m]) != fmt.Sprintf("reply %d", i) || from.Port() != uint16(port) {
					t.Fatalf("reply %d: %q from %v, %v", i, buf[:m], from, err)
				}
			}
		})
	}
}
