package conf

import (
	"encoding"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
)

// How struct fields map to the file (see the package documentation):
//
//	Field T `conf:"name"`                  T scalar: attribute name="…"
//	Field S `conf:"name"`                  S struct: child element <name …/>, at most once
//	Field []S `conf:"name"`                repeated child element <name …/>
//	Field []T `conf:"wrap>item@attr"`      T scalar: <wrap><item attr="…"/>…</wrap>
//	Field map[string]any `conf:"modules"`  the module sections (Config only)
//
// Options after a comma: "required" (the attribute must be written; for a
// configuration built in Go, the value must not be the zero value),
// "min=V", "max=V" (V in the field's own syntax: "4096", "10000", "1s").
// Untagged fields and `conf:"-"` are not part of the file. Embedded structs
// without a tag are flattened into the element of the struct embedding them.

type kind uint8

const (
	kindAttr    kind = iota // scalar attribute
	kindElem                // single child element (struct, or wrapped list)
	kindList                // repeated child element
	kindModules             // <modules>
)

type field struct {
	name     string
	goName   string
	index    []int // relative to the value the structInfo describes; nil = the value itself
	kind     kind
	typ      reflect.Type
	required bool
	min, max reflect.Value // zero Value if unset
	info     *structInfo   // kindElem: the child element; kindList: each item
}

type structInfo struct {
	attrs  map[string]*field
	elems  map[string]*field
	fields []*field // declaration order
}

func (si *structInfo) attrNames() []string {
	var s []string
	for _, f := range si.fields {
		if f.kind == kindAttr {
			s = append(s, f.name)
		}
	}
	return s
}

func (si *structInfo) elemNames() []string {
	var s []string
	for _, f := range si.fields {
		if f.kind != kindAttr {
			s = append(s, f.name)
		}
	}
	return s
}

var (
	durationType  = reflect.TypeFor[time.Duration]()
	byteSizeType  = reflect.TypeFor[ByteSize]()
	hostPortType  = reflect.TypeFor[HostPort]()
	pathType      = reflect.TypeFor[Path]()
	levelType     = reflect.TypeFor[slog.Level]()
	unmarshalType = reflect.TypeFor[encoding.TextUnmarshaler]()
	anyMapType    = reflect.TypeFor[map[string]any]()
)

var infoCache sync.Map // reflect.Type -> *structInfo

// infoFor returns the field table of struct type t. It panics on a malformed
// tag: that is a programming error, found by the first test that loads the
// type (RegisterModule checks module types at registration).
func infoFor(t reflect.Type) *structInfo {
	return subInfo(t, map[reflect.Type]bool{})
}

func buildInfo(t reflect.Type, si *structInfo, prefix []int, inProgress map[reflect.Type]bool) {
	if t.Kind() != reflect.Struct {
		panic(fmt.Sprintf("conf: %v is not a struct", t))
	}
	if inProgress[t] {
		panic(fmt.Sprintf("conf: %v contains itself", t))
	}
	inProgress[t] = true
	defer delete(inProgress, t)
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		index := append(append([]int(nil), prefix...), i)
		tag, tagged := sf.Tag.Lookup("conf")
		if sf.Anonymous && !tagged {
			if sf.Type.Kind() == reflect.Struct {
				buildInfo(sf.Type, si, index, inProgress)
			}
			continue
		}
		if !tagged || tag == "-" {
			continue
		}
		where := t.String() + "." + sf.Name
		if !sf.IsExported() {
			panic("conf: " + where + " has a conf tag but is not exported")
		}
		f := parseTag(where, tag, sf.Type, inProgress)
		f.goName = sf.Name
		f.index = index
		add(si, f, where)
	}
}

func add(si *structInfo, f *field, where string) {
	m := si.elems
	if f.kind == kindAttr {
		m = si.attrs
	}
	if _, dup := m[f.name]; dup {
		panic(fmt.Sprintf("conf: %s: name %q used twice", where, f.name))
	}
	m[f.name] = f
	si.fields = append(si.fields, f)
}

func parseTag(where, tag string, t reflect.Type, inProgress map[reflect.Type]bool) *field {
	parts := strings.Split(tag, ",")
	name := parts[0]
	f := &field{name: name, typ: t}
	var minS, maxS string
	for _, o := range parts[1:] {
		switch {
		case o == "required":
			f.required = true
		case strings.HasPrefix(o, "min="):
			minS = o[4:]
		case strings.HasPrefix(o, "max="):
			maxS = o[4:]
		default:
			panic(fmt.Sprintf("conf: %s: unknown tag option %q", where, o))
		}
	}
	if wrap, rest, ok := strings.Cut(name, ">"); ok {
		// <wrap><item attr="…"/>…</wrap> holding a []scalar.
		item, attr, ok := strings.Cut(rest, "@")
		if !ok || !validName(wrap) || !validName(item) || !validName(attr) {
			panic(fmt.Sprintf("conf: %s: bad tag %q, want \"wrap>item@attr\"", where, tag))
		}
		if t.Kind() != reflect.Slice || !isScalar(t.Elem()) {
			panic(fmt.Sprintf("conf: %s: %q needs a slice of scalars, not %v", where, tag, t))
		}
		a := &field{name: attr, goName: attr, kind: kindAttr, typ: t.Elem(), required: true}
		setBounds(where, a, minS, maxS)
		itemInfo := &structInfo{attrs: map[string]*field{attr: a}, elems: map[string]*field{}, fields: []*field{a}}
		list := &field{name: item, goName: item, kind: kindList, typ: t, info: itemInfo}
		f.name = wrap
		f.kind = kindElem
		f.required = false
		f.info = &structInfo{attrs: map[string]*field{}, elems: map[string]*field{item: list}, fields: []*field{list}}
		return f
	}
	if !validName(name) {
		panic(fmt.Sprintf("conf: %s: bad name %q", where, name))
	}
	switch {
	case isScalar(t):
		f.kind = kindAttr
		setBounds(where, f, minS, maxS)
		return f
	case t.Kind() == reflect.Struct:
		f.kind = kindElem
		f.info = subInfo(t, inProgress)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		f.kind = kindList
		f.info = subInfo(t.Elem(), inProgress)
	case t == anyMapType:
		f.kind = kindModules
	default:
		panic(fmt.Sprintf("conf: %s: unsupported type %v", where, t))
	}
	if minS != "" || maxS != "" || f.required {
		panic(fmt.Sprintf("conf: %s: options only apply to attributes", where))
	}
	return f
}

func subInfo(t reflect.Type, inProgress map[reflect.Type]bool) *structInfo {
	if si, ok := infoCache.Load(t); ok {
		return si.(*structInfo)
	}
	si := &structInfo{attrs: map[string]*field{}, elems: map[string]*field{}}
	buildInfo(t, si, nil, inProgress)
	got, _ := infoCache.LoadOrStore(t, si)
	return got.(*structInfo)
}

func setBounds(where string, f *field, minS, maxS string) {
	parse := func(s string) reflect.Value {
		if s == "" {
			return reflect.Value{}
		}
		switch f.typ.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
			reflect.Float32, reflect.Float64:
		default:
			panic(fmt.Sprintf("conf: %s: min/max need a numeric type, not %v", where, f.typ))
		}
		v := reflect.New(f.typ).Elem()
		if err := setScalar(v, s); err != nil {
			panic(fmt.Sprintf("conf: %s: bad bound: %v", where, err))
		}
		return v
	}
	f.min, f.max = parse(minS), parse(maxS)
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_':
		case i > 0 && (r >= '0' && r <= '9' || r == '-' || r == '.'):
		default:
			return false
		}
	}
	return true
}

// isScalar reports whether t is written as one attribute value.
func isScalar(t reflect.Type) bool {
	switch t {
	case durationType, byteSizeType, hostPortType, pathType, levelType:
		return true
	}
	if reflect.PointerTo(t).Implements(unmarshalType) {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// setScalar parses s into v (addressable) according to v's type. The error
// is the message part of a configuration error.
func setScalar(v reflect.Value, s string) error {
	switch v.Type() {
	case durationType:
		d, err := ParseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
		return nil
	case byteSizeType:
		b, err := ParseByteSize(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(b))
		return nil
	case hostPortType:
		h, err := ParseHostPort(s)
		if err != nil {
			return err
		}
		v.SetString(string(h))
		return nil
	case pathType:
		if strings.ContainsRune(s, 0) {
			return fmt.Errorf("%q is not a path", s)
		}
		v.SetString(s)
		return nil
	case levelType:
		l, err := parseLevel(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(l))
		return nil
	}
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(s))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, v.Type().Bits())
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return fmt.Errorf("%q is out of range", s)
			}
			return fmt.Errorf("%q is not an integer", s)
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, v.Type().Bits())
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return fmt.Errorf("%q is out of range", s)
			}
			return fmt.Errorf("%q is not a non-negative integer", s)
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(strings.TrimSpace(s), v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		v.SetFloat(n)
	default:
		return fmt.Errorf("unsupported type %v", v.Type())
	}
	return nil
}

// formatScalar writes v the way the file would.
func formatScalar(v reflect.Value) string {
	switch v.Type() {
	case durationType:
		return formatDuration(time.Duration(v.Int()))
	case levelType:
		return strings.ToLower(slog.Level(v.Int()).String())
	}
	if s, ok := v.Interface().(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprint(v.Interface())
}

func formatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}

// cmpScalar compares two numeric values of the same type.
func cmpScalar(a, b reflect.Value) int {
	switch a.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x, y := a.Int(), b.Int()
		return cmpOrdered(x, y)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return cmpOrdered(a.Uint(), b.Uint())
	case reflect.Float32, reflect.Float64:
		return cmpOrdered(a.Float(), b.Float())
	}
	return 0
}

func cmpOrdered[T int64 | uint64 | float64](x, y T) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// fieldOf is v.FieldByIndex that also accepts an empty index (v itself).
func fieldOf(v reflect.Value, index []int) reflect.Value {
	for _, i := range index {
		v = v.Field(i)
	}
	return v
}

// Defaulter is implemented by the item types of repeated elements (such as
// C2SListener) whose items start from non-zero defaults: each <c2s/> in the
// file begins as a value with SetDefaults applied, then its attributes are
// read.
type Defaulter interface {
	SetDefaults()
}

// walkValues calls fn for every attribute field reachable from v (described
// by si), with its value and indexed key ("xmppd/listeners/c2s[1]@address").
// It does not descend into the module map.
func walkValues(v reflect.Value, si *structInfo, key string, fn func(f *field, fv reflect.Value, key string)) {
	for _, f := range si.fields {
		fv := fieldOf(v, f.index)
		switch f.kind {
		case kindAttr:
			fn(f, fv, key+"@"+f.name)
		case kindElem:
			walkValues(fv, f.info, key+"/"+f.name, fn)
		case kindList:
			for i := 0; i < fv.Len(); i++ {
				walkValues(fv.Index(i), f.info, fmt.Sprintf("%s/%s[%d]", key, f.name, i), fn)
			}
		}
	}
}

// walkKeys calls fn for every attribute and element key of si, without
// indexes ("xmppd/listeners/c2s@address", "xmppd/listeners/c2s").
func walkKeys(si *structInfo, key string, fn func(key string, f *field)) {
	for _, f := range si.fields {
		switch f.kind {
		case kindAttr:
			fn(key+"@"+f.name, f)
		case kindElem, kindList:
			fn(key+"/"+f.name, f)
			walkKeys(f.info, key+"/"+f.name, fn)
		case kindModules:
			fn(key+"/"+f.name, f)
		}
	}
}
