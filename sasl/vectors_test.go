package sasl

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/xmppd/xmppd/storage"
)

var vectors = []struct {
	name, mech, hash         string
	salt                     string
	cnonce, snonce           string
	clientFirst, serverFirst string
	clientFinal, serverFinal string
}{
	{
		name: "RFC 5802 §5", mech: "SCRAM-SHA-1", hash: SHA1,
		salt:   "QSXCR+Q6sek8bf92",
		cnonce: "fyko+d2lbbFgONRv9qkxdawL", snonce: "3rfcNHYJY1ZVvWVs7j",
		clientFirst: "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
		serverFirst: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
		clientFinal: "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
		serverFinal: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
	},
	{
		name: "RFC 7677 §3", mech: "SCRAM-SHA-256", hash: SHA256,
		salt:   "W22ZaJ0SNY7soEsUEjb6gQ==",
		cnonce: "rOprNGfwEbeRWgbNEkqO", snonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
		clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
		serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
		clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
	},
}

func TestVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			salt, _ := base64.StdEncoding.DecodeString(v.salt)
			keys, err := DeriveKeys(v.hash, "pencil", salt, 4096)
			if err != nil {
				t.Fatal(err)
			}
			st := &memStore{users: map[string]map[string]storage.SCRAMKeys{"user": {v.hash: keys}}}

			// Server side.
			s, err := NewServer(v.mech, Options{Lookup: st.lookup, Nonce: fixedNonce(v.snonce)})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			ch, done, err := s.Next(ctx, []byte(v.clientFirst))
			if err != nil || done || string(ch) != v.serverFirst {
				t.Fatalf("server-first = %q, %v, %v", ch, done, err)
			}
			ch, done, err = s.Next(ctx, []byte(v.clientFinal))
			if err != nil || !done || string(ch) != v.serverFinal {
				t.Fatalf("server-final = %q, %v, %v", ch, done, err)
			}
			if s.Username() != "user" || s.Authzid() != "" {
				t.Fatalf("identity %q %q", s.Username(), s.Authzid())
			}

			// Client side.
			c, err := NewClient(v.mech, "user", "pencil", ClientOptions{Nonce: fixedNonce(v.cnonce)})
			if err != nil {
				t.Fatal(err)
			}
			r, done, err := c.Step(nil)
			if err != nil || done || string(r) != v.clientFirst {
				t.Fatalf("client-first = %q, %v, %v", r, done, err)
			}
			r, done, err = c.Step([]byte(v.serverFirst))
			if err != nil || done || string(r) != v.clientFinal {
				t.Fatalf("client-final = %q, %v, %v", r, done, err)
			}
			r, done, err = c.Step([]byte(v.serverFinal))
			if err != nil || !done || r != nil {
				t.Fatalf("after server-final: %q, %v, %v", r, done, err)
			}
		})
	}
}

func TestClientRejectsBadServerSignature(t *testing.T) {
	v := vectors[1]
	c, _ := NewClient(v.mech, "user", "pencil", ClientOptions{Nonce: fixedNonce(v.cnonce)})
	c.Step(nil)
	c.Step([]byte(v.serverFirst))
	bad := "v=" + base64.StdEncoding.EncodeToString(make([]byte, 32))
	if _, done, err := c.Step([]byte(bad)); err != ErrServerSignature || done {
		t.Fatalf("got %v %v", done, err)
	}
	// A server nonce that does not extend ours.
	c, _ = NewClient(v.mech, "user", "pencil", ClientOptions{Nonce: fixedNonce(v.cnonce)})
	c.Step(nil)
	if _, _, err := c.Step([]byte("r=other,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")); err == nil {
		t.Fatal("foreign nonce accepted")
	}
	// Too few iterations.
	c, _ = NewClient(v.mech, "user", "pencil", ClientOptions{Nonce: fixedNonce(v.cnonce)})
	c.Step(nil)
	if _, _, err := c.Step([]byte("r=" + v.cnonce + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1")); err == nil {
		t.Fatal("i=1 accepted")
	}
	// Server error.
	c, _ = NewClient(v.mech, "user", "pencil", ClientOptions{Nonce: fixedNonce(v.cnonce)})
	c.Step(nil)
	c.Step([]byte(v.serverFirst))
	if _, _, err := c.Step([]byte("e=invalid-proof")); err == nil {
		t.Fatal("e= accepted")
	} else if se, ok := err.(*ServerError); !ok || se.Value != "invalid-proof" {
		t.Fatalf("got %v", err)
	}
}
