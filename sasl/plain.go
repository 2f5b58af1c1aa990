package sasl

import (
	"bytes"
	"context"
	"crypto/hmac"
	"unicode/utf8"
)

// plainHashes is the order in which PLAIN looks for stored keys.
var plainHashes = []*hashSpec{hSHA256, hSHA512, hSHA1}

type plainServer struct {
	opts    Options
	state   int
	err     error
	user    string
	authzid string
}

func (s *plainServer) Username() string  { return s.user }
func (s *plainServer) Authzid() string   { return s.authzid }
func (s *plainServer) Mechanism() string { return "PLAIN" }

func (s *plainServer) Next(ctx context.Context, resp []byte) ([]byte, bool, error) {
	switch s.state {
	case stStart, stAskedInitial:
		if len(resp) == 0 && s.state == stStart {
			s.state = stAskedInitial
			return []byte{}, false, nil
		}
		if err := s.verify(ctx, resp); err != nil {
			s.state, s.err = stFailed, err
			return nil, false, err
		}
		s.state = stDone
		return nil, true, nil
	case stFailed:
		return nil, false, s.err
	default:
		return nil, false, errMalformed("exchange already complete")
	}
}

// verify checks message = [authzid] NUL authcid NUL passwd (RFC 4616 §2).
func (s *plainServer) verify(ctx context.Context, msg []byte) error {
	if len(msg) > maxPlain || !utf8.Valid(msg) {
		return errMalformed("invalid-encoding")
	}
	f := bytes.Split(msg, []byte{0})
	if len(f) != 3 || len(f[1]) == 0 || len(f[2]) == 0 || len(f[0]) > 1024 || len(f[1]) > 1024 || len(f[2]) > 1024 {
		return errMalformed("invalid-encoding")
	}
	s.authzid = string(f[0])
	user, err := prepareUsername(string(f[1]))
	if err != nil {
		return &Error{Err: ErrNotAuthorized, Reason: "invalid-username-encoding", Cause: err}
	}
	s.user = user
	pw, err := preparePassword(string(f[2]))
	if err != nil {
		return &Error{Err: ErrNotAuthorized, Reason: "invalid-proof"}
	}

	h := hSHA256
	var keys = fakeKeys(&s.opts, h, user)
	found := false
	for _, hh := range plainHashes {
		k, ok, err := lookup(ctx, &s.opts, hh, user)
		if err != nil {
			return err
		}
		if ok {
			h, keys, found = hh, k, true
			break
		}
	}
	// Unknown users pay the same PBKDF2 cost as known ones.
	sp, err := h.saltedPassword(pw, keys.Salt, keys.Iterations)
	if err != nil {
		return &Error{Err: ErrTemporary, Reason: "pbkdf2", Cause: err}
	}
	stored, _ := h.keysFromSalted(sp)
	if !hmac.Equal(stored, keys.StoredKey) || !found {
		return errNotAuth("invalid-proof")
	}
	return checkAuthzid(&s.opts, s.user, s.authzid)
}
