package sasl

import (
	"context"
	"testing"
)

// BenchmarkSCRAMSHA256Server measures the server side of a full
// SCRAM-SHA-256 exchange (keys stored with 4096 iterations): NewServer,
// client-first → server-first, client-final → server-final. The client
// messages are computed once with fixed nonces.
func BenchmarkSCRAMSHA256Server(b *testing.B) {
	st := store(b)
	opts := Options{Lookup: st.lookup, Nonce: fixedNonce("SN")}
	s, _ := NewServer("SCRAM-SHA-256", opts)
	c, _ := NewClient("SCRAM-SHA-256", "juliet", "r0m30!", ClientOptions{Nonce: fixedNonce("CN")})
	first, _, _ := c.Step(nil)
	ch, _, _ := s.Next(context.Background(), first)
	final, _, _ := c.Step(ch)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s, _ := NewServer("SCRAM-SHA-256", opts)
		if _, _, err := s.Next(ctx, first); err != nil {
			b.Fatal(err)
		}
		if _, done, err := s.Next(ctx, final); err != nil || !done {
			b.Fatal(err)
		}
	}
}

func benchExchange(b *testing.B, mech string, cache *SaltedPasswordCache) {
	st := store(b)
	b.ReportAllocs()
	for b.Loop() {
		s, _ := NewServer(mech, Options{Lookup: st.lookup, Bindings: fakeBindings})
		c, _ := NewClient(mech, "juliet", "r0m30!", ClientOptions{Bindings: fakeBindings, Cache: cache})
		if err := exchange(b, c, s); err != nil {
			b.Fatal(err)
		}
	}
}

// Client and server together, 4096 iterations, random nonces.
func BenchmarkSCRAMSHA256ExchangeCached(b *testing.B) {
	benchExchange(b, "SCRAM-SHA-256", NewSaltedPasswordCache(0))
}

func BenchmarkSCRAMSHA256ExchangeUncached(b *testing.B) {
	benchExchange(b, "SCRAM-SHA-256", nil)
}

func BenchmarkSCRAMSHA512PlusExchangeCached(b *testing.B) {
	benchExchange(b, "SCRAM-SHA-512-PLUS", NewSaltedPasswordCache(0))
}

// PLAIN costs one PBKDF2 (4096 iterations, SHA-256) per login on the server.
func BenchmarkPLAIN(b *testing.B) {
	benchExchange(b, "PLAIN", nil)
}
