package sasl

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
)

// Channel-binding type names (RFC 5056 registry), as used in the GS2 header
// and in XEP-0440 <sasl-channel-binding/>.
const (
	BindingTLSExporter       = "tls-exporter"
	BindingTLSServerEndPoint = "tls-server-end-point"
)

// exporterLabel is the RFC 9266 exporter label.
const exporterLabel = "EXPORTER-Channel-Binding"

// ChannelBindings holds the channel-binding data of one TLS connection.
// A nil field means the type is not available.
type ChannelBindings struct {
	// TLSExporter is the RFC 9266 tls-exporter value: 32 bytes of keying
	// material exported with label "EXPORTER-Channel-Binding" and an empty
	// context. Only set for TLS 1.3.
	TLSExporter []byte
	// TLSServerEndPoint is the RFC 5929 tls-server-end-point value: the hash
	// of the server's DER certificate.
	TLSServerEndPoint []byte
}

// BindingsFromTLS computes the channel bindings of a completed TLS
// handshake. cert is the server's leaf certificate: on the server the one it
// presented, on the client cs.PeerCertificates[0]. A nil cert, or one whose
// signature algorithm has no single hash function (Ed25519), leaves
// TLSServerEndPoint nil. TLSExporter is only set for TLS 1.3 (RFC 9266 §3).
func BindingsFromTLS(cs tls.ConnectionState, cert *x509.Certificate) ChannelBindings {
	var cb ChannelBindings
	if !cs.HandshakeComplete {
		return cb
	}
	if cs.Version == tls.VersionTLS13 {
		if ekm, err := cs.ExportKeyingMaterial(exporterLabel, nil, 32); err == nil {
			cb.TLSExporter = ekm
		}
	}
	if cert != nil {
		cb.TLSServerEndPoint = serverEndPoint(cert)
	}
	return cb
}

// serverEndPoint hashes the certificate per RFC 5929 §4.1: with SHA-256 if
// its signature uses MD5 or SHA-1, else with the signature's hash; nil when
// the signature algorithm has no single hash function.
func serverEndPoint(cert *x509.Certificate) []byte {
	switch cert.SignatureAlgorithm {
	case x509.MD2WithRSA, x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1,
		x509.SHA256WithRSA, x509.SHA256WithRSAPSS, x509.DSAWithSHA256, x509.ECDSAWithSHA256:
		s := sha256.Sum256(cert.Raw)
		return s[:]
	case x509.SHA384WithRSA, x509.SHA384WithRSAPSS, x509.ECDSAWithSHA384:
		s := sha512.Sum384(cert.Raw)
		return s[:]
	case x509.SHA512WithRSA, x509.SHA512WithRSAPSS, x509.ECDSAWithSHA512:
		s := sha512.Sum512(cert.Raw)
		return s[:]
	}
	return nil
}

// data returns the binding data for a type name, or nil.
func (cb ChannelBindings) data(typ string) []byte {
	switch typ {
	case BindingTLSExporter:
		return cb.TLSExporter
	case BindingTLSServerEndPoint:
		return cb.TLSServerEndPoint
	}
	return nil
}

// Types returns the channel-binding types available, in order of preference,
// for XEP-0440 advertisement: tls-exporter (TLS 1.3 only), then
// tls-server-end-point. Empty without TLS.
func (cb ChannelBindings) Types() []string {
	switch {
	case cb.TLSExporter != nil && cb.TLSServerEndPoint != nil:
		return typesBoth
	case cb.TLSExporter != nil:
		return typesExporter
	case cb.TLSServerEndPoint != nil:
		return typesEndPoint
	}
	return nil
}

var (
	typesBoth     = []string{BindingTLSExporter, BindingTLSServerEndPoint}
	typesExporter = typesBoth[:1:1]
	typesEndPoint = typesBoth[1:2:2]
)

// Available reports whether any channel-binding type is available, that
// is whether -PLUS mechanisms can be offered.
func (cb ChannelBindings) Available() bool {
	return cb.TLSExporter != nil || cb.TLSServerEndPoint != nil
}

var allMechanisms = [...]string{
	"SCRAM-SHA-512-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS",
	"SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1",
	"PLAIN",
}

// Mechanisms returns the mechanisms to advertise, strongest first. -PLUS
// mechanisms are listed only when tls and plus are both true; PLAIN only
// over TLS unless allowPlainWithoutTLS. The result is shared: do not modify.
// It does not allocate.
func Mechanisms(tls bool, plus bool, allowPlainWithoutTLS bool) []string {
	lo, hi := 3, 6
	if tls && plus {
		lo = 0
	}
	if tls || allowPlainWithoutTLS {
		hi = 7
	}
	return allMechanisms[lo:hi:hi]
}
