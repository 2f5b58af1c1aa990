package sasl

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/xmppd/xmppd/storage"
)

// Syntax helpers shared by the SCRAM server and client (RFC 5802 §7).

// validNonce: 1*printable, printable = %x21-2B / %x2D-7E.
func validNonce(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

// validValue: 1*value-char, value-char = UTF8-char except NUL and ",".
func validValue(s string) bool {
	return s != "" && utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 && strings.IndexByte(s, ',') < 0
}

// validExtension: attr-val = ALPHA "=" value, with the reserved "m" refused.
func validExtension(s string) bool {
	if len(s) < 3 || s[1] != '=' || s[0] == 'm' {
		return false
	}
	c := s[0]
	return (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') && validValue(s[2:])
}

// decodeSaslname undoes the "=2C" / "=3D" escapes of a saslname.
func decodeSaslname(s string) (string, bool) {
	if !validValue(s) {
		return "", false
	}
	if strings.IndexByte(s, '=') < 0 {
		return s, true
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", false
		}
		i += 2
	}
	return b.String(), true
}

// encodeSaslname escapes ',' and '='.
func encodeSaslname(s string) string {
	if !strings.ContainsAny(s, ",=") {
		return s
	}
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

var b64 = base64.StdEncoding.Strict()

// decodeB64 decodes canonical padded base64, refusing the line breaks the
// standard decoder would skip.
func decodeB64(s string) ([]byte, bool) {
	if s == "" || strings.ContainsAny(s, "\r\n") {
		return nil, false
	}
	b, err := b64.DecodeString(s)
	return b, err == nil
}

// validCBName: cb-name = 1*(ALPHA / DIGIT / "." / "-").
func validCBName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

const (
	stStart = iota
	stAskedInitial
	stWaitFinal
	stDone
	stFailed
)

type scramServer struct {
	mech string
	h    *hashSpec
	plus bool
	opts Options

	state   int
	err     error
	user    string
	authzid string
	gs2     string // gs2-header, as sent
	cbData  []byte
	bare    string // client-first-message-bare
	first   string // server-first-message
	nonce   string // full nonce
	keys    storage.SCRAMKeys
	unknown bool
}

func (s *scramServer) Username() string  { return s.user }
func (s *scramServer) Authzid() string   { return s.authzid }
func (s *scramServer) Mechanism() string { return s.mech }

func (s *scramServer) Next(ctx context.Context, resp []byte) ([]byte, bool, error) {
	switch s.state {
	case stStart, stAskedInitial:
		if len(resp) == 0 && s.state == stStart {
			s.state = stAskedInitial
			return []byte{}, false, nil
		}
		ch, err := s.clientFirst(ctx, resp)
		if err != nil {
			return s.fail(err)
		}
		s.state = stWaitFinal
		return ch, false, nil
	case stWaitFinal:
		ch, err := s.clientFinal(resp)
		if err != nil {
			return s.fail(err)
		}
		s.state = stDone
		return ch, true, nil
	case stFailed:
		return nil, false, s.err
	default:
		return nil, false, errMalformed("exchange already complete")
	}
}

func (s *scramServer) fail(err error) ([]byte, bool, error) {
	s.state, s.err = stFailed, err
	return nil, false, err
}

func (s *scramServer) clientFirst(ctx context.Context, resp []byte) ([]byte, error) {
	if len(resp) > maxMessage || !utf8.Valid(resp) {
		return nil, errMalformed("invalid-encoding")
	}
	msg := string(resp)
	parts := strings.Split(msg, ",")
	if len(parts) < 4 {
		return nil, errMalformed("invalid-encoding")
	}

	// GS2 header (RFC 5802 §7, RFC 5801 §4).
	flag := parts[0]
	switch {
	case flag == "n" || flag == "y":
		if s.plus {
			return nil, errMalformed("channel-binding-required")
		}
		if flag == "y" && s.opts.PlusAdvertised {
			return nil, errNotAuth("server-does-support-channel-binding")
		}
	case strings.HasPrefix(flag, "p="):
		name := flag[2:]
		if !validCBName(name) {
			return nil, errMalformed("invalid-encoding")
		}
		if !s.plus {
			return nil, errMalformed("channel-binding-not-supported")
		}
		s.cbData = s.opts.Bindings.data(name)
		if s.cbData == nil {
			return nil, &Error{Err: ErrBindingType, Reason: "unsupported-channel-binding-type"}
		}
	default:
		return nil, errMalformed("invalid-encoding")
	}
	if a := parts[1]; a != "" {
		v, ok := strings.CutPrefix(a, "a=")
		if !ok {
			return nil, errMalformed("invalid-encoding")
		}
		az, ok := decodeSaslname(v)
		if !ok {
			return nil, errMalformed("invalid-encoding")
		}
		s.authzid = az
	}
	s.gs2 = parts[0] + "," + parts[1] + ","
	s.bare = msg[len(s.gs2):]

	// client-first-message-bare.
	if strings.HasPrefix(parts[2], "m=") {
		return nil, errMalformed("extensions-not-supported")
	}
	v, ok := strings.CutPrefix(parts[2], "n=")
	if !ok {
		return nil, errMalformed("invalid-encoding")
	}
	raw, ok := decodeSaslname(v)
	if !ok {
		return nil, errMalformed("invalid-encoding")
	}
	cnonce, ok := strings.CutPrefix(parts[3], "r=")
	if !ok || !validNonce(cnonce) {
		return nil, errMalformed("invalid-encoding")
	}
	for _, e := range parts[4:] {
		if !validExtension(e) {
			return nil, errMalformed("extensions-not-supported")
		}
	}
	user, err := prepareUsername(raw)
	if err != nil {
		return nil, &Error{Err: ErrNotAuthorized, Reason: "invalid-username-encoding", Cause: err}
	}
	s.user = user

	keys, found, err := lookup(ctx, &s.opts, s.h, user)
	if err != nil {
		return nil, err
	}
	if !found {
		keys, s.unknown = fakeKeys(&s.opts, s.h, user), true
	}
	s.keys = keys

	snonce, err := newNonce(s.opts.Nonce)
	if err != nil {
		return nil, &Error{Err: ErrTemporary, Reason: "nonce", Cause: err}
	}
	s.nonce = cnonce + snonce
	var b strings.Builder
	b.Grow(len(s.nonce) + base64.StdEncoding.EncodedLen(len(keys.Salt)) + 16)
	b.WriteString("r=")
	b.WriteString(s.nonce)
	b.WriteString(",s=")
	b.WriteString(base64.StdEncoding.EncodeToString(keys.Salt))
	b.WriteString(",i=")
	b.WriteString(strconv.Itoa(keys.Iterations))
	s.first = b.String()
	return []byte(s.first), nil
}

func (s *scramServer) clientFinal(resp []byte) ([]byte, error) {
	if len(resp) > maxMessage || !utf8.Valid(resp) {
		return nil, errMalformed("invalid-encoding")
	}
	msg := string(resp)
	parts := strings.Split(msg, ",")
	n := len(parts)
	if n < 3 {
		return nil, errMalformed("invalid-encoding")
	}
	cb, ok := strings.CutPrefix(parts[0], "c=")
	if !ok {
		return nil, errMalformed("invalid-encoding")
	}
	cbGot, ok := decodeB64(cb)
	if !ok {
		return nil, errMalformed("invalid-encoding")
	}
	nonce, ok := strings.CutPrefix(parts[1], "r=")
	if !ok || !validNonce(nonce) {
		return nil, errMalformed("invalid-encoding")
	}
	for _, e := range parts[2 : n-1] {
		if !validExtension(e) {
			return nil, errMalformed("extensions-not-supported")
		}
	}
	p, ok := strings.CutPrefix(parts[n-1], "p=")
	if !ok {
		return nil, errMalformed("invalid-encoding")
	}
	proof, ok := decodeB64(p)
	if !ok || len(proof) != s.h.size {
		return nil, errMalformed("invalid-encoding")
	}

	// c= must be exactly gs2-header + cb-data.
	want := make([]byte, 0, len(s.gs2)+len(s.cbData))
	want = append(append(want, s.gs2...), s.cbData...)
	if !hmac.Equal(cbGot, want) {
		return nil, errNotAuth("channel-bindings-dont-match")
	}
	if nonce != s.nonce {
		return nil, errNotAuth("nonce-mismatch")
	}

	withoutProof := msg[:len(msg)-len(parts[n-1])-1]
	authMsg := s.bare + "," + s.first + "," + withoutProof
	sig := s.h.hmac(s.keys.StoredKey, authMsg)
	for i := range sig {
		sig[i] ^= proof[i]
	}
	ok = hmac.Equal(s.h.sum(sig), s.keys.StoredKey)
	if !ok || s.unknown {
		return nil, errNotAuth("invalid-proof")
	}
	if err := checkAuthzid(&s.opts, s.user, s.authzid); err != nil {
		return nil, err
	}
	return []byte("v=" + base64.StdEncoding.EncodeToString(s.h.hmac(s.keys.ServerKey, authMsg))), nil
}
