package push

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
)

// JSON Web Tokens (RFC 7519) in compact form, signed with ES256 (APNs
// provider tokens) or RS256 (the OAuth 2.0 JWT-bearer grant, RFC 7523).

var b64 = base64.RawURLEncoding

func signingInput(header, claims any) ([]byte, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return nil, err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 2+b64.EncodedLen(len(h))+b64.EncodedLen(len(c))+344)
	out = b64.AppendEncode(out, h)
	out = append(out, '.')
	return b64.AppendEncode(out, c), nil
}

// signES256 makes a JWT signed with ECDSA P-256 and SHA-256; the signature
// is r‖s, 32 bytes each (RFC 7518 §3.4), not ASN.1.
func signES256(key *ecdsa.PrivateKey, header, claims any) (string, error) {
	in, err := signingInput(header, claims)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(in)
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		return "", err
	}
	var sig [64]byte
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	in = append(in, '.')
	return string(b64.AppendEncode(in, sig[:])), nil
}

// signRS256 makes a JWT signed with RSASSA-PKCS1-v1_5 and SHA-256.
func signRS256(key *rsa.PrivateKey, header, claims any) (string, error) {
	in, err := signingInput(header, claims)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(in)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	in = append(in, '.')
	return string(b64.AppendEncode(in, sig)), nil
}

// parsePrivateKey reads the first PEM private key (PKCS#8, or the older
// PKCS#1 / SEC 1 forms).
func parsePrivateKey(data []byte) (crypto.PrivateKey, error) {
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			return nil, errors.New("no PEM private key found")
		}
		switch blk.Type {
		case "PRIVATE KEY":
			return x509.ParsePKCS8PrivateKey(blk.Bytes)
		case "RSA PRIVATE KEY":
			return x509.ParsePKCS1PrivateKey(blk.Bytes)
		case "EC PRIVATE KEY":
			return x509.ParseECPrivateKey(blk.Bytes)
		}
	}
}

func parseP256Key(data []byte) (*ecdsa.PrivateKey, error) {
	k, err := parsePrivateKey(data)
	if err != nil {
		return nil, err
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("the key is not an EC P-256 key (APNs signs with ES256)")
	}
	return ec, nil
}

func parseRSAKey(data []byte) (*rsa.PrivateKey, error) {
	k, err := parsePrivateKey(data)
	if err != nil {
		return nil, err
	}
	r, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("the key is not an RSA key (OAuth JWT-bearer signs with RS256)")
	}
	return r, nil
}
