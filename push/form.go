package push

import (
	"encoding/xml"
	"errors"

	"github.com/xmppd/xmppd/wire"
)

const (
	nsData           = "jabber:x:data"
	nsPublishOptions = "http://jabber.org/protocol/pubsub#publish-options"
	nsSummary        = "urn:xmpp:push:summary"
)

// xForm decodes an XEP-0004 data form.
type xForm struct {
	XMLName xml.Name `xml:"jabber:x:data x"`
	Type    string   `xml:"type,attr"`
	Fields  []struct {
		Var    string   `xml:"var,attr"`
		Values []string `xml:"jabber:x:data value"`
	} `xml:"jabber:x:data field"`
}

// field is one field of a form, in order.
type field struct {
	Var    string
	Values []string
}

// form is a submitted data form, kept in the order it came in.
type form []field

func (x *xForm) form() form {
	f := make(form, 0, len(x.Fields))
	for _, fl := range x.Fields {
		f = append(f, field{fl.Var, fl.Values})
	}
	return f
}

// get returns the first value of the field v ("" if absent).
func (f form) get(v string) string {
	for _, fl := range f {
		if fl.Var == v && len(fl.Values) > 0 {
			return fl.Values[0]
		}
	}
	return ""
}

// appendXML writes f as <x xmlns='jabber:x:data' type='submit'>.
func (f form) appendXML(b []byte) []byte {
	b = append(b, "<x xmlns='"+nsData+"' type='submit'>"...)
	for _, fl := range f {
		b = appendField(b, fl.Var, fl.Values...)
	}
	return append(b, "</x>"...)
}

func appendField(b []byte, v string, values ...string) []byte {
	b = append(b, "<field var='"...)
	b = wire.AppendEscapedAttr(b, v)
	b = append(b, "'>"...)
	for _, val := range values {
		b = append(b, "<value>"...)
		b = wire.AppendEscapedText(b, val)
		b = append(b, "</value>"...)
	}
	return append(b, "</field>"...)
}

// maxForm bounds a stored publish-options form.
const maxForm = 4096

var errFormType = errors.New("the publish-options form's FORM_TYPE must be " + nsPublishOptions)

// publishOptions checks a client's publish-options form and returns it in
// canonical form (FORM_TYPE first, added if missing), ready to store.
func publishOptions(x *xForm) ([]byte, error) {
	if x.Type != "" && x.Type != "submit" {
		return nil, errors.New("the publish-options form must be of type submit")
	}
	f := form{{"FORM_TYPE", []string{nsPublishOptions}}}
	for _, fl := range x.form() {
		if fl.Var == "" {
			return nil, errors.New("a form field has no var")
		}
		if fl.Var == "FORM_TYPE" {
			if len(fl.Values) != 1 || fl.Values[0] != nsPublishOptions {
				return nil, errFormType
			}
			continue
		}
		f = append(f, fl)
	}
	b := f.appendXML(nil)
	if len(b) > maxForm {
		return nil, errors.New("the publish-options form is too large")
	}
	return b, nil
}

// parseForm decodes a stored form.
func parseForm(b []byte) (form, error) {
	var x xForm
	if err := xml.Unmarshal(b, &x); err != nil {
		return nil, err
	}
	return x.form(), nil
}
