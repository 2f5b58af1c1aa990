package dataform

import "github.com/xmppd/xmppd/wire"

// AppendXML appends the form as <x xmlns='jabber:x:data'/>. Every text and
// attribute is escaped (characters XML cannot carry become U+FFFD), so a
// value taken from a client or from storage cannot break out of its
// element. Fields are written in order, FORM_TYPE where it stands: put it
// first (XEP-0068 §3; NewForm does).
func (f *Form) AppendXML(b []byte) []byte {
	b = append(b, "<x xmlns='"+NS+"'"...)
	if f.Type != "" {
		b = wire.AppendAttr(b, "type", string(f.Type))
	}
	b = append(b, '>')
	if f.Title != "" {
		b = appendElem(b, "title", f.Title)
	}
	for _, s := range f.Instructions {
		b = appendElem(b, "instructions", s)
	}
	b = appendFields(b, f.Fields)
	if f.Reported != nil {
		b = append(b, "<reported>"...)
		b = appendFields(b, f.Reported)
		b = append(b, "</reported>"...)
	}
	for _, it := range f.Items {
		b = append(b, "<item>"...)
		b = appendFields(b, it)
		b = append(b, "</item>"...)
	}
	return append(b, "</x>"...)
}

// Bytes is AppendXML(nil).
func (f *Form) Bytes() []byte { return f.AppendXML(nil) }

// NewForm returns a form of type t whose first field is a hidden
// FORM_TYPE of formType (none when formType is ""), followed by fields.
func NewForm(t Type, formType string, fields ...Field) *Form {
	f := &Form{Type: t}
	if formType != "" {
		f.Fields = append(make([]Field, 0, 1+len(fields)), Field{Var: FormTypeVar, Type: Hidden, Values: []string{formType}})
	}
	f.Fields = append(f.Fields, fields...)
	return f
}

func appendFields(b []byte, fields []Field) []byte {
	for i := range fields {
		fl := &fields[i]
		b = append(b, "<field"...)
		if fl.Var != "" {
			b = wire.AppendAttr(b, "var", fl.Var)
		}
		if fl.Type != "" {
			b = wire.AppendAttr(b, "type", string(fl.Type))
		}
		if fl.Label != "" {
			b = wire.AppendAttr(b, "label", fl.Label)
		}
		if fl.Desc == "" && !fl.Required && len(fl.Values) == 0 && len(fl.Options) == 0 {
			b = append(b, "/>"...)
			continue
		}
		b = append(b, '>')
		if fl.Desc != "" {
			b = appendElem(b, "desc", fl.Desc)
		}
		if fl.Required {
			b = append(b, "<required/>"...)
		}
		for _, v := range fl.Values {
			b = appendElem(b, "value", v)
		}
		for _, o := range fl.Options {
			b = append(b, "<option"...)
			if o.Label != "" {
				b = wire.AppendAttr(b, "label", o.Label)
			}
			b = append(b, '>')
			b = appendElem(b, "value", o.Value)
			b = append(b, "</option>"...)
		}
		b = append(b, "</field>"...)
	}
	return b
}

func appendElem(b []byte, name, text string) []byte {
	b = append(b, '<')
	b = append(b, name...)
	b = append(b, '>')
	b = wire.AppendEscapedText(b, text)
	b = append(b, "</"...)
	b = append(b, name...)
	return append(b, '>')
}
