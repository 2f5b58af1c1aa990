package upload

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"os"
	"strconv"
	"strings"
	"time"
)

// The PUT URL of a slot is authorized by a token the slot carries as
// <header name='Authorization'>Bearer TOKEN</header>: the PUT URL's expiry
// (8 bytes, Unix seconds, big-endian) followed by HMAC-SHA256, keyed with a
// secret kept in the data directory, over the slot id, owner, file name,
// size, content type and that expiry. Only the server can make one; a token
// for one slot is worthless for another, and its expiry cannot be moved.

const tokenPrefix = "Bearer "

// loadSecret reads the 32-byte secret at path, creating it on first use.
func loadSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(b) == 32 {
		return b, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	b = make([]byte, 32)
	_, _ = rand.Read(b)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, err
	}
	return b, nil
}

// mac computes the HMAC of a slot with expiry exp.
func mac(secret []byte, s *slot, exp int64) []byte {
	h := hmac.New(sha256.New, secret)
	var n [binary.MaxVarintLen64]byte
	for _, f := range []string{"xmppd upload put v1", s.ID, s.Owner, s.Name, strconv.FormatInt(s.Size, 10), s.Type, strconv.FormatInt(exp, 10)} {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(f)))])
		h.Write([]byte(f))
	}
	return h.Sum(nil)
}

// token returns the Authorization header value for the slot's PUT URL.
func token(secret []byte, s *slot) string {
	exp := s.PutExpires.Unix()
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+sha256.Size), uint64(exp))
	b = append(b, mac(secret, s, exp)...)
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

var (
	errForged       = errors.New("upload: bad authorization")
	errTokenExpired = errors.New("upload: PUT URL expired")
)

// checkToken verifies an Authorization header value against the slot.
func checkToken(secret []byte, s *slot, header string, now time.Time) error {
	if len(header) < len(tokenPrefix) || !strings.EqualFold(header[:len(tokenPrefix)], tokenPrefix) {
		return errForged
	}
	b, err := base64.RawURLEncoding.DecodeString(header[len(tokenPrefix):])
	if err != nil || len(b) != 8+sha256.Size {
		return errForged
	}
	exp := int64(binary.BigEndian.Uint64(b[:8]))
	if !hmac.Equal(b[8:], mac(secret, s, exp)) || exp != s.PutExpires.Unix() {
		return errForged
	}
	if now.Unix() >= exp {
		return errTokenExpired
	}
	return nil
}
