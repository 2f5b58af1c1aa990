package wire

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"

	"github.com/beevik/etree"
)

// Contexts for ParseElement's usual default namespaces, shared.
var (
	ctxClient = &nsContext{def: NSClient}
	ctxServer = &nsContext{def: NSServer}
	ctxNone   = &nsContext{}
)

// ParseElement parses one complete element (a WebSocket frame, a stored
// stanza, a test fixture). Whitespace may surround it; anything else is a
// not-well-formed Error. defaultNS is the namespace unprefixed names are in
// when the element does not declare one (the content namespace: jabber:client
// for c2s); stanzas in it get their Kind.
func ParseElement(b []byte, defaultNS string) (*Stanza, error) {
	ctx := ctxNone
	switch defaultNS {
	case NSClient:
		ctx = ctxClient
	case NSServer:
		ctx = ctxServer
	case "":
	default:
		ctx = &nsContext{def: defaultNS}
	}
	r := Reader{
		buf:      b,
		w:        len(b),
		max:      len(b) + 1,
		srcErr:   io.EOF,
		single:   true,
		inStream: true,
		ns:       defaultNS,
		ctx:      ctx,
	}
	st, err := r.Next()
	if err != nil {
		if err == io.EOF {
			return nil, notWellFormed("no element")
		}
		return nil, err
	}
	for _, c := range b[r.r:] {
		if !isSpace(c) {
			return nil, notWellFormed("data after the element")
		}
	}
	return st, nil
}

// defNS is the default namespace in scope around the element.
func (st *Stanza) defNS() string {
	if st.ctx != nil {
		return st.ctx.def
	}
	return st.NS
}

// matchNS reports whether prefix, used on the tag at b[i], is bound to ns.
func (st *Stanza) matchNS(b []byte, i int, prefix []byte, ns string) bool {
	if string(prefix) == "xml" {
		return ns == NSXML
	}
	if v, ok := findDecl(b, i, prefix); ok {
		return attrEqual(v, ns)
	}
	if i != 0 {
		if v, ok := findDecl(b, 0, prefix); ok {
			return attrEqual(v, ns)
		}
	}
	if len(prefix) == 0 {
		return st.defNS() == ns
	}
	uri, ok := st.ctx.lookup(prefix)
	return ok && uri == ns
}

// HasChild reports whether the element has a child (first level only) named
// name in namespace ns.
func (st *Stanza) HasChild(ns, name string) bool {
	b := st.Raw
	_, i := tagName(b, 0)
	i, empty := tagEnd(b, i)
	if empty {
		return false
	}
	depth := 1
	for i < len(b) {
		j := bytes.IndexByte(b[i:], '<')
		if j < 0 {
			return false
		}
		i += j
		rest := b[i:]
		switch {
		case hasPrefix(rest, "<![CDATA["):
			k := bytes.Index(rest, []byte("]]>"))
			if k < 0 {
				return false
			}
			i += k + 3
			continue
		case len(rest) > 1 && rest[1] == '/':
			depth--
			if depth == 0 {
				return false
			}
			k := bytes.IndexByte(rest, '>')
			if k < 0 {
				return false
			}
			i += k + 1
			continue
		}
		cname, after := tagName(b, i)
		end, empty := tagEnd(b, after)
		if depth == 1 {
			prefix, local := splitQName(cname)
			if string(local) == name && st.matchNS(b, i, prefix, ns) {
				return true
			}
		}
		if !empty {
			depth++
		}
		i = end
	}
	return false
}

// SetAddrs rewrites the from and to attributes of the start tag, adding or
// replacing them; an empty value removes the attribute. Raw is replaced by
// a new slice (the old one is not modified) and From and To are updated.
func (st *Stanza) SetAddrs(from, to string) { st.SetAddrsLang(from, to, "") }

// SetAddrsLang is SetAddrs that also gives the element the language lang
// when its start tag has no xml:lang (RFC 6120 §4.7.4: a server applies
// the default language of the sender's stream, StreamLang, to the stanzas
// it routes that do not name their own). An xml:lang the element carries,
// even an empty one, is kept. It is one rewrite of the start tag.
func (st *Stanza) SetAddrsLang(from, to, lang string) {
	b := st.Raw
	_, i := tagName(b, 0)
	if i >= len(b) {
		st.From, st.To = from, to
		return
	}
	out := make([]byte, 0, len(b)+len(from)+len(to)+len(lang)+28)
	out = append(out, b[:i]...)
	seg := i // start of the bytes not yet copied
	hasLang := false
	for {
		name, _, j, ok := nextAttr(b, i)
		if !ok {
			break
		}
		switch string(name) {
		case "from", "to":
			out = append(out, b[seg:i]...)
			seg = j
		case "xml:lang":
			hasLang = true
		}
		i = j
	}
	out = append(out, b[seg:i]...)
	if from != "" {
		out = append(out, " from='"...)
		out = AppendEscapedAttr(out, from)
		out = append(out, '\'')
	}
	if to != "" {
		out = append(out, " to='"...)
		out = AppendEscapedAttr(out, to)
		out = append(out, '\'')
	}
	if lang != "" && !hasLang {
		out = append(out, " xml:lang='"...)
		out = AppendEscapedAttr(out, lang)
		out = append(out, '\'')
		st.Lang = lang
	}
	out = append(out, b[i:]...)
	st.Raw = out
	st.From, st.To = from, to
}

// StreamLang is the xml:lang of the header of the stream the element was
// read from: "" when the header had none, or when it was not a plausible
// language tag (letters, digits, '-' and '_', at most 64 bytes).
func (st *Stanza) StreamLang() string {
	if st.ctx == nil {
		return ""
	}
	return st.ctx.lang
}

// streamDecl returns the stream header's declaration of the root's prefix
// when the root uses one it does not declare itself. That is the only place
// a prefix of the header can appear: the Reader refuses it anywhere else
// (and on stanzas), so the cost of what follows does not depend on how
// many prefixes the header declared.
func (st *Stanza) streamDecl() (nsDecl, bool) {
	if st.ctx == nil || len(st.ctx.decls) == 0 {
		return nsDecl{}, false
	}
	qname, _ := tagName(st.Raw, 0)
	prefix, _ := splitQName(qname)
	if len(prefix) == 0 || string(prefix) == "xml" {
		return nsDecl{}, false
	}
	if _, ok := findDecl(st.Raw, 0, prefix); ok {
		return nsDecl{}, false
	}
	uri, ok := st.ctx.lookup(prefix)
	return nsDecl{prefix: string(prefix), uri: uri}, ok
}

// nsWrapper is a start tag declaring what the element inherits from its
// stream, so that decoders resolve it as the Reader did.
func (st *Stanza) nsWrapper() []byte {
	w := append(make([]byte, 0, 64), "<w xmlns='"...)
	w = AppendEscapedAttr(w, st.defNS())
	w = append(w, '\'')
	if d, ok := st.streamDecl(); ok {
		w = append(w, " xmlns:"...)
		w = append(w, d.prefix...)
		w = append(w, "='"...)
		w = AppendEscapedAttr(w, d.uri)
		w = append(w, '\'')
	}
	return append(w, '>')
}

// Decode unmarshals the element into v with encoding/xml. Names are
// resolved as on the stream: the top-level element and its unprefixed
// children are in the stream's default namespace unless they declare
// another, so an XMLName of "jabber:client message" matches a message read
// from a c2s stream.
func (st *Stanza) Decode(v any) error {
	d := xml.NewDecoder(&twoReader{st.nsWrapper(), st.Raw})
	if _, err := d.Token(); err != nil {
		return err
	}
	return d.Decode(v)
}

// twoReader reads a, then b. It is an io.ByteReader, so encoding/xml reads
// it directly instead of through a 4 KiB bufio.Reader of its own (which
// was most of what a Decode allocated).
type twoReader struct{ a, b []byte }

func (r *twoReader) Read(p []byte) (int, error) {
	if len(r.a) == 0 {
		r.a, r.b = r.b, nil
	}
	if len(r.a) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.a)
	r.a = r.a[n:]
	return n, nil
}

func (r *twoReader) ReadByte() (byte, error) {
	if len(r.a) == 0 {
		r.a, r.b = r.b, nil
	}
	if len(r.a) == 0 {
		return 0, io.EOF
	}
	c := r.a[0]
	r.a = r.a[1:]
	return c, nil
}

// Element parses Raw into an etree element (for cold paths: stored
// payloads, forms, configuration). The root declares its namespace (and the
// stream-level prefixes it uses), so NamespaceURI works on it and its
// descendants.
func (st *Stanza) Element() (*etree.Element, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(st.Raw); err != nil {
		return nil, err
	}
	root := doc.Root()
	if root == nil {
		return nil, errors.New("wire: no element")
	}
	declare := func(key, uri string) {
		if root.SelectAttr(key) != nil {
			return
		}
		root.CreateAttr(key, uri)
		a := root.Attr
		last := a[len(a)-1]
		copy(a[1:], a[:len(a)-1])
		a[0] = last
	}
	if d, ok := st.streamDecl(); ok {
		declare("xmlns:"+d.prefix, d.uri)
	}
	if root.Space != "" && st.NS != "" {
		declare("xmlns:"+root.Space, st.NS)
	}
	if def := st.defNS(); def != "" {
		declare("xmlns", def)
	}
	return root, nil
}
