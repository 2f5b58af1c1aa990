package push

import (
	"errors"

	"github.com/xmppd/xmppd/dataform"
)

const (
	nsData           = dataform.NS
	nsPublishOptions = "http://jabber.org/protocol/pubsub#publish-options"
	nsSummary        = "urn:xmpp:push:summary"
)

// first returns the first value of the field v ("" if absent).
func first(f *dataform.Form, v string) string {
	if vs := f.Values(v); len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// maxForm bounds a stored publish-options form.
const maxForm = 4096

var errFormType = errors.New("the publish-options form's FORM_TYPE must be " + nsPublishOptions)

// publishOptions checks a client's publish-options form and returns it in
// canonical form (FORM_TYPE first, added if missing; each field as its var
// and values), ready to store. dataform has refused fields without a var
// and vars given twice.
func publishOptions(x *dataform.Form) ([]byte, error) {
	if x.Type != "" && x.Type != dataform.TypeSubmit {
		return nil, errors.New("the publish-options form must be of type submit")
	}
	f := dataform.Form{Type: dataform.TypeSubmit, Fields: make([]dataform.Field, 1, 1+len(x.Fields))}
	f.Fields[0] = dataform.Field{Var: dataform.FormTypeVar, Values: []string{nsPublishOptions}}
	for _, fl := range x.Fields {
		if fl.Var == "" {
			continue // a fixed field: text for people
		}
		if fl.Var == dataform.FormTypeVar {
			if len(fl.Values) != 1 || fl.Values[0] != nsPublishOptions {
				return nil, errFormType
			}
			continue
		}
		f.Fields = append(f.Fields, dataform.Field{Var: fl.Var, Values: fl.Values})
	}
	b := f.AppendXML(nil)
	if len(b) > maxForm {
		return nil, errors.New("the publish-options form is too large")
	}
	return b, nil
}

// parseForm decodes a stored form.
func parseForm(b []byte) (*dataform.Form, error) { return dataform.Parse(b) }
