// Package certs serves the TLS certificate of the local domains: loaded from
// the configured PEM files, or generated self-signed in the data directory
// when none is configured, and reloaded on SIGHUP without dropping streams.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// Store holds the current certificate.
type Store struct {
	certFile, keyFile string
	hosts             []string
	cur               atomic.Pointer[tls.Certificate]
}

// New loads certFile/keyFile, or, when both are empty, a self-signed
// certificate for hosts kept in dataDir (generated on first use and renewed
// when it is about to expire).
func New(certFile, keyFile, dataDir string, hosts []string) (*Store, error) {
	s := &Store{certFile: certFile, keyFile: keyFile, hosts: hosts}
	if certFile == "" && keyFile == "" {
		s.certFile = filepath.Join(dataDir, "selfsigned.crt")
		s.keyFile = filepath.Join(dataDir, "selfsigned.key")
		if err := s.ensureSelfSigned(); err != nil {
			return nil, err
		}
	}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload reads the certificate files again.
func (s *Store) Reload() error {
	c, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return fmt.Errorf("certs: loading %s and %s: %w", s.certFile, s.keyFile, err)
	}
	if c.Leaf == nil && len(c.Certificate) > 0 {
		c.Leaf, _ = x509.ParseCertificate(c.Certificate[0])
	}
	s.cur.Store(&c)
	return nil
}

// Leaf returns the certificate currently served.
func (s *Store) Leaf() *x509.Certificate {
	if c := s.cur.Load(); c != nil {
		return c.Leaf
	}
	return nil
}

// TLSConfig returns a server configuration that always serves the current
// certificate; minVersion is tls.VersionTLS12 or tls.VersionTLS13.
func (s *Store) TLSConfig(minVersion uint16, nextProtos ...string) *tls.Config {
	if minVersion < tls.VersionTLS12 {
		minVersion = tls.VersionTLS12
	}
	return &tls.Config{
		MinVersion: minVersion,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.cur.Load(), nil
		},
		NextProtos: nextProtos,
	}
}

func (s *Store) ensureSelfSigned() error {
	if c, err := tls.LoadX509KeyPair(s.certFile, s.keyFile); err == nil {
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err == nil && time.Until(leaf.NotAfter) > 30*24*time.Hour && coversAll(leaf, s.hosts) {
			return nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("certs: %s: %w", s.certFile, err)
	}
	return GenerateSelfSigned(s.certFile, s.keyFile, s.hosts)
}

func coversAll(c *x509.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if c.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// GenerateSelfSigned writes a new ECDSA P-256 certificate valid for one year
// for hosts and their subdomains (upload.DOMAIN, conference.DOMAIN …).
func GenerateSelfSigned(certFile, keyFile string, hosts []string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	var names []string
	for _, h := range hosts {
		names = append(names, h, "*."+h)
	}
	cn := "xmppd"
	if len(hosts) > 0 {
		cn = hosts[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"xmppd self-signed"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              names,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}
