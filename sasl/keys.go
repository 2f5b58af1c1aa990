package sasl

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/text/secure/precis"

	"github.com/xmppd/xmppd/storage"
)

// Hash names, as used for the keys of storage.Account.Keys and the hash
// argument of Options.Lookup.
const (
	SHA1   = "SHA-1"
	SHA256 = "SHA-256"
	SHA512 = "SHA-512"
)

// DefaultIterations is the PBKDF2 iteration count used when none is given
// (the RFC 7677 minimum recommendation).
const DefaultIterations = 4096

// SaltSize is the size in bytes of the salts NewKeys generates.
const SaltSize = 16

type hashSpec struct {
	name string
	new  func() hash.Hash
	size int
}

var (
	hSHA1   = &hashSpec{SHA1, sha1.New, sha1.Size}
	hSHA256 = &hashSpec{SHA256, sha256.New, sha256.Size}
	hSHA512 = &hashSpec{SHA512, sha512.New, sha512.Size}
)

func hashByName(name string) *hashSpec {
	switch name {
	case SHA1:
		return hSHA1
	case SHA256:
		return hSHA256
	case SHA512:
		return hSHA512
	}
	return nil
}

func (h *hashSpec) hmac(key []byte, parts ...string) []byte {
	m := hmac.New(h.new, key)
	for _, p := range parts {
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

func (h *hashSpec) sum(b []byte) []byte {
	d := h.new()
	d.Write(b)
	return d.Sum(nil)
}

// saltedPassword is Hi(Normalize(password), salt, i) of RFC 5802 §2.2, with
// the password already prepared.
func (h *hashSpec) saltedPassword(prepared string, salt []byte, iterations int) ([]byte, error) {
	return pbkdf2.Key(h.new, prepared, salt, iterations, h.size)
}

// keysFromSalted computes StoredKey and ServerKey from a salted password.
func (h *hashSpec) keysFromSalted(sp []byte) (storedKey, serverKey []byte) {
	clientKey := h.hmac(sp, "Client Key")
	return h.sum(clientKey), h.hmac(sp, "Server Key")
}

// preparePassword applies the PRECIS OpaqueString profile (RFC 8265 §4.2).
func preparePassword(password string) (string, error) {
	p, err := precis.OpaqueString.String(password)
	if err != nil {
		return "", fmt.Errorf("sasl: password not allowed: %w", err)
	}
	return p, nil
}

// prepareUsername applies the PRECIS UsernameCaseMapped profile (RFC 8265 §3.3).
func prepareUsername(username string) (string, error) {
	return precis.UsernameCaseMapped.String(username)
}

// DeriveKeys computes the SCRAM keys to store for one hash ("SHA-1",
// "SHA-256" or "SHA-512"). The password is prepared with the PRECIS
// OpaqueString profile first. The salt is copied into the result.
func DeriveKeys(hashName string, password string, salt []byte, iterations int) (storage.SCRAMKeys, error) {
	h := hashByName(hashName)
	if h == nil {
		return storage.SCRAMKeys{}, fmt.Errorf("sasl: unknown hash %q", hashName)
	}
	if iterations < 1 {
		return storage.SCRAMKeys{}, errors.New("sasl: iteration count must be positive")
	}
	if len(salt) == 0 {
		return storage.SCRAMKeys{}, errors.New("sasl: empty salt")
	}
	prepared, err := preparePassword(password)
	if err != nil {
		return storage.SCRAMKeys{}, err
	}
	sp, err := h.saltedPassword(prepared, salt, iterations)
	if err != nil {
		return storage.SCRAMKeys{}, err
	}
	stored, server := h.keysFromSalted(sp)
	return storage.SCRAMKeys{
		Salt:       append([]byte(nil), salt...),
		Iterations: iterations,
		StoredKey:  stored,
		ServerKey:  server,
	}, nil
}

// NewKeys derives the keys for SHA-1, SHA-256 and SHA-512, each with its own
// random salt of SaltSize bytes. iterations < 1 means DefaultIterations.
func NewKeys(password string, iterations int) (map[string]storage.SCRAMKeys, error) {
	if iterations < 1 {
		iterations = DefaultIterations
	}
	out := make(map[string]storage.SCRAMKeys, 3)
	for _, name := range []string{SHA1, SHA256, SHA512} {
		salt := make([]byte, SaltSize)
		if _, err := rand.Read(salt); err != nil {
			return nil, err
		}
		k, err := DeriveKeys(name, password, salt, iterations)
		if err != nil {
			return nil, err
		}
		out[name] = k
	}
	return out, nil
}

// validKeys reports whether stored keys are usable with h.
func validKeys(h *hashSpec, k storage.SCRAMKeys) bool {
	return len(k.Salt) > 0 && k.Iterations > 0 &&
		len(k.StoredKey) == h.size && len(k.ServerKey) == h.size
}
