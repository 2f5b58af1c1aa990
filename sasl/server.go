package sasl

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"sync"

	"github.com/xmppd/xmppd/storage"
)

// Server is the server side of one SASL exchange.
type Server interface {
	// Next processes the client's response (the initial response first) and
	// returns the challenge to send. done is true when authentication
	// succeeded; the challenge is then additional data for <success/> (the
	// SCRAM server-final message; nil for PLAIN). An empty first response
	// (no initial response) yields an empty challenge. After an error the
	// exchange is over and every further call fails.
	Next(ctx context.Context, response []byte) (challenge []byte, done bool, err error)
	// Username is the PRECIS-prepared (UsernameCaseMapped) authentication
	// identity, the localpart of the user's JID. Only meaningful once Next
	// returned done.
	Username() string
	// Authzid is the authorization identity the client asked for, as sent
	// ("" if none). Unless Options.Domain is set the caller must check it:
	// accept "" or the user's own bare JID only.
	Authzid() string
	// Mechanism is the mechanism name.
	Mechanism() string
}

// Options configure a server exchange.
type Options struct {
	// Lookup returns the stored keys of a user (prepared username) for one
	// hash ("SHA-1", "SHA-256", "SHA-512"). It returns an error matching
	// storage.ErrNotFound when the user, or that hash's keys, do not exist;
	// any other error fails the exchange with ErrTemporary. Required.
	Lookup func(ctx context.Context, username, hash string) (storage.SCRAMKeys, error)

	// Bindings are the channel-binding values of the connection (see
	// BindingsFromTLS); zero without TLS.
	Bindings ChannelBindings
	// PlusAdvertised is true when the server offered any -PLUS mechanism on
	// this connection. A client GS2 flag "y" (client supports channel
	// binding but believed the server did not) then fails the exchange as
	// a downgrade (RFC 5802 §6).
	PlusAdvertised bool

	// Domain, if set, makes the server check the authzid itself: it must be
	// empty or username@Domain, else the exchange fails with
	// ErrNotAuthorized (Reason "invalid-authzid").
	Domain string

	// Secret keys the fake salts given for unknown users. Use a persisted
	// random secret so that the fake salt of a name stays stable across
	// restarts like a real one; nil uses a random per-process secret.
	Secret []byte
	// FakeIterations is the iteration count announced for unknown users;
	// set it to the count used when storing keys. 0 means DefaultIterations.
	FakeIterations int

	// Nonce, if set, returns the server nonce part (printable ASCII except
	// ','); for tests. nil draws 24 random bytes, base64-encoded.
	Nonce func() (string, error)
}

const (
	// maxMessage bounds any single SCRAM message, maxPlain a PLAIN message.
	maxMessage = 4096
	maxPlain   = 3*1024 + 2
)

// NewServer starts the server side of an exchange with the named mechanism:
// SCRAM-SHA-1, SCRAM-SHA-256, SCRAM-SHA-512, their -PLUS variants, or PLAIN.
// An unknown name, or a -PLUS name when opts.Bindings has no data, returns
// an error matching ErrInvalidMechanism.
func NewServer(mechanism string, opts Options) (Server, error) {
	if opts.Lookup == nil {
		return nil, errors.New("sasl: Options.Lookup is nil")
	}
	if opts.FakeIterations <= 0 {
		opts.FakeIterations = DefaultIterations
	}
	if mechanism == "PLAIN" {
		return &plainServer{opts: opts}, nil
	}
	h, plus, ok := parseSCRAMName(mechanism)
	if !ok {
		return nil, &Error{Err: ErrInvalidMechanism, Reason: mechanism}
	}
	if plus && !opts.Bindings.Available() {
		return nil, &Error{Err: ErrInvalidMechanism, Reason: "no channel binding on this connection"}
	}
	return &scramServer{mech: mechanism, h: h, plus: plus, opts: opts}, nil
}

func parseSCRAMName(m string) (h *hashSpec, plus bool, ok bool) {
	rest, found := strings.CutPrefix(m, "SCRAM-")
	if !found {
		return nil, false, false
	}
	rest, plus = strings.CutSuffix(rest, "-PLUS")
	h = hashByName(rest)
	return h, plus, h != nil
}

// lookup calls opts.Lookup and sorts its outcome: found, not found, failure.
func lookup(ctx context.Context, opts *Options, h *hashSpec, user string) (storage.SCRAMKeys, bool, error) {
	k, err := opts.Lookup(ctx, user, h.name)
	switch {
	case err == nil:
		if !validKeys(h, k) {
			return k, false, &Error{Err: ErrTemporary, Reason: "stored keys unusable"}
		}
		return k, true, nil
	case errors.Is(err, storage.ErrNotFound):
		return k, false, nil
	default:
		return k, false, &Error{Err: ErrTemporary, Reason: "lookup", Cause: err}
	}
}

var (
	processSecretOnce sync.Once
	processSecret     []byte
)

func secret(opts *Options) []byte {
	if len(opts.Secret) > 0 {
		return opts.Secret
	}
	processSecretOnce.Do(func() {
		processSecret = make([]byte, 32)
		if _, err := rand.Read(processSecret); err != nil {
			panic(err)
		}
	})
	return processSecret
}

// fakeKeys returns deterministic keys for an unknown user: a salt of
// SaltSize bytes and unguessable StoredKey/ServerKey, all derived from the
// secret, so repeated attempts see the same salt as for a real account.
func fakeKeys(opts *Options, h *hashSpec, user string) storage.SCRAMKeys {
	mac := hmac.New(sha256.New, secret(opts))
	mac.Write([]byte("xmppd fake SCRAM salt\x00" + h.name + "\x00" + user))
	salt := mac.Sum(nil)[:SaltSize]
	mac.Reset()
	mac.Write([]byte("xmppd fake SCRAM key\x00" + h.name + "\x00" + user))
	k := mac.Sum(nil)
	return storage.SCRAMKeys{
		Salt:       salt,
		Iterations: opts.FakeIterations,
		StoredKey:  h.hmac(k, "stored"),
		ServerKey:  h.hmac(k, "server"),
	}
}

func newNonce(f func() (string, error)) (string, error) {
	if f != nil {
		n, err := f()
		if err != nil {
			return "", err
		}
		if !validNonce(n) {
			return "", errors.New("sasl: injected nonce has invalid characters")
		}
		return n, nil
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b[:]), nil
}

// checkAuthzid enforces Options.Domain if set.
func checkAuthzid(opts *Options, user, authzid string) error {
	if opts.Domain == "" || authzid == "" {
		return nil
	}
	local, domain, ok := strings.Cut(authzid, "@")
	if !ok || strings.ContainsAny(domain, "@/") {
		return errNotAuth("invalid-authzid")
	}
	pl, err := prepareUsername(local)
	if err != nil || pl != user || !strings.EqualFold(strings.TrimSuffix(domain, "."), strings.TrimSuffix(opts.Domain, ".")) {
		return errNotAuth("invalid-authzid")
	}
	return nil
}
