package sasl

import (
	"context"
	"errors"
	"testing"

	"github.com/xmppd/xmppd/storage"
)

func checkSentinel(t *testing.T, err error) {
	t.Helper()
	n := 0
	for _, s := range []error{ErrNotAuthorized, ErrMalformed, ErrInvalidMechanism, ErrBindingType, ErrTemporary} {
		if errors.Is(err, s) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("error %v matches %d sentinels", err, n)
	}
}

// FuzzSCRAMServer feeds arbitrary client-first and client-final messages to
// SCRAM-SHA-256 and SCRAM-SHA-256-PLUS servers.
func FuzzSCRAMServer(f *testing.F) {
	st := store(f)
	// Seeds: a valid exchange (fixed nonces) and its -PLUS counterpart.
	for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"} {
		s, _ := NewServer(mech, Options{Lookup: st.lookup, Bindings: fakeBindings, Nonce: fixedNonce("SN")})
		c, _ := NewClient(mech, "juliet", "r0m30!", ClientOptions{Bindings: fakeBindings, Nonce: fixedNonce("CN")})
		first, _, _ := c.Step(nil)
		ch, _, err := s.Next(context.Background(), first)
		if err != nil {
			f.Fatal(err)
		}
		final, _, _ := c.Step(ch)
		f.Add(first, final)
	}
	f.Add([]byte("y,a=x,n=a=3D,r=x,e=1"), []byte("c=eSxhPXgs,r=xSN,p=AAAA"))
	f.Add([]byte("p=tls-server-end-point,,n=romeo,r=x"), []byte("c=,r=,p="))
	f.Add([]byte("n,,m=x,n=u,r=x"), []byte(""))

	f.Fuzz(func(t *testing.T, first, final []byte) {
		for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"} {
			s, err := NewServer(mech, Options{Lookup: st.lookup, Bindings: fakeBindings, PlusAdvertised: true, Nonce: fixedNonce("SN")})
			if err != nil {
				t.Fatal(err)
			}
			_, done, err := s.Next(context.Background(), first)
			if err != nil {
				checkSentinel(t, err)
				continue
			}
			if done {
				t.Fatal("done after client-first")
			}
			ch, done, err := s.Next(context.Background(), final)
			if err != nil {
				checkSentinel(t, err)
				continue
			}
			if len(first) == 0 {
				continue // ch was the empty challenge; final was the client-first
			}
			if !done || s.Username() != "juliet" || len(ch) == 0 {
				t.Fatalf("unexpected success: %q %v %q", ch, done, s.Username())
			}
		}
	})
}

// FuzzPLAIN feeds arbitrary PLAIN messages to the server.
func FuzzPLAIN(f *testing.F) {
	// Few iterations so that each run stays cheap.
	k, err := DeriveKeys(SHA256, "r0m30!", []byte("salt"), 2)
	if err != nil {
		f.Fatal(err)
	}
	st := &memStore{users: map[string]map[string]storage.SCRAMKeys{"juliet": {SHA256: k}}}
	f.Add([]byte("\x00juliet\x00r0m30!"))
	f.Add([]byte("juliet@example.com\x00Juliet\x00r0m30!"))
	f.Add([]byte("\x00romeo\x00r0m30!"))
	f.Add([]byte("\x00\x00"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		s, _ := NewServer("PLAIN", Options{Lookup: st.lookup, FakeIterations: 2, Domain: "example.com"})
		_, done, err := s.Next(context.Background(), msg)
		if err != nil {
			checkSentinel(t, err)
			return
		}
		if len(msg) == 0 {
			return
		}
		if !done || s.Username() != "juliet" {
			t.Fatalf("unexpected success for %q", msg)
		}
	})
}
