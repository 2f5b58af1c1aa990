package sasl

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestMalformedClientFirst(t *testing.T) {
	st := store(t)
	cases := []struct {
		mech, msg string
		want      error
	}{
		{"SCRAM-SHA-256", "n,,n=juliet", ErrMalformed},
		{"SCRAM-SHA-256", "n,n=juliet,r=abc", ErrMalformed},
		{"SCRAM-SHA-256", "x,,n=juliet,r=abc", ErrMalformed},
		{"SCRAM-SHA-256", "N,,n=juliet,r=abc", ErrMalformed},
		{"SCRAM-SHA-256", "n,b=x,n=juliet,r=abc", ErrMalformed},
		{"SCRAM-SHA-256", "n,a=,n=juliet,r=abc", ErrMalformed},
		{"SCRAM-SHA-256", "n,a=x=41,n=juliet,r=abc", ErrMalformed},
		{"SCRAM-SHA-256", "n,,m=x,n=juliet,r=abc", ErrMalformed},
		{"SCRAM-SHA-256", "n,,r=abc,n=juliet", ErrMalformed},
		{"SCRAM-SHA-256", "n,,n=,r=abc", ErrMalformed},
		{"SCRAM-SHA-256", "n,,n=jul=2cet,r=abc", ErrMalformed},
		{"SCRAM-SHA-256", "n,,n=jul=ie,r=abc", ErrMalformed},
		{"SCRAM-SHA-256", "n,,n=juliet=,r=abc", ErrMalformed},
		{"SCRAM-SHA-256", "n,,n=juliet,r=", ErrMalformed},
		{"SCRAM-SHA-256", "n,,n=juliet,r=a b", ErrMalformed},
		{"SCRAM-SHA-256", "n,,n=juliet,r=ab\x7f", ErrMalformed},
		{"SCRAM-SHA-256", "n,,n=juliet,r=abc,m=ext", ErrMalformed},
		{"SCRAM-SHA-256", "n,,n=juliet,r=abc,", ErrMalformed},
		{"SCRAM-SHA-256", "n,,n=juliet,r=abc,xx=1", ErrMalformed},
		{"SCRAM-SHA-256", "n,,n=juliet,r=abc,1=1", ErrMalformed},
		{"SCRAM-SHA-256", "n,,n=jul\x00iet,r=abc", ErrMalformed},
		{"SCRAM-SHA-256", "n,,n=jul\xffiet,r=abc", ErrMalformed},
		{"SCRAM-SHA-256", "p=tls-exporter,,n=juliet,r=abc", ErrMalformed}, // p with non-PLUS
		{"SCRAM-SHA-256", "p=,,n=juliet,r=abc", ErrMalformed},
		{"SCRAM-SHA-256", "p=tls_exporter,,n=juliet,r=abc", ErrMalformed},
		{"SCRAM-SHA-256-PLUS", "n,,n=juliet,r=abc", ErrMalformed},
		{"SCRAM-SHA-256-PLUS", "y,,n=juliet,r=abc", ErrMalformed},
		{"SCRAM-SHA-256-PLUS", "p=tls-unique,,n=juliet,r=abc", ErrBindingType},
		{"SCRAM-SHA-256", "n,,n=jul iet,r=abc", ErrNotAuthorized}, // fails PRECIS
		{"SCRAM-SHA-256", "n,,n=" + strings.Repeat("a", maxMessage), ErrMalformed},
		{"PLAIN", "juliet\x00r0m30!", ErrMalformed},
		{"PLAIN", "\x00juliet\x00r0m30!\x00", ErrMalformed},
		{"PLAIN", "\x00\x00r0m30!", ErrMalformed},
		{"PLAIN", "\x00juliet\x00", ErrMalformed},
		{"PLAIN", "\x00juliet\x00r0m30\xff", ErrMalformed},
		{"PLAIN", "\x00juliet\x00" + strings.Repeat("x", 1025), ErrMalformed},
		{"PLAIN", "\x00jul iet\x00r0m30!", ErrNotAuthorized},
	}
	for _, c := range cases {
		s, err := NewServer(c.mech, Options{Lookup: st.lookup, Bindings: fakeBindings})
		if err != nil {
			t.Fatal(err)
		}
		_, done, err := s.Next(context.Background(), []byte(c.msg))
		if done || !errors.Is(err, c.want) {
			t.Errorf("%s %q: done=%v err=%v, want %v", c.mech, c.msg, done, err, c.want)
		}
		// The exchange stays failed.
		if _, _, err2 := s.Next(context.Background(), []byte("n,,n=juliet,r=abc")); err2 != err {
			t.Errorf("%q: not sticky: %v", c.msg, err2)
		}
	}
}

func TestMalformedClientFinal(t *testing.T) {
	st := store(t)
	// A valid exchange with fixed nonces gives the reference client-final.
	mk := func() (Server, string) {
		s, _ := NewServer("SCRAM-SHA-256", Options{Lookup: st.lookup, Nonce: fixedNonce("SN")})
		c, _ := NewClient("SCRAM-SHA-256", "juliet", "r0m30!", ClientOptions{Nonce: fixedNonce("CN")})
		r, _, _ := c.Step(nil)
		ch, _, err := s.Next(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		r, _, _ = c.Step(ch)
		return s, string(r)
	}
	_, good := mk()
	proof := good[strings.LastIndex(good, ",p=")+3:]
	rawProof, _ := base64.StdEncoding.DecodeString(proof)
	short := base64.StdEncoding.EncodeToString(rawProof[:31])
	cases := []struct {
		msg  string
		want error
	}{
		{"c=biws,r=CNSN", ErrMalformed},
		{"c=biws,p=" + proof, ErrMalformed},
		{"r=CNSN,c=biws,p=" + proof, ErrMalformed},
		{"c=biws,r=CNSN,p=" + proof + ",x=1", ErrMalformed},
		{"c=biws,r=CNSN,p=" + short, ErrMalformed},
		{"c=biws,r=CNSN,p=" + proof[:len(proof)-1], ErrMalformed},
		{"c=biws,r=CNSN,p=" + proof[:10] + "\n" + proof[10:], ErrMalformed},
		{"c=biw,r=CNSN,p=" + proof, ErrMalformed},
		{"c=,r=CNSN,p=" + proof, ErrMalformed},
		{"c=biws,r=CNSN,m=1,p=" + proof, ErrMalformed},
		{"c=biws,r=CNSN,=1,p=" + proof, ErrMalformed},
		{"c=biws,r=,p=" + proof, ErrMalformed},
		{"c=eSws,r=CNSN,p=" + proof, ErrNotAuthorized},                                                      // y,, instead of n,,
		{"c=" + base64.StdEncoding.EncodeToString([]byte("n,,x")) + ",r=CNSN,p=" + proof, ErrNotAuthorized}, // extra cb data
		{"c=biws,r=CN,p=" + proof, ErrNotAuthorized},
		{"c=biws,r=CNSNX,p=" + proof, ErrNotAuthorized},
		{"c=biws,r=CNSN,p=" + base64.StdEncoding.EncodeToString(make([]byte, 32)), ErrNotAuthorized},
		{"c=biws,r=CNSN,e=1,p=" + proof, ErrNotAuthorized}, // extension changes AuthMessage
	}
	for _, c := range cases {
		s, _ := mk()
		_, done, err := s.Next(context.Background(), []byte(c.msg))
		if done || !errors.Is(err, c.want) {
			t.Errorf("%q: done=%v err=%v, want %v", c.msg, done, err, c.want)
		}
	}
	s, _ := mk()
	if _, done, err := s.Next(context.Background(), []byte(good)); err != nil || !done {
		t.Fatal(err)
	}
	if _, _, err := s.Next(context.Background(), []byte(good)); !errors.Is(err, ErrMalformed) {
		t.Fatal("replay after success:", err)
	}
}

func TestMalformedServerMessages(t *testing.T) {
	for _, sf := range []string{
		"", "r=CNx", "r=CNx,s=QSXCR+Q6sek8bf92", "m=1,r=CNx,s=QSXCR+Q6sek8bf92,i=4096",
		"r=CN,s=QSXCR+Q6sek8bf92,i=4096", "r=XX,s=QSXCR+Q6sek8bf92,i=4096",
		"r=CNx,s=,i=4096", "r=CNx,s=QSX,i=4096", "r=CNx,s=QSXCR+Q6sek8bf92,i=04096",
		"r=CNx,s=QSXCR+Q6sek8bf92,i=+4096", "r=CNx,s=QSXCR+Q6sek8bf92,i=99999999999999999999",
		"r=CNx,s=QSXCR+Q6sek8bf92,i=4096,", "i=4096,r=CNx,s=QSXCR+Q6sek8bf92",
	} {
		c, _ := NewClient("SCRAM-SHA-1", "user", "pencil", ClientOptions{Nonce: fixedNonce("CN")})
		c.Step(nil)
		if _, _, err := c.Step([]byte(sf)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v", sf, err)
		}
	}
	for _, fin := range []string{"", "x=1", "v=", "v=abc", "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=,"} {
		c, _ := NewClient("SCRAM-SHA-1", "user", "pencil", ClientOptions{Nonce: fixedNonce("fyko+d2lbbFgONRv9qkxdawL")})
		c.Step(nil)
		if _, _, err := c.Step([]byte(vectors[0].serverFirst)); err != nil {
			t.Fatal(err)
		}
		if _, done, err := c.Step([]byte(fin)); err == nil || done {
			t.Errorf("%q accepted", fin)
		}
	}
}
