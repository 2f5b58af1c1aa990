package dataform

// Stanza error conditions (RFC 6120 §8.3.3) a module answers a refused
// form with; the error type is always modify.
const (
	// BadRequest: the form breaks XEP-0004 (no var, a var given twice, an
	// unknown type, several values in a single-valued field, a boolean
	// that is not one).
	BadRequest = "bad-request"
	// NotAcceptable: the form is over a limit (Limits).
	NotAcceptable = "not-acceptable"
	// JIDMalformed: a jid-single or jid-multi value is not a JID.
	JIDMalformed = "jid-malformed"
)

// Error is a form the package refuses. Condition is the stanza error
// condition to answer with (of type modify), Text a human-readable reason
// fit for the error's <text/>.
type Error struct {
	Condition string
	Field     string // the field at fault, "" for the form
	Reason    string
}

func (e *Error) Error() string { return e.Text() }

// Text is the reason, naming the field at fault.
func (e *Error) Text() string {
	if e.Field == "" {
		return "Data form: " + e.Reason
	}
	return "Field " + e.Field + " " + e.Reason
}

func formErr(cond, reason string) *Error { return &Error{Condition: cond, Reason: reason} }

func fieldErr(cond, field, reason string) *Error {
	return &Error{Condition: cond, Field: field, Reason: reason}
}
