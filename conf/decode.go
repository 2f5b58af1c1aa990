package conf

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// MaxFileSize bounds the configuration file.
const MaxFileSize = 4 << 20

// Load reads the configuration file at path, resolving relative paths in it
// against dataDir (DefaultDataDir if ""), and validates it. An empty path
// means no file: Load returns Default(dataDir).
//
// The error, if any, is an Errors listing every problem found (syntax,
// unknown names, bad values, then validation), and the *Config is nil.
// Warnings of a good configuration are in Config.Warnings.
func Load(path string, dataDir string) (*Config, error) {
	if path == "" {
		return Default(dataDir), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, Errors{{File: path, Path: "xmppd", Msg: err.Error()}}
	}
	defer f.Close()
	return Parse(f, path, dataDir)
}

// Parse reads a configuration from r; name is the file name used in errors
// and kept in Config.Path. See Load.
func Parse(r io.Reader, name string, dataDir string) (*Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, Errors{{File: name, Path: "xmppd", Msg: err.Error()}}
	}
	if len(data) > MaxFileSize {
		return nil, Errors{{File: name, Path: "xmppd", Msg: fmt.Sprintf("file larger than %v", ByteSize(MaxFileSize))}}
	}
	c, d := decode(data, name, dataDir, false)
	errs := d.errs
	if !d.aborted {
		errs = append(errs, c.validate(d.bad)...)
	}
	if len(errs) > 0 {
		sortErrors(errs)
		return nil, errs
	}
	return c, nil
}

// filePos is a position in a configuration file.
type filePos struct {
	Line, Column int // 1-based
}

// source remembers where every element and attribute was in the file, keyed
// by indexed path ("xmppd/listeners/c2s[1]@address").
type source struct {
	file string
	pos  map[string]filePos
}

type decoder struct {
	c       *Config
	data    []byte
	lines   []int // byte offset of the start of each line
	dec     *xml.Decoder
	src     *source
	errs    Errors
	bad     map[string]bool // keys with a parse error: validation skips them
	aborted bool

	// anyModule accepts unregistered module elements (decoding them into
	// nothing); used to check the example without every module linked in.
	anyModule bool
	seen      map[string]bool // every key met (also in commented-out elements), without indexes
}

var errAbort = errors.New("abort")

type charsetError string

func (e charsetError) Error() string { return string(e) }

// decode parses data into a Config started from the defaults. The returned
// decoder holds the errors.
func decode(data []byte, name, dataDir string, anyModule bool) (*Config, *decoder) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
	c := defaults(dataDir)
	c.Path = name
	c.src = &source{file: name, pos: map[string]filePos{}}
	d := &decoder{
		c:         c,
		data:      data,
		src:       c.src,
		bad:       map[string]bool{},
		anyModule: anyModule,
		seen:      map[string]bool{},
	}
	d.lines = append(d.lines, 0)
	for i, b := range data {
		if b == '\n' {
			d.lines = append(d.lines, i+1)
		}
	}
	d.dec = xml.NewDecoder(bytes.NewReader(data))
	d.dec.Strict = true
	d.dec.CharsetReader = func(label string, r io.Reader) (io.Reader, error) {
		switch strings.ToLower(label) {
		case "us-ascii", "ascii":
			return r, nil // a subset of UTF-8
		}
		return nil, charsetError(fmt.Sprintf("encoding %q is not supported: write the file in UTF-8", label))
	}
	if err := d.document(); err != nil {
		d.aborted = true
	}
	c.normalizeHosts()
	c.resolvePaths()
	return c, d
}

func (d *decoder) posAt(off int64) filePos {
	if off < 0 {
		off = 0
	}
	if off > int64(len(d.data)) {
		off = int64(len(d.data))
	}
	i := sort.Search(len(d.lines), func(i int) bool { return int64(d.lines[i]) > off })
	return filePos{Line: i, Column: int(off-int64(d.lines[i-1])) + 1}
}

// errorf records an error at key (an indexed key; its position is looked up).
func (d *decoder) errorf(key string, format string, args ...any) {
	d.bad[key] = true
	d.errs = append(d.errs, d.c.errAt(key, fmt.Sprintf(format, args...)))
}

func (d *decoder) syntax(err error, key string) error {
	e := &Error{File: d.src.file, Msg: err.Error()}
	e.Path, e.Attr = displayKey(key)
	var se *xml.SyntaxError
	var ce charsetError
	if errors.As(err, &ce) {
		e.Line = 1
		e.Msg = string(ce)
	} else if errors.As(err, &se) {
		e.Line = se.Line
		e.Msg = "XML syntax error: " + se.Msg
	} else if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		e.Line = len(d.lines)
		e.Msg = "unexpected end of file"
	} else {
		p := d.posAt(d.dec.InputOffset())
		e.Line, e.Column = p.Line, p.Column
	}
	d.errs = append(d.errs, e)
	return errAbort
}

// next returns the next token and the offset at which it starts.
func (d *decoder) next(key string) (xml.Token, int64, error) {
	off := d.dec.InputOffset()
	tok, err := d.dec.Token()
	if err == io.EOF {
		return nil, off, err
	}
	if err != nil {
		return nil, off, d.syntax(err, key)
	}
	return tok, off, nil
}

func (d *decoder) document() error {
	root := false
	for {
		tok, off, err := d.next("xmppd")
		if err == io.EOF {
			if !root {
				d.src.pos["xmppd"] = filePos{Line: 1, Column: 1}
				d.errorf("xmppd", "no <xmppd> root element")
			}
			return nil
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if root {
				d.src.pos["xmppd+"] = d.posAt(off)
				d.errorf("xmppd+", "a second root element <%s> after </xmppd>", qname(t.Name))
				if err := d.dec.Skip(); err != nil {
					return d.syntax(err, "xmppd")
				}
				continue
			}
			root = true
			if t.Name.Local != "xmppd" || t.Name.Space != "" {
				d.src.pos["xmppd"] = d.posAt(off)
				d.errorf("xmppd", "the root element must be <xmppd>, not <%s>", qname(t.Name))
				if err := d.dec.Skip(); err != nil {
					return d.syntax(err, "xmppd")
				}
				continue
			}
			v := reflect.ValueOf(d.c).Elem()
			if err := d.element(t, off, v, infoFor(v.Type()), "xmppd", ""); err != nil {
				return err
			}
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				d.textErr(t, off, "xmppd")
			}
		case xml.ProcInst:
			if t.Target != "xml" {
				d.src.pos["xmppd?"] = d.posAt(off)
				d.errorf("xmppd?", "processing instruction <?%s?> is not allowed", t.Target)
			}
		case xml.Directive:
			d.src.pos["xmppd!"] = d.posAt(off)
			d.errorf("xmppd!", "<!%s> is not allowed", firstWord(t))
		}
	}
}

func firstWord(b []byte) string {
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return truncate(f[0], 20)
}

func (d *decoder) textErr(t xml.CharData, off int64, key string) {
	s := bytes.TrimSpace(t)
	// Point at the text itself, not at the whitespace before it.
	lead := bytes.Index(t, s[:1])
	k := key + "#text"
	d.src.pos[k] = d.posAt(off + int64(lead))
	d.errorf(k, "unexpected text %q", truncate(string(s), 40))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func qname(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return "{" + n.Space + "}" + n.Local
}

// element decodes the element whose start tag t began at off into v,
// described by si. key is v's indexed key; module is the module name when v
// is a module's struct (for the generic enabled attribute).
func (d *decoder) element(t xml.StartElement, off int64, v reflect.Value, si *structInfo, key, module string) error {
	d.src.pos[key] = d.posAt(off)
	d.seen[stripIndexes(key)] = true
	end := d.dec.InputOffset()

	// A repeated child element present in the file replaces the defaults.
	for _, f := range si.fields {
		if f.kind == kindList {
			fv := fieldOf(v, f.index)
			fv.Set(reflect.Zero(fv.Type()))
		}
	}

	// Attributes.
	attrOff := attrOffsets(d.data, off, end)
	given := map[string]bool{}
	for _, a := range t.Attr {
		name := qname(a.Name)
		akey := key + "@" + name
		if o, ok := attrOff[name]; ok {
			d.src.pos[akey] = d.posAt(o)
		}
		if given[name] {
			d.errorf(akey, "attribute given twice")
			continue
		}
		given[name] = true
		d.seen[stripIndexes(akey)] = true
		if module != "" && name == "enabled" {
			on, err := ParseBool(a.Value)
			if err != nil {
				d.errorf(akey, "%v", err)
				continue
			}
			d.c.setModuleEnabled(module, on)
			continue
		}
		f := si.attrs[name]
		if f == nil || a.Name.Space != "" {
			d.errorf(akey, "unknown attribute%s", known("attributes", si.attrNames(), module != ""))
			continue
		}
		if v.IsValid() {
			if err := setScalar(fieldOf(v, f.index), a.Value); err != nil {
				d.errorf(akey, "%v", err)
			}
		}
	}
	for _, f := range si.fields {
		if f.kind == kindAttr && f.required && !given[f.name] {
			d.errorf(key+"@"+f.name, "missing required attribute")
		}
	}

	// Children.
	once := map[string]filePos{}
	count := map[string]int{}
	for {
		tok, off, err := d.next(key)
		if err == io.EOF {
			return d.syntax(io.ErrUnexpectedEOF, key)
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				d.textErr(t, off, key)
			}
		case xml.Comment:
			d.comment(t, frame{si: si, key: key, module: module != ""})
		case xml.ProcInst:
			k := key + "?"
			d.src.pos[k] = d.posAt(off)
			d.errorf(k, "processing instruction <?%s?> is not allowed", t.Target)
		case xml.Directive:
			k := key + "!"
			d.src.pos[k] = d.posAt(off)
			d.errorf(k, "<!%s> is not allowed", firstWord(t))
		case xml.StartElement:
			name := qname(t.Name)
			ckey := key + "/" + name
			f := si.elems[name]
			if f == nil || t.Name.Space != "" {
				d.src.pos[ckey] = d.posAt(off)
				d.errorf(ckey, "unknown element <%s>%s", name, known("elements", si.elemNames(), false))
				if err := d.dec.Skip(); err != nil {
					return d.syntax(err, ckey)
				}
				continue
			}
			if f.kind != kindList {
				if first, dup := once[name]; dup {
					d.src.pos[ckey+"+"] = d.posAt(off)
					d.errorf(ckey+"+", "element given twice (first at line %d)", first.Line)
					if err := d.dec.Skip(); err != nil {
						return d.syntax(err, ckey)
					}
					continue
				}
				once[name] = d.posAt(off)
			}
			var fv reflect.Value
			if v.IsValid() {
				fv = fieldOf(v, f.index)
			}
			switch f.kind {
			case kindElem:
				err = d.element(t, off, fv, f.info, ckey, "")
			case kindList:
				i := count[name]
				count[name]++
				ikey := ckey + "[" + strconv.Itoa(i) + "]"
				if !fv.IsValid() {
					err = d.element(t, off, fv, f.info, ikey, "")
					break
				}
				item := reflect.New(fv.Type().Elem()).Elem()
				if df, ok := item.Addr().Interface().(Defaulter); ok {
					df.SetDefaults()
				}
				err = d.element(t, off, item, f.info, ikey, "")
				fv.Set(reflect.Append(fv, item))
			case kindModules:
				err = d.modules(t, off, ckey)
			}
			if err != nil {
				return err
			}
		}
	}
}

// modules decodes <modules>.
func (d *decoder) modules(t xml.StartElement, off int64, key string) error {
	empty := &structInfo{attrs: map[string]*field{}, elems: map[string]*field{}}
	d.src.pos[key] = d.posAt(off)
	d.seen[key] = true
	for _, a := range t.Attr {
		akey := key + "@" + qname(a.Name)
		if o, ok := attrOffsets(d.data, off, d.dec.InputOffset())[qname(a.Name)]; ok {
			d.src.pos[akey] = d.posAt(o)
		}
		d.errorf(akey, "unknown attribute (<modules> has none)")
	}
	once := map[string]filePos{}
	for {
		tok, off, err := d.next(key)
		if err == io.EOF {
			return d.syntax(io.ErrUnexpectedEOF, key)
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				d.textErr(t, off, key)
			}
		case xml.Comment:
			d.comment(t, frame{key: key, modules: true})
		case xml.ProcInst, xml.Directive:
			k := key + "?"
			d.src.pos[k] = d.posAt(off)
			d.errorf(k, "processing instructions and directives are not allowed")
		case xml.StartElement:
			name := qname(t.Name)
			mkey := key + "/" + name
			m, ok := d.c.Modules[name]
			if !ok || t.Name.Space != "" {
				if d.anyModule && t.Name.Space == "" {
					// Checking the example: read it without a struct.
					if err := d.element(t, off, reflect.Value{}, empty, mkey, ""); err != nil {
						return err
					}
					// Unknown attributes of unregistered modules are fine here.
					d.dropErrorsUnder(mkey)
					continue
				}
				d.src.pos[mkey] = d.posAt(off)
				d.errorf(mkey, "unknown module <%s>%s", name, known("modules", d.c.moduleNames(), false))
				if err := d.dec.Skip(); err != nil {
					return d.syntax(err, mkey)
				}
				continue
			}
			if first, dup := once[name]; dup {
				d.src.pos[mkey+"+"] = d.posAt(off)
				d.errorf(mkey+"+", "module given twice (first at line %d)", first.Line)
				if err := d.dec.Skip(); err != nil {
					return d.syntax(err, mkey)
				}
				continue
			}
			once[name] = d.posAt(off)
			mv := reflect.ValueOf(m).Elem()
			if err := d.element(t, off, mv, infoFor(mv.Type()), mkey, name); err != nil {
				return err
			}
		}
	}
}

// frame is where a comment was met: the element's field table and key, or
// <modules>.
type frame struct {
	si      *structInfo
	key     string
	module  bool // si is a module's struct (enabled is accepted)
	modules bool // inside <modules>
}

// comment looks for commented-out elements and attributes, such as an
// example list item:
//
//	<!-- <exempt jid="admin@example.org"/> -->
//
// and marks their keys as seen, so that the example file can document a
// setting whose default is empty without changing the defaults. Nothing in
// a comment changes the configuration.
func (d *decoder) comment(c xml.Comment, at frame) {
	text := bytes.TrimSpace(c)
	if len(text) == 0 || text[0] != '<' {
		return
	}
	dec := xml.NewDecoder(io.MultiReader(strings.NewReader("<_>"), bytes.NewReader(text), strings.NewReader("</_>")))
	dec.Strict = true
	if _, err := dec.Token(); err != nil { // <_>
		return
	}
	stack := []frame{at}
	for {
		tok, err := dec.Token()
		if err != nil {
			return
		}
		switch t := tok.(type) {
		case xml.EndElement:
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return
			}
		case xml.StartElement:
			top := stack[len(stack)-1]
			next := frame{key: top.key + "/" + t.Name.Local}
			switch {
			case top.modules:
				if m, ok := d.c.Modules[t.Name.Local]; ok {
					next.si, next.module = infoFor(reflect.TypeOf(m).Elem()), true
				}
			case top.si != nil:
				if f := top.si.elems[t.Name.Local]; f != nil {
					if f.kind == kindModules {
						next.modules = true
					}
					next.si = f.info
				}
			}
			if next.si == nil && !next.modules {
				next = frame{} // unknown: nothing below counts
			} else {
				d.seen[stripIndexes(next.key)] = true
				for _, a := range t.Attr {
					if next.si != nil && (next.si.attrs[a.Name.Local] != nil || next.module && a.Name.Local == "enabled") {
						d.seen[stripIndexes(next.key)+"@"+a.Name.Local] = true
					}
				}
			}
			stack = append(stack, next)
		}
	}
}

func (d *decoder) dropErrorsUnder(key string) {
	out := d.errs[:0]
	for _, e := range d.errs {
		if e.Path != key && !strings.HasPrefix(e.Path, key+"/") {
			out = append(out, e)
		}
	}
	d.errs = out
}

func known(what string, names []string, module bool) string {
	if module {
		names = append(append([]string(nil), names...), "enabled")
		sort.Strings(names)
	}
	if len(names) == 0 {
		return " (there are no " + what + ")"
	}
	return " (known " + what + ": " + strings.Join(names, ", ") + ")"
}

// attrOffsets finds where each attribute name starts inside the start tag
// data[start:end] (already checked by encoding/xml), so that an attribute on
// its own line is reported on that line. Decoder.InputPos only gives the end
// of the tag.
func attrOffsets(data []byte, start, end int64) map[string]int64 {
	out := map[string]int64{}
	if start < 0 || end > int64(len(data)) || start >= end {
		return out
	}
	tag := data[start:end]
	i := bytes.IndexByte(tag, '<')
	if i < 0 {
		return out
	}
	isSpace := func(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }
	i++
	for i < len(tag) && !isSpace(tag[i]) && tag[i] != '/' && tag[i] != '>' {
		i++
	}
	for i < len(tag) {
		for i < len(tag) && isSpace(tag[i]) {
			i++
		}
		if i >= len(tag) || tag[i] == '/' || tag[i] == '>' {
			break
		}
		n := i
		for i < len(tag) && !isSpace(tag[i]) && tag[i] != '=' {
			i++
		}
		name := string(tag[n:i])
		if _, dup := out[name]; !dup {
			out[name] = start + int64(n)
		}
		for i < len(tag) && (isSpace(tag[i]) || tag[i] == '=') {
			i++
		}
		if i >= len(tag) {
			break
		}
		q := tag[i]
		if q != '"' && q != '\'' {
			break
		}
		j := bytes.IndexByte(tag[i+1:], q)
		if j < 0 {
			break
		}
		i += j + 2
	}
	return out
}

// stripIndexes turns "xmppd/listeners/c2s[1]@address" into
// "xmppd/listeners/c2s@address".
func stripIndexes(key string) string {
	if !strings.Contains(key, "[") {
		return key
	}
	var b strings.Builder
	skip := false
	for _, r := range key {
		switch {
		case r == '[':
			skip = true
		case r == ']':
			skip = false
		case !skip:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// displayKey splits an indexed key into the path and attribute shown in
// messages. Internal suffixes ("+" for a duplicate, "#text", "?", "!") are
// dropped.
func displayKey(key string) (path, attr string) {
	key = stripIndexes(key)
	path, attr, _ = strings.Cut(key, "@")
	path = strings.TrimRight(path, "+?!")
	path = strings.TrimSuffix(path, "#text")
	return path, attr
}

// position finds the nearest recorded position for key: the key itself, its
// element, or the closest ancestor present in the file.
func (s *source) position(key string) filePos {
	if s == nil {
		return filePos{}
	}
	for k := key; k != ""; {
		if p, ok := s.pos[k]; ok {
			return p
		}
		if i := strings.LastIndexAny(k, "@/"); i >= 0 {
			k = k[:i]
		} else {
			break
		}
	}
	return filePos{}
}

// errAt makes an Error for an indexed key.
func (c *Config) errAt(key, msg string) *Error {
	e := &Error{Msg: msg}
	e.Path, e.Attr = displayKey(key)
	if c.src != nil {
		e.File = c.src.file
		p := c.src.position(key)
		e.Line, e.Column = p.Line, p.Column
	}
	return e
}
