package sasl

import "errors"

// Sentinel errors. Every error returned by Server.Next matches exactly one
// of them with errors.Is; the caller maps it to an RFC 6120 §6.5 condition.
var (
	// ErrNotAuthorized: wrong password or proof, unknown user, channel
	// binding refused or mismatched, bad authzid → <not-authorized/>.
	ErrNotAuthorized = errors.New("sasl: not authorized")
	// ErrMalformed: the message violates the mechanism's syntax, or the
	// exchange is out of sequence → <malformed-request/>.
	ErrMalformed = errors.New("sasl: malformed request")
	// ErrInvalidMechanism: unknown mechanism, or a -PLUS mechanism without
	// channel-binding data on this connection → <invalid-mechanism/>.
	ErrInvalidMechanism = errors.New("sasl: invalid mechanism")
	// ErrBindingType: a -PLUS exchange asked for a channel-binding type this
	// connection does not provide (tls-unique, which TLS 1.3 does not
	// define, or tls-exporter on TLS 1.2) → <invalid-mechanism/>. It is not
	// a password guess: the client may retry with another mechanism.
	ErrBindingType = errors.New("sasl: unsupported channel-binding type")
	// ErrTemporary: the credential lookup failed (other than not found)
	// → <temporary-auth-failure/>.
	ErrTemporary = errors.New("sasl: temporary authentication failure")

	// ErrServerSignature is returned by the client when the server's
	// signature (SCRAM server-final "v=") does not verify.
	ErrServerSignature = errors.New("sasl: server signature mismatch")
)

// Error is the concrete error returned by the server and the client. It
// matches its sentinel (Err) and its cause, if any, with errors.Is/As.
type Error struct {
	// Err is one of the sentinels above.
	Err error
	// Reason is a short machine-readable detail: an RFC 5802 §7
	// server-error-value such as "invalid-proof",
	// "channel-bindings-dont-match", "invalid-encoding", or a similar token.
	// For an unknown user and a wrong password it is the same
	// ("invalid-proof"). Suitable for logs; not meant to be sent to clients.
	Reason string
	// Cause is the underlying error (lookup failure, PRECIS error), or nil.
	Cause error
}

func (e *Error) Error() string {
	s := e.Err.Error()
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns the sentinel and the cause.
func (e *Error) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Cause}
}

func errMalformed(reason string) error { return &Error{Err: ErrMalformed, Reason: reason} }
func errNotAuth(reason string) error   { return &Error{Err: ErrNotAuthorized, Reason: reason} }
