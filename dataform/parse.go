package dataform

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strconv"

	"github.com/beevik/etree"
	"mellium.im/xmpp/jid"
)

// Limits bound what a parsed form may hold. A zero field takes the
// default.
type Limits struct {
	// Fields is the most <field/> and <item/> elements in one form, all
	// sections together.
	Fields int
	// Values is the most <value/> and <option/> elements in one field
	// (and <instructions/> in one form).
	Values int
	// ValueLen is the longest value, attribute, title, instructions or
	// description, in bytes.
	ValueLen int
}

// Default limits: well above any form a client or a server fills in (a
// MUC configuration form has about 40 fields, a MAM query at most 1000
// ids), well below what a 256 KiB stanza could hold.
const (
	DefaultFields   = 256
	DefaultValues   = 1024
	DefaultValueLen = 16 << 10
)

// DefaultLimits are the limits Parse and UnmarshalXML apply.
var DefaultLimits = Limits{Fields: DefaultFields, Values: DefaultValues, ValueLen: DefaultValueLen}

func (l Limits) norm() Limits {
	if l.Fields <= 0 {
		l.Fields = DefaultFields
	}
	if l.Values <= 0 {
		l.Values = DefaultValues
	}
	if l.ValueLen <= 0 {
		l.ValueLen = DefaultValueLen
	}
	return l
}

// Parse reads one serialised <x xmlns='jabber:x:data'/> element (a stored
// form, say) under DefaultLimits. Errors that are about the form are
// *Error; XML that is not well-formed is a plain error.
func Parse(b []byte) (*Form, error) { return ParseLimits(b, DefaultLimits) }

// ParseLimits is Parse with other limits.
func ParseLimits(b []byte, lim Limits) (*Form, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := d.Token()
		if err != nil {
			if err == io.EOF {
				return nil, errors.New("dataform: no element")
			}
			return nil, err
		}
		if se, ok := tok.(xml.StartElement); ok {
			return Decode(d, se, lim)
		}
	}
}

// UnmarshalXML reads the form under DefaultLimits, so a Form can stand in
// a struct that encoding/xml fills (`xml:"jabber:x:data x"`). Its errors
// come back from the Decode of the whole struct unchanged.
func (f *Form) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	g, err := Decode(d, start, DefaultLimits)
	if err != nil {
		return err
	}
	*f = *g
	return nil
}

// Decode reads the form whose start tag the decoder just returned, up to
// and including its end tag.
func Decode(d *xml.Decoder, start xml.StartElement, lim Limits) (*Form, error) {
	p := newParser(lim)
	if err := p.start(start.Name.Space, start.Name.Local, xmlAttrs(start.Attr)); err != nil {
		return nil, err
	}
	for p.depth > 0 {
		tok, err := d.Token()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			err = p.start(t.Name.Space, t.Name.Local, xmlAttrs(t.Attr))
		case xml.EndElement:
			err = p.end()
		case xml.CharData:
			err = p.chars(t)
		}
		if err != nil {
			return nil, err
		}
	}
	return p.f, nil
}

// FromElement reads a form from an etree element (for a module that parsed
// its payload into a tree).
func FromElement(x *etree.Element, lim Limits) (*Form, error) {
	p := newParser(lim)
	if err := p.walk(x); err != nil {
		return nil, err
	}
	return p.f, nil
}

func (p *parser) walk(e *etree.Element) error {
	if err := p.start(e.NamespaceURI(), e.Tag, etreeAttrs(e.Attr)); err != nil {
		return err
	}
	for _, tok := range e.Child {
		var err error
		switch t := tok.(type) {
		case *etree.Element:
			err = p.walk(t)
		case *etree.CharData:
			err = p.chars([]byte(t.Data))
		}
		if err != nil {
			return err
		}
	}
	return p.end()
}

type xmlAttrs []xml.Attr

func (a xmlAttrs) get(name string) string {
	for _, at := range a {
		if at.Name.Space == "" && at.Name.Local == name {
			return at.Value
		}
	}
	return ""
}

type etreeAttrs []etree.Attr

func (a etreeAttrs) get(name string) string {
	for _, at := range a {
		if at.Space == "" && at.Key == name {
			return at.Value
		}
	}
	return ""
}

type attrs interface{ get(name string) string }

// kind is what a known element is; the parser keeps a stack of them (at
// most five deep: x, item, field, option, value).
type kind uint8

const (
	kX kind = iota
	kTitle
	kInstructions
	kField
	kDesc
	kRequired
	kValue
	kOption
	kReported
	kItem
)

func (k kind) text() bool { return k == kTitle || k == kInstructions || k == kDesc || k == kValue }

type parser struct {
	lim   Limits
	f     *Form
	stack [5]kind
	n     int // elements on stack
	depth int // open elements, known or not
	skip  int // depth inside an ignored element (0: none)
	// entries counts fields and items against lim.Fields.
	entries int
	// list is the section the open field belongs to, field its index.
	list  *[]Field
	field int
	// section is the list a new field joins.
	section *[]Field
	text    []byte
	opt     Option
}

func newParser(lim Limits) *parser {
	p := &parser{lim: lim.norm(), f: &Form{}}
	return p
}

func (p *parser) top() kind { return p.stack[p.n-1] }

func (p *parser) push(k kind) { p.stack[p.n] = k; p.n++ }

func (p *parser) cur() *Field { return &(*p.list)[p.field] }

func (p *parser) attr(a attrs, name string) (string, error) {
	v := a.get(name)
	if len(v) > p.lim.ValueLen {
		return "", formErr(NotAcceptable, "an attribute is longer than "+strconv.Itoa(p.lim.ValueLen)+" bytes")
	}
	return v, nil
}

func (p *parser) start(space, local string, a attrs) error {
	p.depth++
	if p.skip > 0 {
		p.skip++
		return nil
	}
	if p.n == 0 {
		if space != NS || local != "x" {
			return formErr(BadRequest, "not a jabber:x:data x element")
		}
		t, err := p.attr(a, "type")
		if err != nil {
			return err
		}
		switch Type(t) {
		case "", TypeForm, TypeSubmit, TypeCancel, TypeResult:
		default:
			return formErr(BadRequest, "unknown form type")
		}
		p.f.Type = Type(t)
		p.section = &p.f.Fields
		p.push(kX)
		return nil
	}
	var k kind
	ok := space == NS
	if ok {
		switch p.top() {
		case kX:
			switch local {
			case "title":
				k = kTitle
			case "instructions":
				k = kInstructions
				if len(p.f.Instructions) >= p.lim.Values {
					return formErr(NotAcceptable, "more than "+strconv.Itoa(p.lim.Values)+" instructions")
				}
			case "field":
				k = kField
			case "reported":
				k = kReported
				if p.f.Reported == nil {
					p.f.Reported = []Field{}
				}
				p.section = &p.f.Reported
			case "item":
				k = kItem
				if err := p.count(); err != nil {
					return err
				}
				p.f.Items = append(p.f.Items, nil)
				p.section = &p.f.Items[len(p.f.Items)-1]
			default:
				ok = false
			}
		case kReported, kItem:
			ok = local == "field"
			k = kField
		case kField:
			switch local {
			case "desc":
				k = kDesc
			case "required":
				k = kRequired
			case "value":
				k = kValue
			case "option":
				k = kOption
			default:
				ok = false
			}
			if ok && (k == kValue || k == kOption) {
				fl := p.cur()
				if len(fl.Values)+len(fl.Options) >= p.lim.Values {
					return fieldErr(NotAcceptable, fl.Var, "has more than "+strconv.Itoa(p.lim.Values)+" values")
				}
			}
			if k == kOption {
				lbl, err := p.attr(a, "label")
				if err != nil {
					return err
				}
				p.opt = Option{Label: lbl}
			}
		case kOption:
			ok = local == "value"
			k = kValue
		default:
			ok = false // no elements inside text
		}
	}
	if !ok {
		p.skip = 1
		return nil
	}
	if k == kField {
		if err := p.count(); err != nil {
			return err
		}
		var fl Field
		var err error
		if fl.Var, err = p.attr(a, "var"); err != nil {
			return err
		}
		t, err := p.attr(a, "type")
		if err != nil {
			return err
		}
		fl.Type = FieldType(t)
		if fl.Label, err = p.attr(a, "label"); err != nil {
			return err
		}
		*p.section = append(*p.section, fl)
		p.list, p.field = p.section, len(*p.section)-1
	}
	if k.text() {
		p.text = p.text[:0]
	}
	p.push(k)
	return nil
}

func (p *parser) count() error {
	p.entries++
	if p.entries > p.lim.Fields {
		return formErr(NotAcceptable, "more than "+strconv.Itoa(p.lim.Fields)+" fields")
	}
	return nil
}

func (p *parser) chars(b []byte) error {
	if p.skip > 0 || p.n == 0 || !p.top().text() {
		return nil
	}
	if len(p.text)+len(b) > p.lim.ValueLen {
		return formErr(NotAcceptable, "a value is longer than "+strconv.Itoa(p.lim.ValueLen)+" bytes")
	}
	p.text = append(p.text, b...)
	return nil
}

func (p *parser) end() error {
	p.depth--
	if p.skip > 0 {
		p.skip--
		return nil
	}
	k := p.top()
	p.n--
	switch k {
	case kTitle:
		p.f.Title = string(p.text)
	case kInstructions:
		p.f.Instructions = append(p.f.Instructions, string(p.text))
	case kDesc:
		p.cur().Desc = string(p.text)
	case kRequired:
		p.cur().Required = true
	case kValue:
		if p.top() == kOption {
			p.opt.Value = string(p.text)
		} else {
			fl := p.cur()
			fl.Values = append(fl.Values, string(p.text))
		}
	case kOption:
		fl := p.cur()
		fl.Options = append(fl.Options, p.opt)
	case kField:
		return p.check()
	case kReported, kItem:
		p.section = &p.f.Fields
	}
	return nil
}

// check validates the field just closed against XEP-0004 §3.2/3.3 and
// XEP-0068.
func (p *parser) check() error {
	list := *p.list
	fl := &list[p.field]
	if !fl.Type.known() {
		return fieldErr(BadRequest, fl.Var, "has an unknown type")
	}
	if fl.Var == "" {
		if fl.Type != Fixed {
			return formErr(BadRequest, "a field has no var")
		}
		return nil
	}
	for i := range list[:p.field] {
		if list[i].Var == fl.Var {
			return fieldErr(BadRequest, fl.Var, "is given twice")
		}
	}
	if fl.Type.single() && len(fl.Values) > 1 {
		return fieldErr(BadRequest, fl.Var, "takes one value")
	}
	if fl.Var == FormTypeVar && (fl.Type == "" || fl.Type == Hidden) && len(fl.Values) != 1 && p.list == &p.f.Fields {
		return fieldErr(BadRequest, fl.Var, "takes one value")
	}
	switch fl.Type {
	case Boolean:
		if _, err := fl.Bool(); err != nil {
			return err
		}
	case JIDSingle, JIDMulti:
		for _, v := range fl.Values {
			if v == "" {
				continue
			}
			if _, err := jid.Parse(v); err != nil {
				return fieldErr(JIDMalformed, fl.Var, "is not a valid JID")
			}
		}
	}
	return nil
}
