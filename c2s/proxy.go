package c2s

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientOf says who sent an HTTP request (WebSocket upgrade, BOSH): the
// client's address, to which the per-address limits apply, and whether the
// client's own connection was TLS, which decides whether the stream counts
// as secure.
type ClientOf func(r *http.Request) (ip netip.Addr, secure bool)

// DirectClient is the ClientOf of a listener with no reverse proxy in
// front: the TCP peer, secure only when the request itself came over TLS.
// A loopback peer is not trusted to be anything more.
func DirectClient(r *http.Request) (netip.Addr, bool) {
	return peerAddr(r), r.TLS != nil
}

func peerAddr(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	a, _ := netip.ParseAddr(r.RemoteAddr)
	return a.Unmap()
}

// BehindProxies returns the ClientOf of a listener behind reverse proxies
// at the trusted addresses. Their headers are believed, nobody else's:
//   - the client is the rightmost X-Forwarded-For hop that is not itself a
//     trusted proxy (hops to its left were written by the client and may
//     be anything); an unparsable hop stops the walk at the last good one;
//   - the stream is secure when the request came over TLS, or when the
//     nearest trusted proxy says the client's did: the last
//     X-Forwarded-Proto value, else the proto of the last Forwarded
//     (RFC 7239) element, is "https".
//
// With no trusted prefixes it is DirectClient.
func BehindProxies(trusted []netip.Prefix) ClientOf {
	if len(trusted) == 0 {
		return DirectClient
	}
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(r *http.Request) (netip.Addr, bool) {
		peer := peerAddr(r)
		if !peer.IsValid() || !isTrusted(peer) {
			return peer, r.TLS != nil
		}
		client := peer
		hops := headerList(r.Header.Values("X-Forwarded-For"))
		for i := len(hops) - 1; i >= 0; i-- {
			a, ok := parseHop(hops[i])
			if !ok {
				break
			}
			client = a
			if !isTrusted(a) {
				break
			}
		}
		return client, r.TLS != nil || forwardedTLS(r.Header)
	}
}

// headerList splits comma-separated header values into trimmed items.
func headerList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
	}
	return out
}

// parseHop reads one X-Forwarded-For item: an address, possibly with a
// port or in brackets.
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}

// forwardedTLS reads what the nearest proxy says of the client's scheme.
func forwardedTLS(h http.Header) bool {
	if v := headerList(h.Values("X-Forwarded-Proto")); len(v) > 0 {
		return isTLSScheme(v[len(v)-1])
	}
	elems := headerList(h.Values("Forwarded"))
	if len(elems) == 0 {
		return false
	}
	for _, pair := range strings.Split(elems[len(elems)-1], ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if ok && strings.EqualFold(k, "proto") {
			return isTLSScheme(strings.Trim(v, `"`))
		}
	}
	return false
}

func isTLSScheme(s string) bool { return strings.EqualFold(s, "https") || strings.EqualFold(s, "wss") }

// clientAddr is the transport address of an HTTP client: the address
// ClientOf gave, with the TCP port when it is the peer itself.
func clientAddr(r *http.Request, ip netip.Addr) net.Addr {
	port := 0
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil && ap.Addr().Unmap() == ip {
		port = int(ap.Port())
	}
	if !ip.IsValid() {
		return &net.TCPAddr{}
	}
	return &net.TCPAddr{IP: ip.AsSlice(), Port: port}
}
