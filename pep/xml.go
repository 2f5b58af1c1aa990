package pep

import (
	"strings"

	"github.com/beevik/etree"

	"github.com/xmppd/xmppd/wire"
)

// Requests, payloads and forms are cold paths: they are read with etree
// (wire.Stanza.Element), as docs/ARCHITECTURE.md allows.

// child returns the first child element of e named local in namespace ns.
func child(e *etree.Element, ns, local string) *etree.Element {
	if e == nil {
		return nil
	}
	for _, c := range e.ChildElements() {
		if c.Tag == local && c.NamespaceURI() == ns {
			return c
		}
	}
	return nil
}

// children returns the child elements of e named local in namespace ns.
func children(e *etree.Element, ns, local string) []*etree.Element {
	var out []*etree.Element
	if e == nil {
		return nil
	}
	for _, c := range e.ChildElements() {
		if c.Tag == local && c.NamespaceURI() == ns {
			out = append(out, c)
		}
	}
	return out
}

// attr returns the value of an unprefixed attribute ("" if absent).
func attr(e *etree.Element, key string) string {
	for _, a := range e.Attr {
		if a.Space == "" && a.Key == key {
			return a.Value
		}
	}
	return ""
}

// standalone serializes e so that it means the same outside its document:
// its default namespace and every prefix used in it that an ancestor
// declares are declared on its root.
func standalone(e *etree.Element) []byte {
	cp := e.Copy()
	if e.Space == "" && !hasDecl(cp, "") {
		cp.CreateAttr("xmlns", e.NamespaceURI())
	}
	used := map[string]bool{}
	var walk func(x *etree.Element)
	walk = func(x *etree.Element) {
		if x.Space != "" {
			used[x.Space] = true
		}
		for _, a := range x.Attr {
			if a.Space != "" && a.Space != "xmlns" && a.Space != "xml" {
				used[a.Space] = true
			}
		}
		for _, c := range x.ChildElements() {
			walk(c)
		}
	}
	walk(cp)
	for p := range used {
		if hasDecl(cp, p) {
			continue
		}
		if uri := lookupPrefix(e, p); uri != "" {
			cp.CreateAttr("xmlns:"+p, uri)
		}
	}
	return serialize(cp)
}

// serialize writes an element with etree's default escaping and
// single-quoted attributes.
func serialize(e *etree.Element) []byte {
	doc := etree.NewDocument()
	doc.WriteSettings.AttrSingleQuote = true
	doc.SetRoot(e)
	b, err := doc.WriteToBytes()
	if err != nil {
		return nil
	}
	return b
}

// hasDecl reports whether e declares prefix (the default namespace for "").
func hasDecl(e *etree.Element, prefix string) bool {
	for _, a := range e.Attr {
		if prefix == "" && a.Space == "" && a.Key == "xmlns" {
			return true
		}
		if prefix != "" && a.Space == "xmlns" && a.Key == prefix {
			return true
		}
	}
	return false
}

// lookupPrefix resolves prefix on e and its ancestors.
func lookupPrefix(e *etree.Element, prefix string) string {
	for x := e; x != nil; x = x.Parent() {
		for _, a := range x.Attr {
			if a.Space == "xmlns" && a.Key == prefix {
				return a.Value
			}
		}
	}
	return ""
}

// parsePayload parses a stored payload (one standalone element).
func parsePayload(b []byte) *etree.Element {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		return nil
	}
	return doc.Root()
}

// appendText appends escaped character data.
func appendText(b []byte, s string) []byte { return wire.AppendEscapedText(b, s) }

// parseBool reads an XML Schema boolean (XEP-0004 §3.3).
func parseBool(s string) (v, ok bool) {
	switch strings.TrimSpace(s) {
	case "1", "true":
		return true, true
	case "0", "false":
		return false, true
	}
	return false, false
}
