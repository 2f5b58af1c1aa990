package private

import (
	"encoding/xml"
	"strconv"

	"github.com/xmppd/xmppd/wire"
)

// element is one element taken out of a stanza and written so that it
// stands alone.
type element struct {
	Name xml.Name // resolved namespace and local name
	XML  []byte
}

// extract collects the elements at depth (1: the children of the stanza,
// 2: the children of its first child) written standalone: each element
// declares its namespace where it differs from its parent's, with no
// prefixes; attributes in other namespaces get generated prefixes (xml:
// stays xml:). Text is escaped anew. The output means what the input meant
// to an XML parser, whatever prefixes the sender used, so it can be stored
// and sent anywhere later. Use it with wire.Stanza.Decode.
type extract struct {
	depth int
	out   []element
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
				x.out = append(x.out, element{Name: t.Name})
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
		w.buf = wire.AppendEscapedAttr(w.buf, t.Name.Space)
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
		case wire.NSXML:
			w.buf = append(w.buf, "xml:"...)
		default:
			n++
			p := "ns" + strconv.Itoa(n)
			w.buf = append(w.buf, "xmlns:"+p+"='"...)
			w.buf = wire.AppendEscapedAttr(w.buf, a.Name.Space)
			w.buf = append(w.buf, "' "+p+":"...)
		}
		w.buf = append(w.buf, a.Name.Local...)
		w.buf = append(w.buf, "='"...)
		w.buf = wire.AppendEscapedAttr(w.buf, a.Value)
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
	w.buf = wire.AppendEscapedText(w.buf, string(t))
}
