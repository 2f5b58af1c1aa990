package wire

import (
	"bytes"
	"iter"
)

// Child is a first-level child element of a Stanza, as Children finds it.
type Child struct {
	Name string // local name
	NS   string // namespace, resolved as on the stream ("" if undeclared)
	// Raw is the whole child element, a subslice of the stanza's Raw
	// (valid until the stanza's Raw is replaced; do not modify it).
	Raw []byte
	// Start is the child's offset in the stanza's Raw.
	Start int

	attrs int // offset in Raw where the attributes start
}

// Attr returns the unescaped value of the child's attribute name (a
// qualified name as written, e.g. "id" or "xml:lang").
func (c Child) Attr(name string) (string, bool) {
	i := c.attrs
	for {
		an, av, j, ok := nextAttr(c.Raw, i)
		if !ok {
			return "", false
		}
		if string(an) == name {
			return attrString(av), true
		}
		i = j
	}
}

// Children iterates over the first-level child elements, in document order.
func (st *Stanza) Children() iter.Seq[Child] {
	return func(yield func(Child) bool) {
		st.eachChild(func(start, end int) bool {
			b := st.Raw
			qname, after := tagName(b, start)
			prefix, local := splitQName(qname)
			c := Child{Name: string(local), Raw: b[start:end:end], Start: start, attrs: after - start}
			c.NS, _ = st.resolveNS(b, start, prefix)
			return yield(c)
		})
	}
}

// eachChild calls fn with the byte range of every first-level child
// element until fn returns false.
func (st *Stanza) eachChild(fn func(start, end int) bool) {
	b := st.Raw
	_, i := tagName(b, 0)
	i, empty := tagEnd(b, i)
	if empty {
		return
	}
	depth, start := 1, -1
	for i < len(b) {
		j := bytes.IndexByte(b[i:], '<')
		if j < 0 {
			return
		}
		i += j
		rest := b[i:]
		switch {
		case hasPrefix(rest, "<![CDATA["):
			k := bytes.Index(rest, []byte("]]>"))
			if k < 0 {
				return
			}
			i += k + 3
			continue
		case len(rest) > 1 && rest[1] == '/':
			depth--
			if depth == 0 {
				return
			}
			k := bytes.IndexByte(rest, '>')
			if k < 0 {
				return
			}
			i += k + 1
			if depth == 1 && start >= 0 {
				if !fn(start, i) {
					return
				}
				start = -1
			}
			continue
		}
		_, after := tagName(b, i)
		end, empty := tagEnd(b, after)
		if end > len(b) {
			return
		}
		if depth == 1 {
			if empty {
				if !fn(i, end) {
					return
				}
			} else {
				start = i
			}
		}
		if !empty {
			depth++
		}
		i = end
	}
}

// resolveNS returns the namespace prefix stands for on the first-level
// child tag at b[i]: its own declaration, the root's, or the stream's.
func (st *Stanza) resolveNS(b []byte, i int, prefix []byte) (string, bool) {
	if string(prefix) == "xml" {
		return NSXML, true
	}
	if v, ok := findDecl(b, i, prefix); ok {
		return attrString(v), true
	}
	if i != 0 {
		if v, ok := findDecl(b, 0, prefix); ok {
			return attrString(v), true
		}
	}
	if len(prefix) == 0 {
		return st.defNS(), true
	}
	return st.ctx.lookup(prefix)
}

// ChildAttr returns attribute attr of the first first-level child named
// name in namespace ns.
func (st *Stanza) ChildAttr(ns, name, attr string) (string, bool) {
	for c := range st.Children() {
		if c.Name == name && c.NS == ns {
			return c.Attr(attr)
		}
	}
	return "", false
}

// RemoveChildren removes every first-level child element for which match
// returns true and reports how many it removed. When it removes any, Raw is
// replaced by a new slice (the old one is not modified); text around the
// removed elements stays. An element left with no content keeps its
// start and end tags.
func (st *Stanza) RemoveChildren(match func(Child) bool) int {
	var cut [][2]int
	for c := range st.Children() {
		if match(c) {
			cut = append(cut, [2]int{c.Start, c.Start + len(c.Raw)})
		}
	}
	if len(cut) == 0 {
		return 0
	}
	b := st.Raw
	n := len(b)
	for _, r := range cut {
		n -= r[1] - r[0]
	}
	out := make([]byte, 0, n)
	prev := 0
	for _, r := range cut {
		out = append(out, b[prev:r[0]]...)
		prev = r[1]
	}
	st.Raw = append(out, b[prev:]...)
	return len(cut)
}

// Standalone returns the element with the namespaces it inherits from its
// stream declared on its root (the default namespace, and the stream
// header's prefix when the root's name uses one; the Reader allows it
// nowhere else), so that it means the same inside another
// document: embedded in a <forwarded/>, stored, sent on another stream. It
// returns Raw itself when nothing needs declaring.
func (st *Stanza) Standalone() []byte {
	b := st.Raw
	_, i := tagName(b, 0)
	if i >= len(b) {
		return b
	}
	var add []byte
	if def := st.defNS(); def != "" {
		if _, ok := findDecl(b, 0, nil); !ok {
			add = append(add, " xmlns='"...)
			add = AppendEscapedAttr(add, def)
			add = append(add, '\'')
		}
	}
	if d, ok := st.streamDecl(); ok {
		add = append(add, " xmlns:"...)
		add = append(add, d.prefix...)
		add = append(add, "='"...)
		add = AppendEscapedAttr(add, d.uri)
		add = append(add, '\'')
	}
	if len(add) == 0 {
		return b
	}
	out := make([]byte, 0, len(b)+len(add))
	out = append(out, b[:i]...)
	out = append(out, add...)
	return append(out, b[i:]...)
}
