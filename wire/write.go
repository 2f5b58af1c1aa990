package wire

import (
	"bytes"
	"unicode/utf8"
)

// AppendEscapedText appends s escaped for character data. Characters that
// XML cannot carry (control characters, invalid UTF-8, U+FFFE/U+FFFF) are
// replaced by U+FFFD, so the output is always well-formed.
func AppendEscapedText(dst []byte, s string) []byte { return appendEscaped(dst, s, false) }

// AppendEscapedAttr appends s escaped for an attribute value in either kind
// of quotes. Tabs and line breaks are written as character references so
// that attribute-value normalization does not turn them into spaces.
func AppendEscapedAttr(dst []byte, s string) []byte { return appendEscaped(dst, s, true) }

func appendEscaped(dst []byte, s string, attr bool) []byte {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		var esc string
		n := 1
		if c < utf8.RuneSelf {
			switch {
			case c == '<':
				esc = "&lt;"
			case c == '>':
				esc = "&gt;"
			case c == '&':
				esc = "&amp;"
			case c == '\'' && attr:
				esc = "&apos;"
			case c == '"' && attr:
				esc = "&quot;"
			case c == '\r':
				esc = "&#xD;"
			case c == '\n' && attr:
				esc = "&#xA;"
			case c == '\t' && attr:
				esc = "&#x9;"
			case c < 0x20 && c != '\n' && c != '\t':
				esc = "\uFFFD"
			default:
				i++
				continue
			}
		} else {
			var r rune
			r, n = utf8.DecodeRuneInString(s[i:])
			if (r != utf8.RuneError || n != 1) && r != 0xFFFE && r != 0xFFFF {
				i += n
				continue
			}
			esc = "\uFFFD"
		}
		dst = append(dst, s[last:i]...)
		dst = append(dst, esc...)
		i += n
		last = i
	}
	return append(dst, s[last:]...)
}

// appendAttr is AppendAttr leaving out an empty value.
func appendAttr(dst []byte, name, value string) []byte {
	if value == "" {
		return dst
	}
	return AppendAttr(dst, name, value)
}

// AppendAttr appends " name='value'" to dst, value escaped.
func AppendAttr(dst []byte, name, value string) []byte {
	dst = append(dst, ' ')
	dst = append(dst, name...)
	dst = append(dst, "='"...)
	dst = AppendEscapedAttr(dst, value)
	return append(dst, '\'')
}

// StreamHeader is the server's stream header answering a client or peer:
// <open xmlns='urn:ietf:params:xml:ns:xmpp-framing' …/> when h.Framed,
// else the XML declaration and <stream:stream …> with h.NS (jabber:client
// if empty) as the default namespace. Empty attributes are left out; the
// version is h.Version or 1.0.
func StreamHeader(h Header) []byte {
	version := h.Version
	if version == "" {
		version = "1.0"
	}
	b := make([]byte, 0, 256)
	if h.Framed {
		b = append(b, "<open xmlns='"+NSFraming+"'"...)
	} else {
		ns := h.NS
		if ns == "" {
			ns = NSClient
		}
		b = append(b, "<?xml version='1.0'?><stream:stream xmlns='"...)
		b = AppendEscapedAttr(b, ns)
		b = append(b, "' xmlns:stream='"+NSStream+"'"...)
	}
	b = appendAttr(b, "id", h.ID)
	b = appendAttr(b, "from", h.From)
	b = appendAttr(b, "to", h.To)
	b = appendAttr(b, "version", version)
	b = appendAttr(b, "xml:lang", h.Lang)
	if h.Framed {
		return append(b, "/>"...)
	}
	return append(b, '>')
}

// StreamError is a stream error element with the RFC 6120 §4.9.3 condition
// cond and an optional text. It declares the stream prefix itself, so it is
// also a complete document for RFC 7395 framing.
func StreamError(cond, text string) []byte {
	b := make([]byte, 0, 160+len(cond)+len(text))
	b = append(b, "<stream:error xmlns:stream='"+NSStream+"'><"...)
	b = append(b, cond...)
	b = append(b, " xmlns='"+NSStreams+"'/>"...)
	if text != "" {
		b = append(b, "<text xmlns='"+NSStreams+"'>"...)
		b = AppendEscapedText(b, text)
		b = append(b, "</text>"...)
	}
	return append(b, "</stream:error>"...)
}

// StreamClose ends a stream: </stream:stream>, or the framing <close/>.
func StreamClose(framed bool) []byte {
	if framed {
		return []byte("<close xmlns='" + NSFraming + "'/>")
	}
	return []byte("</stream:stream>")
}

// ErrorReply is the RFC 6120 §8.3 error stanza answering st: the same
// element name and id, from and to swapped, type='error', and
// <error type=errType><cond xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
// [<text>]</error>. A message or presence keeps its original children
// before the error (RFC 6120 §8.3.1 allows it); an iq carries only the
// error. It returns nil when st is itself an error: errors are never
// answered with errors.
func ErrorReply(st *Stanza, errType, cond, text string) []byte {
	if st.Type == "error" {
		return nil
	}
	name := st.Name
	if name == "" {
		name = "message"
	}
	b := make([]byte, 0, 192+len(st.ID)+len(st.From)+len(st.To)+len(cond)+len(text))
	b = append(b, '<')
	b = append(b, name...)
	b = appendAttr(b, "from", st.To)
	b = appendAttr(b, "to", st.From)
	b = appendAttr(b, "id", st.ID)
	b = append(b, " type='error'"...)

	// An explicit default namespace on the original (WebSocket frames carry
	// one) is kept; a message or presence also keeps its children and the
	// prefix declarations they may rely on.
	var inner []byte
	raw := st.Raw
	keepChildren := st.Kind != KindIQ
	qname, i := tagName(raw, 0)
	prefix, _ := splitQName(qname)
	for {
		an, av, j, ok := nextAttr(raw, i)
		if !ok {
			break
		}
		i = j
		if (keepChildren && hasPrefix(an, "xmlns:")) || (string(an) == "xmlns" && len(prefix) == 0) {
			b = append(b, ' ')
			b = append(b, an...)
			b = append(b, "='"...)
			b = AppendEscapedAttr(b, attrString(av))
			b = append(b, '\'')
		}
	}
	if end, empty := tagEnd(raw, i); keepChildren && !empty && len(prefix) == 0 {
		// the root's end tag is the last tag of Raw
		if close := bytes.LastIndexByte(raw, '<'); close >= end && end <= len(raw) {
			inner = raw[end:close]
		}
	}
	b = append(b, '>')
	b = append(b, inner...)
	b = append(b, "<error type='"...)
	b = AppendEscapedAttr(b, errType)
	b = append(b, "'><"...)
	b = append(b, cond...)
	b = append(b, " xmlns='"+NSStanzas+"'/>"...)
	if text != "" {
		b = append(b, "<text xmlns='"+NSStanzas+"'>"...)
		b = AppendEscapedText(b, text)
		b = append(b, "</text>"...)
	}
	b = append(b, "</error></"...)
	b = append(b, name...)
	return append(b, '>')
}

// InsertChild returns a copy of the complete element raw with child added
// as its last child (an empty element <x …/> is opened up). raw must be a
// well-formed element as Reader returns it.
func InsertChild(raw, child []byte) []byte {
	trimmed := bytes.TrimRight(raw, " \t\r\n")
	out := make([]byte, 0, len(trimmed)+len(child)+16)
	if bytes.HasSuffix(trimmed, []byte("/>")) && bytes.Count(trimmed, []byte("<")) == 1 {
		end := len(trimmed) - 2
		name := trimmed[1:]
		if i := bytes.IndexAny(name, " \t\r\n/"); i >= 0 {
			name = name[:i]
		}
		out = append(out, trimmed[:end]...)
		out = append(out, '>')
		out = append(out, child...)
		out = append(out, "</"...)
		out = append(out, name...)
		return append(out, '>')
	}
	i := bytes.LastIndex(trimmed, []byte("</"))
	if i < 0 {
		return append(out, raw...)
	}
	out = append(out, trimmed[:i]...)
	out = append(out, child...)
	return append(out, trimmed[i:]...)
}
