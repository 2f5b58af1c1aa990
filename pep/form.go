package pep

import (
	"errors"

	"github.com/beevik/etree"

	"github.com/xmppd/xmppd/dataform"
	"github.com/xmppd/xmppd/router"
)

// NSData is the XEP-0004 data forms namespace.
const NSData = dataform.NS

// readForm reads <x xmlns='jabber:x:data'/> under dataform's limits.
func readForm(x *etree.Element) (*dataform.Form, error) {
	return dataform.FromElement(x, dataform.DefaultLimits)
}

// formError answers a form dataform refused.
func formError(c *router.Context, err error) {
	var fe *dataform.Error
	if errors.As(err, &fe) {
		c.Error("modify", fe.Condition, fe.Text())
		return
	}
	c.Error("modify", "bad-request", "")
}

// userFields returns the fields of f but FORM_TYPE and fixed fields: what
// a submission sets.
func userFields(f *dataform.Form) []dataform.Field {
	out := make([]dataform.Field, 0, len(f.Fields))
	for _, fl := range f.Fields {
		if fl.Var == "" || fl.Var == dataform.FormTypeVar {
			continue
		}
		out = append(out, fl)
	}
	return out
}

// fieldDef describes one field of a form we write.
type fieldDef struct {
	name, typ, label string
	values           []string
	options          []string
}

// appendForm writes a data form of type typ with a hidden FORM_TYPE.
func appendForm(b []byte, typ, formType string, fields []fieldDef) []byte {
	f := dataform.NewForm(dataform.Type(typ), formType)
	for _, fd := range fields {
		fl := dataform.Field{Var: fd.name, Type: dataform.FieldType(fd.typ), Label: fd.label, Values: fd.values}
		for _, o := range fd.options {
			fl.Options = append(fl.Options, dataform.Option{Label: o, Value: o})
		}
		f.Fields = append(f.Fields, fl)
	}
	return f.AppendXML(b)
}
