package wire

import (
	"encoding/xml"
	"strconv"
)

// Part is one element taken out of a stanza and written so that it stands
// alone (see Stanza.Parts).
type Part struct {
	Name xml.Name // resolved namespace and local name
	XML  []byte
}

// extract collects the elements at depth (1: the children of the stanza,
// 2: the children of its first child) written standalone: each element
// declares its namespace where it differs from its parent's, with no
// prefixes; attributes in other namespaces get generated prefixes (xml:
// stays xml:). Text is escaped anew. The output means what the input meant
// to an XML parser, whatever prefixes the sender used, so it can be stored
// and sent anywhere later. Use it with Stanza.Decode.
type extract struct {
	depth int
	out   []Part
}

func (x *extract) UnmarshalXML(d *xml.Decoder, _ xml.StartElement) error {
	level := 0 // depth of the current element below the root
	firstDone := false
	var w *writer
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			level++
			if level == x.depth && (x.depth == 1 || !firstDone) {
				w = &writer{}
				x.out = append(x.out, Part{Name: t.Name})
			}
			if w != nil {
				w.start(t)
			}
		case xml.EndElement:
			if level == 0 {
				return nil // the root's end
			}
			if w != nil {
				w.end()
				if level == x.depth {
					x.out[len(x.out)-1].XML = w.buf
					w = nil
				}
			}
			if level == 1 {
				firstDone = true
			}
			level--
		case xml.CharData:
			if w != nil {
				w.text(t)
			}
		}
	}
}

// writer writes elements in the standalone form extract describes.
type writer struct {
	buf     []byte
	open    []xml.Name // the open elements
	pending bool       // a start tag is not closed yet (">" or "/>")
}

func (w *writer) close() {
	if w.pending {
		w.buf = append(w.buf, '>')
		w.pending = false
	}
}

func (w *writer) start(t xml.StartElement) {
	w.close()
	w.buf = append(w.buf, '<')
	w.buf = append(w.buf, t.Name.Local...)
	if n := len(w.open); n == 0 || w.open[n-1].Space != t.Name.Space {
		w.buf = append(w.buf, " xmlns='"...)
		w.buf = AppendEscapedAttr(w.buf, t.Name.Space)
		w.buf = append(w.buf, '\'')
	}
	n := 0
	for _, a := range t.Attr {
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			continue
		}
		w.buf = append(w.buf, ' ')
		switch a.Name.Space {
		case "":
		case NSXML:
			w.buf = append(w.buf, "xml:"...)
		default:
			n++
			p := "ns" + strconv.Itoa(n)
			w.buf = append(w.buf, "xmlns:"+p+"='"...)
			w.buf = AppendEscapedAttr(w.buf, a.Name.Space)
			w.buf = append(w.buf, "' "+p+":"...)
		}
		w.buf = append(w.buf, a.Name.Local...)
		w.buf = append(w.buf, "='"...)
		w.buf = AppendEscapedAttr(w.buf, a.Value)
		w.buf = append(w.buf, '\'')
	}
	w.open = append(w.open, t.Name)
	w.pending = true
}

func (w *writer) end() {
	name := w.open[len(w.open)-1]
	w.open = w.open[:len(w.open)-1]
	if w.pending {
		w.buf = append(w.buf, "/>"...)
		w.pending = false
		return
	}
	w.buf = append(w.buf, "</"...)
	w.buf = append(w.buf, name.Local...)
	w.buf = append(w.buf, '>')
}

func (w *writer) text(t xml.CharData) {
	if len(t) == 0 {
		return
	}
	w.close()
	w.buf = AppendEscapedText(w.buf, string(t))
}

// Parts returns the elements at depth (1: the children of the stanza, 2:
// the children of its first child) written standalone: each declares its
// namespace where it differs from its parent's, with no prefixes, so that it
// can be stored and sent anywhere later, whatever prefixes the sender used.
func (s *Stanza) Parts(depth int) ([]Part, error) {
	x := extract{depth: depth}
	err := s.Decode(&x)
	return x.out, err
}
