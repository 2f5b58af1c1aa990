package sasl

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"
)

// selfSigned makes a self-signed certificate for "example.com".
func selfSigned(t testing.TB, key crypto.Signer, alg x509.SignatureAlgorithm) tls.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:       big.NewInt(1),
		Subject:            pkix.Name{CommonName: "example.com"},
		DNSNames:           []string{"example.com"},
		NotBefore:          time.Now().Add(-time.Hour),
		NotAfter:           time.Now().Add(time.Hour),
		SignatureAlgorithm: alg,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// handshake runs a real TLS handshake over net.Pipe and returns the
// bindings seen by each side.
func handshake(t testing.TB, cert tls.Certificate, version uint16) (server, client ChannelBindings) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	srv := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: version, MaxVersion: version})
	cli := tls.Client(b, &tls.Config{RootCAs: pool, ServerName: "example.com", MinVersion: version, MaxVersion: version})
	errc := make(chan error, 1)
	go func() { errc <- srv.Handshake() }()
	if err := cli.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	scs, ccs := srv.ConnectionState(), cli.ConnectionState()
	if scs.Version != version || ccs.Version != version {
		t.Fatalf("negotiated %x", scs.Version)
	}
	return BindingsFromTLS(scs, cert.Leaf), BindingsFromTLS(ccs, ccs.PeerCertificates[0])
}

func TestTLSBindings(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	certs := []struct {
		name string
		cert tls.Certificate
		sum  func([]byte) []byte
	}{
		{"ecdsa-sha256", selfSigned(t, p256, x509.ECDSAWithSHA256), func(b []byte) []byte { s := sha256.Sum256(b); return s[:] }},
		{"ecdsa-sha384", selfSigned(t, p384, x509.ECDSAWithSHA384), func(b []byte) []byte { s := sha512.Sum384(b); return s[:] }},
		{"ed25519", selfSigned(t, edKey, x509.PureEd25519), func([]byte) []byte { return nil }},
	}
	st := store(t)
	for _, c := range certs {
		for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			name := c.name + "/" + tls.VersionName(version)
			t.Run(name, func(t *testing.T) {
				sb, cb := handshake(t, c.cert, version)
				if !bytes.Equal(sb.TLSExporter, cb.TLSExporter) || !bytes.Equal(sb.TLSServerEndPoint, cb.TLSServerEndPoint) {
					t.Fatalf("sides differ: %x / %x", sb, cb)
				}
				if version == tls.VersionTLS13 && len(sb.TLSExporter) != 32 {
					t.Fatalf("exporter %x", sb.TLSExporter)
				}
				if version == tls.VersionTLS12 && sb.TLSExporter != nil {
					t.Fatal("tls-exporter on TLS 1.2")
				}
				if !bytes.Equal(sb.TLSServerEndPoint, c.sum(c.cert.Leaf.Raw)) {
					t.Fatalf("end-point %x", sb.TLSServerEndPoint)
				}
				// Another connection yields another exporter value.
				sb2, _ := handshake(t, c.cert, version)
				if sb.TLSExporter != nil && bytes.Equal(sb.TLSExporter, sb2.TLSExporter) {
					t.Fatal("tls-exporter equal across connections")
				}

				if !sb.Available() {
					return // Ed25519 on TLS 1.2: nothing to bind to
				}
				for _, typ := range sb.Types() {
					for _, mech := range []string{"SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-512-PLUS"} {
						s, err := NewServer(mech, Options{Lookup: st.lookup, Bindings: sb, PlusAdvertised: true})
						if err != nil {
							t.Fatal(err)
						}
						cl, err := NewClient(mech, "juliet", "r0m30!", ClientOptions{Bindings: cb, BindingType: typ})
						if err != nil {
							t.Fatal(err)
						}
						if err := exchange(t, cl, s); err != nil {
							t.Fatalf("%s %s: %v", mech, typ, err)
						}
					}
					// The client's bindings from another connection are refused.
					_, cb2 := handshake(t, c.cert, version)
					if typ == BindingTLSServerEndPoint {
						continue // same certificate, same value: by design
					}
					s, _ := NewServer("SCRAM-SHA-256-PLUS", Options{Lookup: st.lookup, Bindings: sb, PlusAdvertised: true})
					cl, _ := NewClient("SCRAM-SHA-256-PLUS", "juliet", "r0m30!", ClientOptions{Bindings: cb2, BindingType: typ})
					if err := exchange(t, cl, s); !errors.Is(err, ErrNotAuthorized) {
						t.Fatalf("foreign %s accepted: %v", typ, err)
					}
				}
				// tls-exporter never negotiated on TLS 1.2.
				if version == tls.VersionTLS12 {
					if _, err := NewClient("SCRAM-SHA-256-PLUS", "juliet", "r0m30!", ClientOptions{Bindings: cb, BindingType: BindingTLSExporter}); !errors.Is(err, ErrInvalidMechanism) {
						t.Fatal(err)
					}
				}
			})
		}
	}
}

func TestServerEndPointHashChoice(t *testing.T) {
	raw := []byte("certificate bytes")
	s256 := sha256.Sum256(raw)
	s384 := sha512.Sum384(raw)
	s512 := sha512.Sum512(raw)
	cases := []struct {
		alg  x509.SignatureAlgorithm
		want []byte
	}{
		{x509.MD5WithRSA, s256[:]},
		{x509.SHA1WithRSA, s256[:]},
		{x509.ECDSAWithSHA1, s256[:]},
		{x509.SHA256WithRSA, s256[:]},
		{x509.SHA256WithRSAPSS, s256[:]},
		{x509.SHA384WithRSA, s384[:]},
		{x509.ECDSAWithSHA384, s384[:]},
		{x509.SHA512WithRSAPSS, s512[:]},
		{x509.ECDSAWithSHA512, s512[:]},
		{x509.PureEd25519, nil},
		{x509.UnknownSignatureAlgorithm, nil},
	}
	for _, c := range cases {
		got := serverEndPoint(&x509.Certificate{Raw: raw, SignatureAlgorithm: c.alg})
		if !bytes.Equal(got, c.want) {
			t.Errorf("%v: %x", c.alg, got)
		}
	}
	if cb := BindingsFromTLS(tls.ConnectionState{}, nil); cb.Available() {
		t.Error("bindings before handshake")
	}
}
