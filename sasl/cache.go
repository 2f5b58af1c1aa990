package sasl

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
)

// SaltedPasswordCache remembers SCRAM salted passwords, keyed by hash, salt,
// iteration count and password, so that a client logging in again skips
// PBKDF2 the way real clients do. Keys are SHA-256 digests: the cache holds
// no password. Safe for concurrent use; the zero value is not usable.
type SaltedPasswordCache struct {
	mu  sync.Mutex
	m   map[[32]byte][]byte
	max int
}

// NewSaltedPasswordCache returns a cache holding at most max entries
// (max < 1 means 1024). When full, an arbitrary entry is evicted.
func NewSaltedPasswordCache(max int) *SaltedPasswordCache {
	if max < 1 {
		max = 1024
	}
	return &SaltedPasswordCache{m: make(map[[32]byte][]byte), max: max}
}

func cacheKey(hashName string, salt []byte, iterations int, prepared string) [32]byte {
	d := sha256.New()
	var n [8]byte
	for _, b := range [][]byte{[]byte(hashName), salt, []byte(prepared)} {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		d.Write(n[:])
		d.Write(b)
	}
	binary.BigEndian.PutUint64(n[:], uint64(iterations))
	d.Write(n[:])
	var k [32]byte
	d.Sum(k[:0])
	return k
}

func (c *SaltedPasswordCache) get(k [32]byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

func (c *SaltedPasswordCache) put(k [32]byte, sp []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[k] = sp
}

// Len returns the number of cached entries.
func (c *SaltedPasswordCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
