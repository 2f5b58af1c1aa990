package sasl

import (
	"crypto/hmac"
	"encoding/base64"
	"strconv"
	"strings"
)

// ClientOptions configure a client exchange.
type ClientOptions struct {
	// Authzid is sent as the authorization identity if not empty.
	Authzid string
	// Bindings are the channel-binding values of the connection, computed
	// with BindingsFromTLS(cs, cs.PeerCertificates[0]); needed for -PLUS.
	Bindings ChannelBindings
	// BindingType selects the channel-binding type for -PLUS mechanisms;
	// "" picks tls-exporter when available, else tls-server-end-point.
	BindingType string
	// SupportsBinding makes a non-PLUS SCRAM exchange send the GS2 flag "y"
	// (client supports channel binding, server did not seem to) instead of
	// "n". Set it when TLS is in use but the server offered no -PLUS.
	SupportsBinding bool
	// Cache, if set, keeps salted passwords across exchanges.
	Cache *SaltedPasswordCache
	// MinIterations is the smallest iteration count accepted from the
	// server; 0 means DefaultIterations. MaxIterations bounds it from above;
	// 0 means 10,000,000.
	MinIterations, MaxIterations int
	// Nonce, if set, returns the client nonce (printable ASCII except ',');
	// for tests. nil draws 24 random bytes, base64-encoded.
	Nonce func() (string, error)
}

// Client states (stStart, stDone and stFailed are shared with the servers).
const (
	cWaitServerFirst = iota + 10
	cWaitServerFinal
)

// Client is the client side of one SASL exchange.
type Client struct {
	mech     string
	h        *hashSpec // nil for PLAIN
	plus     bool
	username string
	password string
	opts     ClientOptions

	state     int
	err       error
	gs2       string
	cbData    []byte
	cnonce    string
	bare      string
	serverSig []byte
}

// NewClient prepares a client exchange for the named mechanism (the same
// names as NewServer). For -PLUS mechanisms the chosen binding type must
// have data in opts.Bindings.
func NewClient(mechanism, username, password string, opts ClientOptions) (*Client, error) {
	c := &Client{mech: mechanism, username: username, password: password, opts: opts}
	if mechanism == "PLAIN" {
		return c, nil
	}
	h, plus, ok := parseSCRAMName(mechanism)
	if !ok {
		return nil, &Error{Err: ErrInvalidMechanism, Reason: mechanism}
	}
	c.h, c.plus = h, plus
	if c.opts.MinIterations <= 0 {
		c.opts.MinIterations = DefaultIterations
	}
	if c.opts.MaxIterations <= 0 {
		c.opts.MaxIterations = 10_000_000
	}
	az := ""
	if opts.Authzid != "" {
		az = "a=" + encodeSaslname(opts.Authzid)
	}
	switch {
	case plus:
		typ := opts.BindingType
		if typ == "" {
			typ = BindingTLSServerEndPoint
			if opts.Bindings.TLSExporter != nil {
				typ = BindingTLSExporter
			}
		}
		c.cbData = opts.Bindings.data(typ)
		if c.cbData == nil {
			return nil, &Error{Err: ErrInvalidMechanism, Reason: "no " + typ + " channel binding data"}
		}
		c.gs2 = "p=" + typ + "," + az + ","
	case opts.SupportsBinding:
		c.gs2 = "y," + az + ","
	default:
		c.gs2 = "n," + az + ","
	}
	return c, nil
}

// Mechanism returns the mechanism name.
func (c *Client) Mechanism() string { return c.mech }

// Step returns the next response to send. Call it first with a nil
// challenge for the initial response, then with each challenge; for SCRAM
// pass the server-final message (the <success/> data) last, which is
// verified. done is true when the client has nothing more to send and, for
// SCRAM, the server signature verified.
func (c *Client) Step(challenge []byte) (response []byte, done bool, err error) {
	if c.state == stFailed {
		return nil, false, c.err
	}
	if c.h == nil {
		if c.state != stStart {
			return c.fail(errMalformed("exchange already complete"))
		}
		c.state = stDone
		msg := make([]byte, 0, len(c.opts.Authzid)+len(c.username)+len(c.password)+2)
		msg = append(msg, c.opts.Authzid...)
		msg = append(msg, 0)
		msg = append(msg, c.username...)
		msg = append(msg, 0)
		msg = append(msg, c.password...)
		return msg, true, nil
	}
	switch c.state {
	case stStart:
		r, err := c.first()
		if err != nil {
			return c.fail(err)
		}
		c.state = cWaitServerFirst
		return r, false, nil
	case cWaitServerFirst:
		r, err := c.final(challenge)
		if err != nil {
			return c.fail(err)
		}
		c.state = cWaitServerFinal
		return r, false, nil
	case cWaitServerFinal:
		if err := c.verify(challenge); err != nil {
			return c.fail(err)
		}
		c.state = stDone
		return nil, true, nil
	}
	return c.fail(errMalformed("exchange already complete"))
}

func (c *Client) fail(err error) ([]byte, bool, error) {
	c.state, c.err = stFailed, err
	return nil, false, err
}

func (c *Client) first() ([]byte, error) {
	user, err := prepareUsername(c.username)
	if err != nil {
		return nil, &Error{Err: ErrNotAuthorized, Reason: "invalid-username-encoding", Cause: err}
	}
	c.cnonce, err = newNonce(c.opts.Nonce)
	if err != nil {
		return nil, err
	}
	c.bare = "n=" + encodeSaslname(user) + ",r=" + c.cnonce
	return []byte(c.gs2 + c.bare), nil
}

func (c *Client) final(challenge []byte) ([]byte, error) {
	if len(challenge) > maxMessage {
		return nil, errMalformed("invalid-encoding")
	}
	first := string(challenge)
	parts := strings.Split(first, ",")
	if len(parts) < 3 {
		return nil, errMalformed("invalid-encoding")
	}
	if strings.HasPrefix(parts[0], "m=") {
		return nil, errMalformed("extensions-not-supported")
	}
	nonce, ok := strings.CutPrefix(parts[0], "r=")
	if !ok || !validNonce(nonce) || len(nonce) <= len(c.cnonce) || !strings.HasPrefix(nonce, c.cnonce) {
		return nil, errMalformed("nonce does not extend the client nonce")
	}
	s, ok := strings.CutPrefix(parts[1], "s=")
	if !ok {
		return nil, errMalformed("invalid-encoding")
	}
	salt, ok := decodeB64(s)
	if !ok {
		return nil, errMalformed("invalid-encoding")
	}
	is, ok := strings.CutPrefix(parts[2], "i=")
	if !ok || is == "" || is[0] < '1' || is[0] > '9' {
		return nil, errMalformed("invalid-encoding")
	}
	iter, err := strconv.Atoi(is)
	if err != nil {
		return nil, errMalformed("invalid-encoding")
	}
	if iter < c.opts.MinIterations || iter > c.opts.MaxIterations {
		return nil, errMalformed("iteration count " + is + " out of bounds")
	}
	for _, e := range parts[3:] {
		if !validExtension(e) {
			return nil, errMalformed("invalid-encoding")
		}
	}

	sp, err := c.saltedPassword(salt, iter)
	if err != nil {
		return nil, err
	}
	cbind := make([]byte, 0, len(c.gs2)+len(c.cbData))
	cbind = append(append(cbind, c.gs2...), c.cbData...)
	withoutProof := "c=" + base64.StdEncoding.EncodeToString(cbind) + ",r=" + nonce
	authMsg := c.bare + "," + first + "," + withoutProof

	clientKey := c.h.hmac(sp, "Client Key")
	storedKey := c.h.sum(clientKey)
	proof := c.h.hmac(storedKey, authMsg)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	c.serverSig = c.h.hmac(c.h.hmac(sp, "Server Key"), authMsg)
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

func (c *Client) saltedPassword(salt []byte, iter int) ([]byte, error) {
	pw, err := preparePassword(c.password)
	if err != nil {
		return nil, err
	}
	var key [32]byte
	if c.opts.Cache != nil {
		key = cacheKey(c.h.name, salt, iter, pw)
		if sp := c.opts.Cache.get(key); sp != nil {
			return sp, nil
		}
	}
	sp, err := c.h.saltedPassword(pw, salt, iter)
	if err != nil {
		return nil, err
	}
	if c.opts.Cache != nil {
		c.opts.Cache.put(key, sp)
	}
	return sp, nil
}

// ServerError is returned by the client when the server-final message
// carries "e=" (RFC 5802 §7 server-error).
type ServerError struct{ Value string }

func (e *ServerError) Error() string { return "sasl: server error: " + e.Value }

func (c *Client) verify(final []byte) error {
	parts := strings.Split(string(final), ",")
	if e, ok := strings.CutPrefix(parts[0], "e="); ok {
		return &ServerError{Value: e}
	}
	v, ok := strings.CutPrefix(parts[0], "v=")
	if !ok {
		return errMalformed("invalid-encoding")
	}
	sig, ok := decodeB64(v)
	if !ok {
		return errMalformed("invalid-encoding")
	}
	for _, e := range parts[1:] {
		if !validExtension(e) {
			return errMalformed("invalid-encoding")
		}
	}
	if !hmac.Equal(sig, c.serverSig) {
		return ErrServerSignature
	}
	return nil
}
