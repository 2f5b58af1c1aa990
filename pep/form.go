package pep

import (
	"github.com/beevik/etree"
)

// NSData is the XEP-0004 data forms namespace.
const NSData = "jabber:x:data"

// form is a submitted XEP-0004 data form: its type, its FORM_TYPE and the
// values of its other fields, in order.
type form struct {
	typ      string
	formType string
	fields   []formField
}

type formField struct {
	name   string
	values []string
}

// parseForm reads <x xmlns='jabber:x:data'/>. A field given twice keeps
// its last values.
func parseForm(x *etree.Element) form {
	f := form{typ: attr(x, "type")}
	seen := map[string]int{}
	for _, fe := range children(x, NSData, "field") {
		name := attr(fe, "var")
		var values []string
		for _, v := range children(fe, NSData, "value") {
			values = append(values, v.Text())
		}
		if name == "FORM_TYPE" {
			if len(values) > 0 {
				f.formType = values[0]
			}
			continue
		}
		if name == "" {
			continue
		}
		if i, ok := seen[name]; ok {
			f.fields[i].values = values
			continue
		}
		seen[name] = len(f.fields)
		f.fields = append(f.fields, formField{name, values})
	}
	return f
}

// fieldDef describes one field of a form we write.
type fieldDef struct {
	name, typ, label string
	values           []string
	options          []string
}

// appendForm writes a data form of type typ with a hidden FORM_TYPE.
func appendForm(b []byte, typ, formType string, fields []fieldDef) []byte {
	b = append(b, "<x xmlns='"+NSData+"' type='"...)
	b = append(b, typ...)
	b = append(b, "'><field var='FORM_TYPE' type='hidden'><value>"...)
	b = appendText(b, formType)
	b = append(b, "</value></field>"...)
	for _, f := range fields {
		b = append(b, "<field"...)
		b = appendAttr(b, "var", f.name)
		if f.typ != "" {
			b = appendAttr(b, "type", f.typ)
		}
		if f.label != "" {
			b = appendAttr(b, "label", f.label)
		}
		b = append(b, '>')
		for _, o := range f.options {
			b = append(b, "<option"...)
			b = appendAttr(b, "label", o)
			b = append(b, "><value>"...)
			b = appendText(b, o)
			b = append(b, "</value></option>"...)
		}
		for _, v := range f.values {
			b = append(b, "<value>"...)
			b = appendText(b, v)
			b = append(b, "</value>"...)
		}
		b = append(b, "</field>"...)
	}
	return append(b, "</x>"...)
}
