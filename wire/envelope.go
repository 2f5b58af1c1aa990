package wire

import (
	"bytes"
	"unicode/utf8"
)

// NSXML is the namespace bound to the reserved xml prefix.
const NSXML = "http://www.w3.org/XML/1998/namespace"

// The helpers below read tags that the scanner has already checked, so
// they can be simple; they still never index out of range, because
// Stanza.Raw may have been built or changed by a caller.

// tagName returns the name of the start tag b[i:] ('<' at b[i]) and the
// index just after it.
func tagName(b []byte, i int) ([]byte, int) {
	if i >= len(b) || b[i] != '<' {
		return nil, len(b)
	}
	j := i + 1
	for j < len(b) && isNameByte(b[j]) {
		j++
	}
	return b[i+1 : j], j
}

// nextAttr reads the attribute starting at b[i] (leading whitespace
// included). It returns its name and raw value, and the index after the
// closing quote. ok is false at the end of the tag, with i at '>' or "/>".
func nextAttr(b []byte, i int) (name, val []byte, next int, ok bool) {
	j := i
	for j < len(b) && isSpace(b[j]) {
		j++
	}
	if j >= len(b) || b[j] == '>' || b[j] == '/' {
		return nil, nil, j, false
	}
	k := j
	for k < len(b) && isNameByte(b[k]) {
		k++
	}
	name = b[j:k]
	for k < len(b) && (isSpace(b[k]) || b[k] == '=') {
		k++
	}
	if k >= len(b) || (b[k] != '\'' && b[k] != '"') || len(name) == 0 {
		return nil, nil, len(b), false
	}
	q := b[k]
	k++
	e := bytes.IndexByte(b[k:], q)
	if e < 0 {
		return nil, nil, len(b), false
	}
	return name, b[k : k+e], k + e + 1, true
}

// tagEnd returns the index after the start tag whose attributes begin at
// b[i], and whether it was an empty-element tag.
func tagEnd(b []byte, i int) (int, bool) {
	for {
		_, _, j, ok := nextAttr(b, i)
		if !ok {
			if j < len(b) && b[j] == '/' {
				return j + 2, true
			}
			return j + 1, false
		}
		i = j
	}
}

// findDecl looks on the start tag at b[i] for the declaration of prefix
// (xmlns:prefix), or of the default namespace when prefix is empty.
func findDecl(b []byte, i int, prefix []byte) ([]byte, bool) {
	_, i = tagName(b, i)
	for {
		name, val, j, ok := nextAttr(b, i)
		if !ok {
			return nil, false
		}
		i = j
		if isDecl(name, prefix) {
			return val, true
		}
	}
}

// isDecl reports whether attribute name declares prefix (or the default
// namespace for an empty prefix).
func isDecl(name, prefix []byte) bool {
	if len(prefix) == 0 {
		return string(name) == "xmlns"
	}
	return len(name) == 6+len(prefix) && string(name[:6]) == "xmlns:" && string(name[6:]) == string(prefix)
}

// splitQName splits "p:local" into its prefix and local part.
func splitQName(name []byte) (prefix, local []byte) {
	if i := bytes.IndexByte(name, ':'); i >= 0 {
		return name[:i], name[i+1:]
	}
	return nil, name
}

// appendAttrValue appends the value of a raw attribute value: references
// replaced and whitespace normalized (XML 1.0 §3.3.3).
func appendAttrValue(dst, raw []byte) []byte {
	if bytes.IndexByte(raw, '&') < 0 && !hasLiteralSpace(raw) {
		return append(dst, raw...)
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case '\t', '\n':
			dst = append(dst, ' ')
		case '\r':
			dst = append(dst, ' ')
			if i+1 < len(raw) && raw[i+1] == '\n' {
				i++
			}
		case '&':
			e := bytes.IndexByte(raw[i:], ';')
			if e < 0 {
				return append(dst, raw[i:]...)
			}
			dst = appendRef(dst, raw[i+1:i+e])
			i += e
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func hasLiteralSpace(b []byte) bool {
	for _, c := range b {
		if c == '\t' || c == '\n' || c == '\r' {
			return true
		}
	}
	return false
}

// appendRef appends the text a reference body (between '&' and ';') stands for.
func appendRef(dst, ref []byte) []byte {
	switch string(ref) {
	case "lt":
		return append(dst, '<')
	case "gt":
		return append(dst, '>')
	case "amp":
		return append(dst, '&')
	case "apos":
		return append(dst, '\'')
	case "quot":
		return append(dst, '"')
	}
	if r, ok := refRune(ref); ok {
		return utf8.AppendRune(dst, r)
	}
	return dst
}

// attrEqual reports whether the raw attribute value means s.
func attrEqual(raw []byte, s string) bool {
	if bytes.IndexByte(raw, '&') < 0 && !hasLiteralSpace(raw) {
		return string(raw) == s
	}
	var tmp [128]byte
	return string(appendAttrValue(tmp[:0], raw)) == s
}

// internNS returns a constant string for well-known namespaces.
func internNS(b []byte) (string, bool) {
	switch string(b) {
	case NSClient:
		return NSClient, true
	case NSServer:
		return NSServer, true
	case NSStream:
		return NSStream, true
	case NSFraming:
		return NSFraming, true
	case NSStanzas:
		return NSStanzas, true
	case NSStreams:
		return NSStreams, true
	case "urn:ietf:params:xml:ns:xmpp-sasl":
		return "urn:ietf:params:xml:ns:xmpp-sasl", true
	case "urn:ietf:params:xml:ns:xmpp-tls":
		return "urn:ietf:params:xml:ns:xmpp-tls", true
	case "urn:ietf:params:xml:ns:xmpp-bind":
		return "urn:ietf:params:xml:ns:xmpp-bind", true
	case "urn:ietf:params:xml:ns:xmpp-session":
		return "urn:ietf:params:xml:ns:xmpp-session", true
	case "urn:xmpp:sm:3":
		return "urn:xmpp:sm:3", true
	case "urn:xmpp:ping":
		return "urn:xmpp:ping", true
	case "jabber:iq:roster":
		return "jabber:iq:roster", true
	case "http://jabber.org/protocol/disco#info":
		return "http://jabber.org/protocol/disco#info", true
	case "http://jabber.org/protocol/disco#items":
		return "http://jabber.org/protocol/disco#items", true
	case "http://jabber.org/protocol/chatstates":
		return "http://jabber.org/protocol/chatstates", true
	case "http://jabber.org/protocol/caps":
		return "http://jabber.org/protocol/caps", true
	case "urn:xmpp:receipts":
		return "urn:xmpp:receipts", true
	case "urn:xmpp:chat-markers:0":
		return "urn:xmpp:chat-markers:0", true
	case "urn:xmpp:carbons:2":
		return "urn:xmpp:carbons:2", true
	case "urn:xmpp:mam:2":
		return "urn:xmpp:mam:2", true
	case "urn:xmpp:csi:0":
		return "urn:xmpp:csi:0", true
	case "jabber:server:dialback":
		return "jabber:server:dialback", true
	case "urn:xmpp:jingle:1":
		return "urn:xmpp:jingle:1", true
	case "urn:xmpp:jingle-message:0":
		return "urn:xmpp:jingle-message:0", true
	case "http://jabber.org/protocol/pubsub":
		return "http://jabber.org/protocol/pubsub", true
	case "urn:xmpp:sid:0":
		return "urn:xmpp:sid:0", true
	}
	return "", false
}

// internName returns a constant string for common element names.
func internName(b []byte) (string, bool) {
	switch string(b) {
	case "message":
		return "message", true
	case "presence":
		return "presence", true
	case "iq":
		return "iq", true
	case "body":
		return "body", true
	case "query":
		return "query", true
	case "ping":
		return "ping", true
	case "bind":
		return "bind", true
	case "session":
		return "session", true
	case "r":
		return "r", true
	case "a":
		return "a", true
	case "enable":
		return "enable", true
	case "resume":
		return "resume", true
	case "auth":
		return "auth", true
	case "response":
		return "response", true
	case "starttls":
		return "starttls", true
	case "open":
		return "open", true
	case "close":
		return "close", true
	case "active":
		return "active", true
	case "inactive":
		return "inactive", true
	case "composing":
		return "composing", true
	case "paused":
		return "paused", true
	case "c":
		return "c", true
	case "x":
		return "x", true
	case "show":
		return "show", true
	case "status":
		return "status", true
	case "priority":
		return "priority", true
	case "request":
		return "request", true
	case "received":
		return "received", true
	case "displayed":
		return "displayed", true
	case "markable":
		return "markable", true
	case "thread":
		return "thread", true
	case "subject":
		return "subject", true
	case "error":
		return "error", true
	case "features":
		return "features", true
	case "pubsub":
		return "pubsub", true
	case "jingle":
		return "jingle", true
	case "result":
		return "result", true
	case "verify":
		return "verify", true
	case "origin-id":
		return "origin-id", true
	case "stanza-id":
		return "stanza-id", true
	}
	return "", false
}

// field is an envelope string being built: a constant, or a range of the
// scratch buffer.
type field struct {
	s    string
	a, b int32
}

func (f field) get(all string) string {
	if f.b > f.a {
		return all[f.a:f.b]
	}
	return f.s
}

// value turns a raw attribute value into a field, without copying when it
// is a well-known namespace or equal to def.
func (r *Reader) nsField(raw []byte, def string) field {
	if string(raw) == def {
		return field{s: def}
	}
	if s, ok := internNS(raw); ok {
		return field{s: s}
	}
	return r.scratchField(raw, true)
}

func (r *Reader) scratchField(raw []byte, attr bool) field {
	a := len(r.scratch)
	if attr {
		r.scratch = appendAttrValue(r.scratch, raw)
	} else {
		r.scratch = append(r.scratch, raw...)
	}
	return field{a: int32(a), b: int32(len(r.scratch))}
}

func (r *Reader) nameField(b []byte) field {
	if s, ok := internName(b); ok {
		return field{s: s}
	}
	return r.scratchField(b, false)
}

// envelope builds the Stanza for the complete element b. It reads the root
// start tag once and the first child's start tag once; only a prefixed
// child whose prefix is declared on neither of them nor on the stream makes
// it look at the root tag again.
func (r *Reader) envelope(b []byte) (*Stanza, error) {
	r.scratch = r.scratch[:0]
	def := r.ctx.def
	name, i := tagName(b, 0)
	prefix, local := splitQName(name)
	var fType, fID, fTo, fFrom, fLang field
	var rootDef, rootPDecl []byte
	var hasRootDef, hasRootPDecl, rootDecls bool
	for {
		an, av, j, ok := nextAttr(b, i)
		if !ok {
			break
		}
		i = j
		switch string(an) {
		case "type":
			fType = r.scratchField(av, true)
		case "id":
			fID = r.scratchField(av, true)
		case "to":
			fTo = r.scratchField(av, true)
		case "from":
			fFrom = r.scratchField(av, true)
		case "xml:lang":
			fLang = r.scratchField(av, true)
		case "xmlns":
			rootDef, hasRootDef = av, true
		default:
			if len(an) > 6 && string(an[:6]) == "xmlns:" {
				rootDecls = true
				if string(an[6:]) == string(prefix) {
					rootPDecl, hasRootPDecl = av, true
				}
			}
		}
	}
	fName := r.nameField(local)
	var fNS field
	switch {
	case len(prefix) == 0 && hasRootDef:
		fNS = r.nsField(rootDef, def)
	case len(prefix) == 0:
		fNS = field{s: def}
	case hasRootPDecl:
		fNS = r.nsField(rootPDecl, def)
	case string(prefix) == "xml":
		fNS = field{s: NSXML}
	default:
		s, ok := r.ctx.lookup(prefix)
		if !ok {
			return nil, &Error{"bad-namespace-prefix", "undeclared prefix " + string(prefix)}
		}
		fNS = field{s: s}
	}

	var fPName, fPNS field
	if c := r.sc.child; c > 0 {
		cname, i := tagName(b, c)
		cprefix, clocal := splitQName(cname)
		fPName = r.nameField(clocal)
		var decl []byte
		found := false
		for {
			an, av, j, ok := nextAttr(b, i)
			if !ok {
				break
			}
			i = j
			if isDecl(an, cprefix) {
				decl, found = av, true
				break
			}
		}
		switch {
		case found:
		case len(cprefix) == 0 && hasRootDef:
			decl, found = rootDef, true
		case len(cprefix) == 0:
			fPNS = field{s: def}
		case string(cprefix) == "xml":
			fPNS = field{s: NSXML}
		default:
			if rootDecls {
				decl, found = findDecl(b, 0, cprefix)
			}
			if !found {
				s, ok := r.ctx.lookup(cprefix)
				if !ok {
					return nil, &Error{"bad-namespace-prefix", "undeclared prefix " + string(cprefix)}
				}
				fPNS = field{s: s}
			}
		}
		if found {
			fPNS = r.nsField(decl, def)
		}
	}

	raw := make([]byte, len(b))
	copy(raw, b)
	st := &Stanza{Raw: raw, ctx: r.ctx}
	var all string
	if len(r.scratch) > 0 {
		all = string(r.scratch)
	}
	st.Name = fName.get(all)
	st.NS = fNS.get(all)
	st.Type = fType.get(all)
	st.ID = fID.get(all)
	st.To = fTo.get(all)
	st.From = fFrom.get(all)
	st.Lang = fLang.get(all)
	st.PayloadName = fPName.get(all)
	st.PayloadNS = fPNS.get(all)
	st.Kind = kindOf(st.Name, st.NS, r.ns)
	r.trimScratch()
	return st, nil
}

func kindOf(name, ns, content string) Kind {
	if ns != content || ns == "" {
		return KindOther
	}
	switch name {
	case "message":
		return KindMessage
	case "presence":
		return KindPresence
	case "iq":
		return KindIQ
	}
	return KindOther
}

// parseHeader reads the stream tag b (complete, checked by the scanner).
func (r *Reader) parseHeader(b []byte, empty bool) (Header, error) {
	name, i := tagName(b, 0)
	prefix, local := splitQName(name)
	var h Header
	var def, pdecl []byte
	var hasDef, hasP bool
	var decls []nsDecl
	for {
		an, av, j, ok := nextAttr(b, i)
		if !ok {
			break
		}
		i = j
		switch string(an) {
		case "to":
			h.To = attrString(av)
		case "from":
			h.From = attrString(av)
		case "id":
			h.ID = attrString(av)
		case "version":
			h.Version = attrString(av)
		case "xml:lang":
			h.Lang = attrString(av)
		case "xmlns":
			def, hasDef = av, true
		default:
			if isDecl(an, prefix) {
				pdecl, hasP = av, true
			}
			if hasPrefix(an, "xmlns:") {
				decls = append(decls, nsDecl{prefix: string(an[6:]), uri: attrString(av)})
			}
		}
	}
	elemNS := def
	hasNS := hasDef
	if len(prefix) > 0 {
		elemNS, hasNS = pdecl, hasP
	}
	switch string(local) {
	case "open":
		if !hasNS || !attrEqual(elemNS, NSFraming) {
			return h, &Error{"invalid-namespace", "<open/> not in the framing namespace"}
		}
		if !empty {
			return h, notWellFormed("<open> must be an empty element")
		}
		h.Framed = true
		h.NS = NSClient
		r.framed = true
		r.ns = NSClient
		r.endName = ""
		r.ctx = &nsContext{def: NSClient, lang: streamLang(h.Lang)}
		return h, nil
	case "stream":
		if len(prefix) == 0 {
			return h, &Error{"bad-namespace-prefix", "the stream element needs a prefix"}
		}
		if string(prefix) == "xml" || string(prefix) == "xmlns" || !hasP {
			return h, &Error{"bad-namespace-prefix", "undeclared stream prefix"}
		}
		if !attrEqual(pdecl, NSStream) {
			return h, &Error{"invalid-namespace", "wrong stream namespace"}
		}
		switch {
		case hasDef && attrEqual(def, NSClient):
			h.NS = NSClient
		case hasDef && attrEqual(def, NSServer):
			h.NS = NSServer
		default:
			return h, &Error{"invalid-namespace", "unsupported content namespace"}
		}
		if empty {
			return h, &Error{"bad-format", "empty stream element"}
		}
		r.framed = false
		r.ns = h.NS
		r.endName = string(name)
		r.ctx = &nsContext{def: h.NS, decls: decls, lang: streamLang(h.Lang)}
		return h, nil
	}
	return h, &Error{"bad-format", "expected a stream header"}
}

// maxLang bounds the stream language applied to stanzas (RFC 5646 §4.4.1
// asks implementations to keep at least 35 characters).
const maxLang = 64

// streamLang returns the header's xml:lang when it looks like a language
// tag (letters, digits, '-' and '_', at most maxLang bytes), else "".
// Only such a value is copied into the stanzas of the stream.
func streamLang(l string) string {
	if len(l) > maxLang {
		return ""
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return ""
		}
	}
	return l
}

func attrString(raw []byte) string {
	return string(appendAttrValue(nil, raw))
}
