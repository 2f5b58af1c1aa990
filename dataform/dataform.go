// Package dataform implements XEP-0004 Data Forms for the modules that read
// forms from clients (MAM queries, PEP configuration and publish-options,
// push registrations) and write forms of their own (configuration forms,
// result forms, XEP-0128 extended disco#info), with XEP-0068 FORM_TYPE.
//
// A form is parsed once into a Form whose fields keep their document order;
// typed accessors (Text, Bool, JID, JIDs, Values) read it and return an
// *Error whose Condition is the stanza error a module answers with. Parsing
// is bounded by Limits: a form over them is refused as soon as the limit is
// crossed, before anything more is allocated.
//
// The package imports nothing of the server but wire's escaping.
package dataform

import (
	"slices"
	"strings"

	"mellium.im/xmpp/jid"
)

// NS is the XEP-0004 namespace.
const NS = "jabber:x:data"

// FormTypeVar is the XEP-0068 field that names a form's purpose.
const FormTypeVar = "FORM_TYPE"

// Type is the type of a form: what it is for in the exchange.
type Type string

// The form types of XEP-0004 §3.1. A form without a type attribute parses
// with Type "" (XEP-0004 requires one; some clients leave it out of a
// submission, so the module decides).
const (
	TypeForm   Type = "form"
	TypeSubmit Type = "submit"
	TypeCancel Type = "cancel"
	TypeResult Type = "result"
)

// FieldType is the type of a field (XEP-0004 §3.3).
type FieldType string

// The field types of XEP-0004 §3.3. A field without a type attribute
// parses with FieldType "": in a submission the form processor knows the
// types, and in a form XEP-0004 reads it as text-single.
const (
	Boolean     FieldType = "boolean"
	Fixed       FieldType = "fixed"
	Hidden      FieldType = "hidden"
	JIDMulti    FieldType = "jid-multi"
	JIDSingle   FieldType = "jid-single"
	ListMulti   FieldType = "list-multi"
	ListSingle  FieldType = "list-single"
	TextMulti   FieldType = "text-multi"
	TextPrivate FieldType = "text-private"
	TextSingle  FieldType = "text-single"
)

// known reports whether t is a field type of XEP-0004 (or none).
func (t FieldType) known() bool {
	switch t {
	case "", Boolean, Fixed, Hidden, JIDMulti, JIDSingle, ListMulti, ListSingle, TextMulti, TextPrivate, TextSingle:
		return true
	}
	return false
}

// single reports whether a field of type t holds at most one value.
func (t FieldType) single() bool {
	switch t {
	case Boolean, Fixed, JIDSingle, ListSingle, TextPrivate, TextSingle:
		return true
	}
	return false
}

// Option is one choice of a list field.
type Option struct {
	Label string
	Value string
}

// Field is one <field/>.
type Field struct {
	Var      string
	Type     FieldType
	Label    string
	Desc     string
	Required bool
	Values   []string
	Options  []Option
}

// Form is one <x xmlns='jabber:x:data'/>. Fields are in document order and
// include FORM_TYPE. Reported and Items are the table of a result form.
type Form struct {
	Type         Type
	Title        string
	Instructions []string
	Fields       []Field
	Reported     []Field
	Items        [][]Field
}

// Field returns the field named name, or nil.
func (f *Form) Field(name string) *Field {
	for i := range f.Fields {
		if f.Fields[i].Var == name {
			return &f.Fields[i]
		}
	}
	return nil
}

// Has reports whether the form has a field named name.
func (f *Form) Has(name string) bool { return f.Field(name) != nil }

// FormType returns the value of the form's FORM_TYPE field, or "" when it
// has none. A FORM_TYPE field of a type other than hidden is no context
// indicator (XEP-0068 §3) and gives "" too; a submission may leave the
// type out.
func (f *Form) FormType() string {
	fl := f.Field(FormTypeVar)
	if fl == nil || (fl.Type != "" && fl.Type != Hidden) || len(fl.Values) == 0 {
		return ""
	}
	return fl.Values[0]
}

// Values returns the values of the field named name (nil when absent).
func (f *Form) Values(name string) []string {
	if fl := f.Field(name); fl != nil {
		return fl.Values
	}
	return nil
}

// Text returns the one value of the field named name: "" when the field is
// absent or has no value, a bad-request *Error when it has more than one.
func (f *Form) Text(name string) (string, error) {
	fl := f.Field(name)
	if fl == nil {
		return "", nil
	}
	return fl.Text()
}

// Bool returns the boolean field named name: false when absent or empty
// (XEP-0004 §3.3), a bad-request *Error when its value is not one of 1,
// true, 0, false.
func (f *Form) Bool(name string) (bool, error) {
	fl := f.Field(name)
	if fl == nil {
		return false, nil
	}
	return fl.Bool()
}

// JID returns the JID in the field named name: the zero JID when absent or
// empty, a jid-malformed *Error when it is not a valid JID.
func (f *Form) JID(name string) (jid.JID, error) {
	fl := f.Field(name)
	if fl == nil {
		return jid.JID{}, nil
	}
	return fl.JID()
}

// JIDs returns the JIDs in the field named name (empty values skipped), or
// a jid-malformed *Error.
func (f *Form) JIDs(name string) ([]jid.JID, error) {
	fl := f.Field(name)
	if fl == nil {
		return nil, nil
	}
	return fl.JIDs()
}

// Text returns the field's one value ("" when it has none), or a
// bad-request *Error when it has more than one.
func (fl *Field) Text() (string, error) {
	switch len(fl.Values) {
	case 0:
		return "", nil
	case 1:
		return fl.Values[0], nil
	}
	return "", fieldErr(BadRequest, fl.Var, "takes one value")
}

// Bool returns the field as a boolean (see Form.Bool).
func (fl *Field) Bool() (bool, error) {
	v, err := fl.Text()
	if err != nil {
		return false, err
	}
	b, ok := ParseBool(v)
	if !ok && strings.TrimSpace(v) != "" {
		return false, fieldErr(BadRequest, fl.Var, "is not a boolean")
	}
	return b, nil
}

// JID returns the field as one JID (see Form.JID).
func (fl *Field) JID() (jid.JID, error) {
	v, err := fl.Text()
	if err != nil || v == "" {
		return jid.JID{}, err
	}
	j, err := jid.Parse(v)
	if err != nil {
		return jid.JID{}, fieldErr(JIDMalformed, fl.Var, "is not a valid JID")
	}
	return j, nil
}

// JIDs returns the field's values as JIDs (see Form.JIDs).
func (fl *Field) JIDs() ([]jid.JID, error) {
	out := make([]jid.JID, 0, len(fl.Values))
	for _, v := range fl.Values {
		if v == "" {
			continue
		}
		j, err := jid.Parse(v)
		if err != nil {
			return nil, fieldErr(JIDMalformed, fl.Var, "is not a valid JID")
		}
		out = append(out, j)
	}
	return out, nil
}

// ParseBool reads an XEP-0004 boolean (xs:boolean: 1, true, 0, false, with
// surrounding white space collapsed; letter case is forgiven, as the push
// module's sandbox field always was). ok is false for anything else,
// including "".
func ParseBool(s string) (v, ok bool) {
	s = strings.TrimSpace(s)
	switch {
	case s == "1" || strings.EqualFold(s, "true"):
		return true, true
	case s == "0" || strings.EqualFold(s, "false"):
		return false, true
	}
	return false, false
}

// FormatBool writes a boolean as XEP-0004 forms carry it.
func FormatBool(v bool) string {
	if v {
		return "1"
	}
	return "0"
}

// Clone returns a deep copy of f.
func (f *Form) Clone() *Form {
	c := *f
	c.Instructions = slices.Clone(f.Instructions)
	c.Fields = cloneFields(f.Fields)
	c.Reported = cloneFields(f.Reported)
	if f.Items != nil {
		c.Items = make([][]Field, len(f.Items))
		for i, it := range f.Items {
			c.Items[i] = cloneFields(it)
		}
	}
	return &c
}

func cloneFields(fs []Field) []Field {
	if fs == nil {
		return nil
	}
	out := make([]Field, len(fs))
	for i, fl := range fs {
		fl.Values = slices.Clone(fl.Values)
		fl.Options = slices.Clone(fl.Options)
		out[i] = fl
	}
	return out
}
