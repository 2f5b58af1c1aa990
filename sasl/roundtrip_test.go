package sasl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/storage"
)

// fakeBindings are arbitrary values standing for a TLS 1.3 connection.
var fakeBindings = ChannelBindings{
	TLSExporter:       bytes.Repeat([]byte{0xe1}, 32),
	TLSServerEndPoint: bytes.Repeat([]byte{0x5e}, 32),
}

func TestRoundTrips(t *testing.T) {
	st := store(t)
	type variant struct {
		name        string
		cb          ChannelBindings
		typ         string
		plusOffered bool
		supports    bool
	}
	variants := []variant{
		{name: "no-tls"},
		{name: "tls-no-plus", cb: fakeBindings, supports: true},
		{name: "tls-plus-offered", cb: fakeBindings, plusOffered: true},
		{name: "exporter", cb: fakeBindings, typ: BindingTLSExporter, plusOffered: true},
		{name: "end-point", cb: fakeBindings, typ: BindingTLSServerEndPoint, plusOffered: true},
	}
	for _, mech := range append(scramMechs, "PLAIN") {
		for _, v := range variants {
			plus := strings.HasSuffix(mech, "-PLUS")
			if plus && v.cb.TLSExporter == nil {
				continue
			}
			if !plus && v.typ != "" {
				continue
			}
			t.Run(mech+"/"+v.name, func(t *testing.T) {
				s, err := NewServer(mech, Options{Lookup: st.lookup, Bindings: v.cb, PlusAdvertised: v.plusOffered})
				if err != nil {
					t.Fatal(err)
				}
				c, err := NewClient(mech, "Juliet", "r0m30!", ClientOptions{Bindings: v.cb, BindingType: v.typ, SupportsBinding: v.supports})
				if err != nil {
					t.Fatal(err)
				}
				if err := exchange(t, c, s); err != nil {
					t.Fatal(err)
				}
				if s.Username() != "juliet" || s.Mechanism() != mech {
					t.Fatalf("username %q mechanism %q", s.Username(), s.Mechanism())
				}
			})
		}
	}
}

func TestWrongPasswordAndUnknownUser(t *testing.T) {
	st := store(t)
	for _, mech := range append(scramMechs, "PLAIN") {
		t.Run(mech, func(t *testing.T) {
			opts := Options{Lookup: st.lookup, Bindings: fakeBindings, PlusAdvertised: true, Nonce: fixedNonce("SERVERNONCE")}
			run := func(user, pw string) (first string, err error) {
				s, err := NewServer(mech, opts)
				if err != nil {
					t.Fatal(err)
				}
				c, err := NewClient(mech, user, pw, ClientOptions{Bindings: fakeBindings, Nonce: fixedNonce("CLIENTNONCE")})
				if err != nil {
					t.Fatal(err)
				}
				ctx := context.Background()
				r, _, _ := c.Step(nil)
				ch, done, err := s.Next(ctx, r)
				if err != nil || done {
					return "", err
				}
				first = string(ch)
				r, _, err = c.Step(ch)
				if err != nil {
					t.Fatal(err)
				}
				_, _, err = s.Next(ctx, r)
				return first, err
			}
			f1, e1 := run("juliet", "wrong")
			f2, e2 := run("romeo", "wrong")
			f3, e3 := run("romeo", "other")
			if !errors.Is(e1, ErrNotAuthorized) || !errors.Is(e2, ErrNotAuthorized) {
				t.Fatalf("errors %v / %v", e1, e2)
			}
			if e1.Error() != e2.Error() {
				t.Fatalf("distinguishable errors %q / %q", e1, e2)
			}
			if f3 != f2 {
				t.Fatalf("fake salt not stable: %q vs %q", f2, f3)
			}
			if e3.Error() != e2.Error() {
				t.Fatal(e3)
			}
			if strings.HasPrefix(mech, "SCRAM") {
				// Same shape: same nonce, same salt length, same iterations.
				p1, p2 := strings.Split(f1, ","), strings.Split(f2, ",")
				if len(p1) != 3 || len(p2) != 3 || p1[0] != p2[0] || len(p1[1]) != len(p2[1]) || p1[2] != p2[2] {
					t.Fatalf("distinguishable server-first %q / %q", f1, f2)
				}
				if p1[1] == p2[1] {
					t.Fatal("same salt for real and fake user")
				}
				// Another secret gives another fake salt.
				opts.Secret = []byte("another secret")
				f4, _ := run("romeo", "wrong")
				if f4 == f2 {
					t.Fatal("fake salt ignores Options.Secret")
				}
			}
		})
	}
}

func TestPlainKeyPreference(t *testing.T) {
	st := store(t)
	s, _ := NewServer("PLAIN", Options{Lookup: st.lookup})
	if _, done, err := s.Next(context.Background(), []byte("\x00juliet\x00r0m30!")); err != nil || !done {
		t.Fatal(err)
	}
	if fmt.Sprint(st.calls) != "[juliet/SHA-256]" {
		t.Fatalf("lookups %v", st.calls)
	}
	// A user with SHA-1 keys only.
	st.calls = nil
	s, _ = NewServer("PLAIN", Options{Lookup: st.lookup})
	if _, done, err := s.Next(context.Background(), []byte("\x00sha1only\x00old")); err != nil || !done {
		t.Fatal(err)
	}
	if fmt.Sprint(st.calls) != "[sha1only/SHA-256 sha1only/SHA-512 sha1only/SHA-1]" {
		t.Fatalf("lookups %v", st.calls)
	}
	// SCRAM-SHA-256 for that user fails like an unknown user.
	s, _ = NewServer("SCRAM-SHA-256", Options{Lookup: st.lookup})
	c, _ := NewClient("SCRAM-SHA-256", "sha1only", "old", ClientOptions{})
	if err := exchange(t, c, s); !errors.Is(err, ErrNotAuthorized) {
		t.Fatal(err)
	}
}

func TestLookupFailure(t *testing.T) {
	st := store(t)
	st.err = errors.New("disk on fire")
	for _, mech := range []string{"SCRAM-SHA-256", "PLAIN"} {
		s, _ := NewServer(mech, Options{Lookup: st.lookup})
		c, _ := NewClient(mech, "juliet", "r0m30!", ClientOptions{})
		err := exchange(t, c, s)
		if !errors.Is(err, ErrTemporary) || !errors.Is(err, st.err) {
			t.Fatalf("%s: %v", mech, err)
		}
	}
	// Corrupt stored keys are a temporary failure too.
	bad := &memStore{users: map[string]map[string]storage.SCRAMKeys{"juliet": {SHA256: {Salt: []byte("x"), Iterations: 1, StoredKey: []byte("short")}}}}
	s, _ := NewServer("SCRAM-SHA-256", Options{Lookup: bad.lookup})
	c, _ := NewClient("SCRAM-SHA-256", "juliet", "r0m30!", ClientOptions{})
	if err := exchange(t, c, s); !errors.Is(err, ErrTemporary) {
		t.Fatal(err)
	}
}

func TestDowngrade(t *testing.T) {
	st := store(t)
	for _, mech := range []string{"SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		s, _ := NewServer(mech, Options{Lookup: st.lookup, Bindings: fakeBindings, PlusAdvertised: true})
		c, _ := NewClient(mech, "juliet", "r0m30!", ClientOptions{SupportsBinding: true})
		err := exchange(t, c, s)
		var e *Error
		if !errors.Is(err, ErrNotAuthorized) || !errors.As(err, &e) || e.Reason != "server-does-support-channel-binding" {
			t.Fatalf("%s: downgrade: %v", mech, err)
		}
		// 'n' is fine: the client does not support channel binding.
		s, _ = NewServer(mech, Options{Lookup: st.lookup, Bindings: fakeBindings, PlusAdvertised: true})
		c, _ = NewClient(mech, "juliet", "r0m30!", ClientOptions{})
		if err := exchange(t, c, s); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBindingMismatch(t *testing.T) {
	st := store(t)
	other := ChannelBindings{TLSExporter: bytes.Repeat([]byte{1}, 32), TLSServerEndPoint: bytes.Repeat([]byte{2}, 32)}
	for _, typ := range []string{BindingTLSExporter, BindingTLSServerEndPoint} {
		s, _ := NewServer("SCRAM-SHA-256-PLUS", Options{Lookup: st.lookup, Bindings: fakeBindings, PlusAdvertised: true})
		c, _ := NewClient("SCRAM-SHA-256-PLUS", "juliet", "r0m30!", ClientOptions{Bindings: other, BindingType: typ})
		err := exchange(t, c, s)
		var e *Error
		if !errors.Is(err, ErrNotAuthorized) || !errors.As(err, &e) || e.Reason != "channel-bindings-dont-match" {
			t.Fatalf("%s: %v", typ, err)
		}
	}
	// A type the server has no data for (tls-exporter on TLS 1.2).
	tls12 := ChannelBindings{TLSServerEndPoint: fakeBindings.TLSServerEndPoint}
	s, _ := NewServer("SCRAM-SHA-256-PLUS", Options{Lookup: st.lookup, Bindings: tls12, PlusAdvertised: true})
	c, _ := NewClient("SCRAM-SHA-256-PLUS", "juliet", "r0m30!", ClientOptions{Bindings: fakeBindings, BindingType: BindingTLSExporter})
	if err := exchange(t, c, s); !errors.Is(err, ErrBindingType) {
		t.Fatal(err)
	}
	// tls-unique is not supported.
	s, _ = NewServer("SCRAM-SHA-256-PLUS", Options{Lookup: st.lookup, Bindings: fakeBindings, PlusAdvertised: true})
	if _, _, err := s.Next(context.Background(), []byte("p=tls-unique,,n=juliet,r=abc")); !errors.Is(err, ErrBindingType) {
		t.Fatal(err)
	}
}

func TestAuthzid(t *testing.T) {
	st := store(t)
	cases := []struct {
		authzid string
		ok      bool
	}{
		{"", true},
		{"juliet@example.com", true},
		{"Juliet@Example.COM", true},
		{"juliet@example.com.", true},
		{"romeo@example.com", false},
		{"juliet@example.org", false},
		{"juliet", false},
		{"juliet@example.com/balcony", false},
	}
	for _, mech := range []string{"SCRAM-SHA-256", "PLAIN"} {
		for _, tc := range cases {
			s, _ := NewServer(mech, Options{Lookup: st.lookup, Domain: "example.com"})
			c, _ := NewClient(mech, "juliet", "r0m30!", ClientOptions{Authzid: tc.authzid})
			err := exchange(t, c, s)
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrNotAuthorized)) {
				t.Errorf("%s %q: %v", mech, tc.authzid, err)
			}
			if s.Authzid() != tc.authzid {
				t.Errorf("%s: Authzid() = %q", mech, s.Authzid())
			}
		}
		// Without Domain the authzid is only exposed.
		s, _ := NewServer(mech, Options{Lookup: st.lookup})
		c, _ := NewClient(mech, "juliet", "r0m30!", ClientOptions{Authzid: "admin@x,=y"})
		if err := exchange(t, c, s); err != nil || s.Authzid() != "admin@x,=y" {
			t.Fatalf("%s: %v %q", mech, err, s.Authzid())
		}
	}
}

func TestUsernameEscapesAndPreparation(t *testing.T) {
	keys, err := DeriveKeys(SHA256, "pw\u00A0x", []byte("salt"), 4096) // NBSP maps to space
	if err != nil {
		t.Fatal(err)
	}
	st := &memStore{users: map[string]map[string]storage.SCRAMKeys{"a=b,c": {SHA256: keys}}}
	s, _ := NewServer("SCRAM-SHA-256", Options{Lookup: st.lookup})
	c, _ := NewClient("SCRAM-SHA-256", "A=B,C", "pw x", ClientOptions{Nonce: fixedNonce("n")})
	first, _, _ := c.Step(nil)
	if string(first) != "n,,n=a=3Db=2Cc,r=n" {
		t.Fatalf("client-first %q", first)
	}
	ch, _, err := s.Next(context.Background(), first)
	if err != nil {
		t.Fatal(err)
	}
	r, _, _ := c.Step(ch)
	if _, done, err := s.Next(context.Background(), r); err != nil || !done || s.Username() != "a=b,c" {
		t.Fatal(done, err, s.Username())
	}
}

func TestEmptyInitialResponse(t *testing.T) {
	st := store(t)
	for _, mech := range []string{"SCRAM-SHA-1", "PLAIN"} {
		s, _ := NewServer(mech, Options{Lookup: st.lookup})
		ch, done, err := s.Next(context.Background(), nil)
		if err != nil || done || ch == nil || len(ch) != 0 {
			t.Fatalf("%s: %q %v %v", mech, ch, done, err)
		}
		c, _ := NewClient(mech, "juliet", "r0m30!", ClientOptions{})
		if err := exchange(t, c, s); err != nil {
			t.Fatal(err)
		}
		// A second empty response is malformed.
		s, _ = NewServer(mech, Options{Lookup: st.lookup})
		s.Next(context.Background(), nil)
		if _, _, err := s.Next(context.Background(), []byte{}); !errors.Is(err, ErrMalformed) {
			t.Fatal(err)
		}
	}
}

func TestNewServerErrors(t *testing.T) {
	st := store(t)
	for _, m := range []string{"", "DIGEST-MD5", "SCRAM-SHA-384", "scram-sha-1", "SCRAM-SHA-1-PLUS-PLUS", "EXTERNAL"} {
		if _, err := NewServer(m, Options{Lookup: st.lookup}); !errors.Is(err, ErrInvalidMechanism) {
			t.Errorf("%q: %v", m, err)
		}
	}
	if _, err := NewServer("SCRAM-SHA-1-PLUS", Options{Lookup: st.lookup}); !errors.Is(err, ErrInvalidMechanism) {
		t.Error("PLUS without bindings:", err)
	}
	if _, err := NewServer("PLAIN", Options{}); err == nil {
		t.Error("nil Lookup accepted")
	}
	if _, err := NewClient("SCRAM-SHA-1-PLUS", "u", "p", ClientOptions{}); !errors.Is(err, ErrInvalidMechanism) {
		t.Error("client PLUS without bindings:", err)
	}
}

func TestMechanisms(t *testing.T) {
	cases := []struct {
		tls, plus, plain bool
		want             string
	}{
		{false, false, false, "[SCRAM-SHA-512 SCRAM-SHA-256 SCRAM-SHA-1]"},
		{false, true, false, "[SCRAM-SHA-512 SCRAM-SHA-256 SCRAM-SHA-1]"},
		{false, false, true, "[SCRAM-SHA-512 SCRAM-SHA-256 SCRAM-SHA-1 PLAIN]"},
		{true, false, false, "[SCRAM-SHA-512 SCRAM-SHA-256 SCRAM-SHA-1 PLAIN]"},
		{true, true, false, "[SCRAM-SHA-512-PLUS SCRAM-SHA-256-PLUS SCRAM-SHA-1-PLUS SCRAM-SHA-512 SCRAM-SHA-256 SCRAM-SHA-1 PLAIN]"},
	}
	for _, c := range cases {
		got := Mechanisms(c.tls, c.plus, c.plain)
		if fmt.Sprint(got) != c.want {
			t.Errorf("%v: %v", c, got)
		}
		_ = append(got, "X") // must not clobber the shared array
	}
	if fmt.Sprint(Mechanisms(true, true, false)) != cases[4].want {
		t.Fatal("shared array modified")
	}
	var sink []string
	if n := testing.AllocsPerRun(100, func() { sink = Mechanisms(true, true, false) }); n != 0 || len(sink) == 0 {
		t.Fatalf("%v allocs", n)
	}
	if fmt.Sprint(fakeBindings.Types()) != "[tls-exporter tls-server-end-point]" ||
		fmt.Sprint(ChannelBindings{TLSServerEndPoint: []byte{1}}.Types()) != "[tls-server-end-point]" ||
		len(ChannelBindings{}.Types()) != 0 {
		t.Fatal("Types")
	}
}

func TestDeriveKeys(t *testing.T) {
	if _, err := DeriveKeys("MD5", "p", []byte("s"), 1); err == nil {
		t.Error("MD5 accepted")
	}
	if _, err := DeriveKeys(SHA1, "p", nil, 1); err == nil {
		t.Error("empty salt accepted")
	}
	if _, err := DeriveKeys(SHA1, "p", []byte("s"), 0); err == nil {
		t.Error("0 iterations accepted")
	}
	if _, err := DeriveKeys(SHA1, "", []byte("s"), 1); err == nil {
		t.Error("empty password accepted")
	}
	keys, err := NewKeys("pencil", 16)
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int{SHA1: 20, SHA256: 32, SHA512: 64}
	for h, n := range sizes {
		k := keys[h]
		if len(k.Salt) < 16 || k.Iterations != 16 || len(k.StoredKey) != n || len(k.ServerKey) != n {
			t.Errorf("%s: %+v", h, k)
		}
	}
	if bytes.Equal(keys[SHA1].Salt, keys[SHA256].Salt) {
		t.Error("salts shared between hashes")
	}
	// Preparation: full-width and NBSP map per OpaqueString.
	a, _ := DeriveKeys(SHA256, "p\u00A0w", []byte("s"), 1)
	b, _ := DeriveKeys(SHA256, "p w", []byte("s"), 1)
	if !bytes.Equal(a.StoredKey, b.StoredKey) {
		t.Error("password not prepared")
	}
}

func TestSaltedPasswordCache(t *testing.T) {
	st := store(t)
	cache := NewSaltedPasswordCache(2)
	for i := 0; i < 3; i++ {
		s, _ := NewServer("SCRAM-SHA-256", Options{Lookup: st.lookup})
		c, _ := NewClient("SCRAM-SHA-256", "juliet", "r0m30!", ClientOptions{Cache: cache})
		if err := exchange(t, c, s); err != nil {
			t.Fatal(err)
		}
	}
	if cache.Len() != 1 {
		t.Fatalf("len %d", cache.Len())
	}
	// A wrong password must not hit the right one's entry.
	s, _ := NewServer("SCRAM-SHA-256", Options{Lookup: st.lookup})
	c, _ := NewClient("SCRAM-SHA-256", "juliet", "wrong", ClientOptions{Cache: cache})
	if err := exchange(t, c, s); !errors.Is(err, ErrNotAuthorized) {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		cache.put(cacheKey("x", []byte{byte(i)}, 1, "p"), []byte{1})
	}
	if cache.Len() != 2 {
		t.Fatalf("bound not kept: %d", cache.Len())
	}
	k1 := cacheKey(SHA256, []byte("ab"), 1, "c")
	k2 := cacheKey(SHA256, []byte("a"), 1, "bc")
	if k1 == k2 {
		t.Fatal("ambiguous cache key")
	}
}

func TestConcurrentCache(t *testing.T) {
	st := store(t)
	cache := NewSaltedPasswordCache(4)
	errc := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			mech := scramMechs[g%len(scramMechs)]
			for i := 0; i < 4; i++ {
				s, _ := NewServer(mech, Options{Lookup: st.lookup, Bindings: fakeBindings})
				c, _ := NewClient(mech, "juliet", "r0m30!", ClientOptions{Bindings: fakeBindings, Cache: cache})
				if err := exchange(t, c, s); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if n := cache.Len(); n != 3 { // one entry per hash
		t.Fatalf("len %d", n)
	}
}
