package wire

import (
	"bytes"
	"errors"
	"io"
	"math/bits"
	"sync"
	"unicode/utf8"
)

// Header is a stream opening: <stream:stream …> on TCP, <open …/> on WebSocket.
type Header struct {
	To, From, ID, Version, Lang string
	NS                          string // content namespace (jabber:client, jabber:server)
	Framed                      bool   // RFC 7395 <open/>
}

// ErrStreamEnd is returned by Reader.Next when the peer closed the stream
// (</stream:stream> or the framing <close/>).
var ErrStreamEnd = errors.New("wire: stream closed by peer")

// Error is a violation of the stream's rules. Condition is the RFC 6120 §4.9.3
// stream error to send: "not-well-formed", "restricted-xml",
// "policy-violation" (too big), "invalid-namespace", "bad-format",
// "unsupported-encoding", "invalid-xml", "bad-namespace-prefix".
type Error struct {
	Condition string
	Text      string
}

func (e *Error) Error() string { return "wire: " + e.Condition + ": " + e.Text }

func notWellFormed(text string) *Error { return &Error{"not-well-formed", text} }

// DefaultMaxStanza is the limit NewReader uses when given maxStanza <= 0.
const DefaultMaxStanza = 256 << 10

// smallBuf is the size of the buffer an idle Reader holds.
const smallBuf = 512

// maxRef bounds an entity or character reference ("&#x10FFFF;" is 10 bytes;
// leading zeros are legal, so leave room).
const maxRef = 32

// Reader splits a stream into top-level elements.
//
// It is a hand-written incremental state machine: every byte is looked at
// once, whatever the read sizes, and an element is kept in the buffer until
// it is complete, so the buffer grows only up to the size limit and goes
// back to a small one once a big element has been consumed. A Reader is not
// safe for concurrent use.
type Reader struct {
	src    io.Reader
	srcErr error // pending error from src, returned once buffered data is used up
	err    error // sticky: *Error or ErrStreamEnd

	buf   []byte  // buf[r:w] is unread input
	small []byte  // the Reader's own small buffer
	big   *[]byte // pooled buffer in use while a large element is read (nil otherwise)
	r, w  int
	max   int

	// stream state, set by Header
	inStream bool
	framed   bool
	single   bool   // ParseElement: no stream around the element
	ns       string // content namespace
	endName  string // qualified name that ends the stream ("stream:stream")
	ctx      *nsContext

	sc      scanner
	scratch []byte // envelope strings are built here, then copied in one string
}

// scanner is the state of the element being scanned. Offsets are relative
// to Reader.r, where the element starts, so compacting the buffer moves
// nothing here.
type scanner struct {
	st       uint8
	p        int // next byte to look at
	depth    int // open elements
	mark     int // start of the current name, reference or markup
	tagStart int // '<' of the current tag
	quote    byte
	space    bool  // whitespace seen since the last name or value in a tag
	xmlnsAt  bool  // the attribute being read is a prefixed namespace declaration
	defAt    bool  // the attribute being read declares the default namespace
	valStart int   // first byte of the current attribute value
	refRet   uint8 // state to return to after a reference
	name     [2]int32
	stack    []int32 // open element names as (offset, length) pairs
	attrs    []int32 // attribute names of the current tag, (offset, length) pairs
	attrSet  map[string]struct{}
	rootEnd  int // just after the root start tag's '>'
	child    int // '<' of the root's first child element, 0 if none yet
	header   bool
	empty    bool // the header tag was an empty element (<open/>)

	// Namespace prefixes. colon is the offset of the colon in the current
	// start tag's name (0 if none); uses holds the tag's prefixed
	// attributes as (offset, prefix length, name length) triples; scope
	// holds the prefixes declared by the open elements and the current tag
	// as (prefix offset, prefix length, value offset, value length, depth)
	// tuples, innermost last.
	colon int
	uses  []int32
	scope []int32
	decls int // prefixes declared on the stream header
}

const (
	sLT            = iota // after '<'
	sStartName            // in an element name
	sInTag                // in a start tag, between attributes
	sAttrName             // in an attribute name
	sAfterAttrName        // expecting '='
	sBeforeValue          // expecting a quote
	sAttrValue            // in a quoted value
	sEmptyTag             // after '/' in a start tag
	sText                 // character data inside an element
	sRef                  // in an entity or character reference
	sEndName              // in an end tag's name
	sAfterEndName         // expecting '>' after an end tag's name
	sBang                 // after "<!"
	sCDATA                // in a CDATA section
)

var errNeedStart = errors.New("wire: Next called before Header")

// NewReader returns a Reader over r that refuses top-level elements larger
// than maxStanza bytes with a policy-violation Error. maxStanza <= 0 means
// DefaultMaxStanza. The stream header is held to the same limit.
func NewReader(r io.Reader, maxStanza int) *Reader {
	if maxStanza <= 0 {
		maxStanza = DefaultMaxStanza
	}
	rd := &Reader{src: r, max: maxStanza}
	rd.small = make([]byte, smallBuf)
	rd.buf = rd.small
	return rd
}

// SetMaxStanza changes the size limit for the elements read from now on
// (a stream allows larger elements once it is authenticated).
func (r *Reader) SetMaxStanza(maxStanza int) {
	if maxStanza <= 0 {
		maxStanza = DefaultMaxStanza
	}
	r.max = maxStanza
}

// Reset makes the Reader read a fresh stream from r (after STARTTLS, or a
// SASL success restart) and drops anything buffered.
func (r *Reader) Reset(src io.Reader) {
	r.releaseBig()
	if r.small == nil {
		r.small = make([]byte, smallBuf)
	}
	r.buf = r.small
	r.src = src
	r.srcErr, r.err = nil, nil
	r.r, r.w = 0, 0
	r.inStream, r.framed = false, false
	r.ns, r.endName, r.ctx = "", "", nil
	r.resetScan()
	r.trimScratch()
}

func (r *Reader) resetScan() {
	s := &r.sc
	stack, attrs, uses, scope := s.stack[:0], s.attrs[:0], s.uses[:0], s.scope[:0]
	if cap(stack) > 256 {
		stack = nil
	}
	if cap(attrs) > 256 {
		attrs = nil
	}
	if cap(uses) > 256 {
		uses = nil
	}
	if cap(scope) > 640 {
		scope = nil
	}
	*s = scanner{stack: stack, attrs: attrs, uses: uses, scope: scope}
}

func (r *Reader) trimScratch() {
	if cap(r.scratch) > 1024 {
		r.scratch = nil
	}
}

// bufPools holds large read buffers by power-of-two size class, so that
// memory for big elements is shared between sessions.
var bufPools [40]sync.Pool

func getBuf(size int) *[]byte {
	c := bits.Len(uint(size - 1))
	if c >= len(bufPools) {
		b := make([]byte, size)
		return &b
	}
	if p, _ := bufPools[c].Get().(*[]byte); p != nil {
		return p
	}
	b := make([]byte, 1<<c)
	return &b
}

func (r *Reader) releaseBig() {
	if r.big != nil {
		n := len(*r.big)
		if c := bits.Len(uint(n - 1)); c < len(bufPools) && n == 1<<c {
			bufPools[c].Put(r.big)
		}
		r.big = nil
	}
}

// smallBufs holds the small buffers of idle Readers (see Idle).
var smallBufs = sync.Pool{New: func() any { b := make([]byte, smallBuf); return &b }}

// Idle lets go of the Reader's buffers while nothing is buffered (no
// partial element, no unread byte): a stream that waits for its next
// element then holds no read buffer. The next read takes one from a pool
// shared by all Readers. It is for a caller that expects a long wait.
func (r *Reader) Idle() {
	if r.r != r.w || r.sc.p != 0 || r.big != nil || r.single || r.small == nil {
		return
	}
	b := r.small
	smallBufs.Put(&b)
	r.small, r.buf, r.r, r.w = nil, nil, 0, 0
	r.sc = scanner{}
	r.scratch = nil
}

// fill reads more input into the buffer, compacting or growing it first.
func (r *Reader) fill() {
	if r.small == nil { // after Idle
		r.small = *smallBufs.Get().(*[]byte)
		if r.big == nil {
			r.buf = r.small
		}
	}
	if r.r > 0 && (r.r == r.w || len(r.buf)-r.w < len(r.buf)/4) {
		copy(r.buf, r.buf[r.r:r.w])
		r.w -= r.r
		r.r = 0
	}
	if r.w == len(r.buf) {
		size := 2 * len(r.buf)
		if limit := r.max + 1; size > limit {
			size = limit
		}
		if size <= len(r.buf) {
			size = len(r.buf) + 1
		}
		nb := getBuf(size)
		copy(*nb, r.buf[:r.w])
		r.releaseBig()
		r.big = nb
		r.buf = *nb
	}
	for tries := 0; ; tries++ {
		n, err := r.src.Read(r.buf[r.w:])
		if n < 0 || n > len(r.buf)-r.w {
			r.srcErr = errors.New("wire: invalid Read count")
			return
		}
		r.w += n
		if err != nil {
			r.srcErr = err
			return
		}
		if n > 0 {
			return
		}
		if tries >= 100 {
			r.srcErr = io.ErrNoProgress
			return
		}
	}
}

// consumed drops the first n unread bytes and returns to the small buffer
// when nothing is left.
func (r *Reader) consumed(n int) {
	r.r += n
	r.resetScan()
	if r.r == r.w && !r.single {
		r.r, r.w = 0, 0
		if r.big != nil {
			r.releaseBig()
			r.buf = r.small
		}
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }

// nameBytes marks the bytes that can be part of a name: the ASCII name
// characters and every byte of a multi-byte UTF-8 sequence (checked once the
// name is complete), as encoding/xml delimits names.
var nameBytes = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '_' || c == ':' || c == '.' || c == '-' || c >= utf8.RuneSelf
	}
	return t
}()

func isNameByte(c byte) bool { return nameBytes[c] }

// skipSpace consumes whitespace between top-level elements.
func (r *Reader) skipSpace() {
	for r.r < r.w && isSpace(r.buf[r.r]) {
		r.r++
	}
	if r.r == r.w && !r.single {
		r.r, r.w = 0, 0
		if r.big != nil {
			r.releaseBig()
			r.buf = r.small
		}
	}
}

// fail records a sticky error.
func (r *Reader) fail(err error) error {
	r.err = err
	return err
}

// eofErr is what an input that ends inside an element becomes.
func (r *Reader) eofErr(err error) error {
	if r.single {
		return r.fail(notWellFormed("unexpected end of input"))
	}
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// takeSrcErr returns the pending read error once.
func (r *Reader) takeSrcErr() error {
	err := r.srcErr
	if !r.single {
		r.srcErr = nil
	}
	return err
}

// Header reads an optional XML declaration and the stream header:
// <stream:stream> with its prefix bound to the streams namespace and a
// jabber:client or jabber:server default namespace, or the RFC 7395
// <open xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>.
func (r *Reader) Header() (Header, error) {
	if r.err != nil {
		return Header{}, r.err
	}
	if r.inStream {
		return Header{}, errors.New("wire: Header called twice; call Reset first")
	}
	for {
		done, err := r.headerStep()
		if err != nil {
			return Header{}, r.fail(err)
		}
		if done {
			break
		}
		if r.srcErr != nil {
			if r.r == r.w && r.sc.p == 0 {
				return Header{}, r.takeSrcErr()
			}
			return Header{}, r.eofErr(r.takeSrcErr())
		}
		r.fill()
	}
	b := r.buf[r.r : r.r+r.sc.p]
	h, err := r.parseHeader(b, r.sc.empty)
	if err != nil {
		return Header{}, r.fail(err)
	}
	r.consumed(len(b))
	r.inStream = true
	return h, nil
}

// headerStep advances through the BOM, whitespace, XML declaration and the
// stream tag as far as the buffered input allows.
func (r *Reader) headerStep() (bool, error) {
	s := &r.sc
	if s.p == 0 {
		// Before the stream tag: a byte order mark, whitespace, and one
		// XML declaration are allowed.
		for {
			b := r.buf[r.r:r.w]
			if len(b) == 0 {
				return false, nil
			}
			switch {
			case b[0] == 0xEF:
				if len(b) < 3 {
					return false, nil
				}
				if b[1] != 0xBB || b[2] != 0xBF {
					return false, notWellFormed("invalid byte before the stream header")
				}
				r.r += 3
				continue
			case isSpace(b[0]):
				r.skipSpace()
				continue
			case b[0] != '<':
				return false, notWellFormed("expected a stream header")
			}
			if len(b) < 2 {
				return false, nil
			}
			if b[1] != '?' {
				break
			}
			if s.header {
				return false, &Error{"restricted-xml", "processing instruction"}
			}
			if len(b) < 6 {
				return false, nil
			}
			if string(b[2:5]) != "xml" || !isSpace(b[5]) {
				return false, &Error{"restricted-xml", "processing instruction"}
			}
			// find "?>" within the limit
			end := -1
			lim := len(b)
			if lim > r.max {
				lim = r.max
			}
			for i := 6 + s.mark; i+1 < lim; i++ {
				if b[i] == '?' && b[i+1] == '>' {
					end = i
					break
				}
			}
			if end < 0 {
				if len(b) >= r.max {
					return false, &Error{"policy-violation", "XML declaration too long"}
				}
				if lim > 7 {
					s.mark = lim - 7 // resume the search here
				}
				return false, nil
			}
			if err := checkDecl(b[5:end]); err != nil {
				return false, err
			}
			r.r += end + 2
			s.mark = 0
			s.header = true // the declaration has been seen
		}
		s.header = true
		s.st = sLT
		s.p = 1
		s.tagStart = 0
	}
	return r.scan()
}

// Next returns the next top-level element. Whitespace between elements is
// skipped (whitespace keepalives). The returned Stanza and its Raw are owned
// by the caller.
//
// At the end of the stream Next returns ErrStreamEnd; when the input ends
// between elements it returns io.EOF, inside one io.ErrUnexpectedEOF (or
// the reader's error). A malformed stream gives a *Error, which is sticky.
func (r *Reader) Next() (*Stanza, error) {
	if r.err != nil {
		return nil, r.err
	}
	if !r.inStream {
		return nil, errNeedStart
	}
	for {
		if r.sc.p == 0 {
			r.skipSpace()
			if r.r < r.w {
				if r.buf[r.r] != '<' {
					return nil, r.fail(notWellFormed("character data at stream level"))
				}
				r.sc.st = sLT
				r.sc.p = 1
			}
		}
		if r.sc.p > 0 {
			done, err := r.scan()
			if err != nil {
				if err == ErrStreamEnd {
					r.consumed(r.sc.p)
				}
				return nil, r.fail(err)
			}
			if done {
				n := r.sc.p
				st, err := r.envelope(r.buf[r.r : r.r+n])
				if err != nil {
					return nil, r.fail(err)
				}
				r.consumed(n)
				if r.framed && st.Name == "close" && st.NS == NSFraming {
					return nil, r.fail(ErrStreamEnd)
				}
				return st, nil
			}
		}
		if r.srcErr != nil {
			if r.sc.p == 0 {
				return nil, r.takeSrcErr()
			}
			return nil, r.eofErr(r.takeSrcErr())
		}
		r.fill()
	}
}

// scan runs the state machine over the buffered bytes of the current
// element. It reports true when the element (or, in header mode, the stream
// tag) is complete, with r.sc.p just after it.
func (r *Reader) scan() (bool, error) {
	s := &r.sc
	b := r.buf[r.r:r.w]
	lim := len(b)
	if lim > r.max {
		lim = r.max
	}
	b = b[:lim]
	p := s.p
loop:
	for p < lim {
		switch s.st {
		case sText:
			for p < lim {
				c := b[p]
				if c >= 0x20 && c < utf8.RuneSelf {
					switch c {
					case '<':
						s.tagStart = p
						s.st = sLT
						p++
						continue loop
					case '&':
						s.mark = p
						s.refRet = sText
						s.st = sRef
						p++
						continue loop
					case '>':
						if p >= 2 && b[p-1] == ']' && b[p-2] == ']' {
							return false, notWellFormed("]]> in character data")
						}
					}
					p++
					continue
				}
				n, err := charAt(b, p)
				if err != nil {
					return false, err
				}
				if n == 0 {
					break loop
				}
				p += n
			}

		case sLT:
			c := b[p]
			switch {
			case c == '/':
				p++
				s.mark = p
				s.st = sEndName
			case c == '!':
				p++
				s.st = sBang
			case c == '?':
				return false, &Error{"restricted-xml", "processing instruction"}
			case isNameByte(c):
				s.mark = p
				s.st = sStartName
				if s.depth == 1 && s.child == 0 {
					s.child = s.tagStart
				}
			default:
				return false, notWellFormed("invalid character after '<'")
			}

		case sStartName:
			for p < lim && isNameByte(b[p]) {
				p++
			}
			if p == lim {
				break loop
			}
			name := b[s.mark:p]
			colon, ok := qname(name)
			if !ok || colon == 5 && hasPrefix(name, "xmlns:") {
				return false, notWellFormed("invalid element name")
			}
			s.name = [2]int32{int32(s.mark), int32(p - s.mark)}
			s.colon = colon
			s.attrs = s.attrs[:0]
			s.uses = s.uses[:0]
			s.attrSet = nil
			s.space = false
			s.st = sInTag

		case sInTag:
			c := b[p]
			switch {
			case isSpace(c):
				s.space = true
				p++
			case c == '>':
				if (s.colon > 0 || len(s.uses) > 0) && !s.header {
					if err := r.checkPrefixes(b); err != nil {
						return false, err
					}
				}
				p++
				s.stack = append(s.stack, s.name[0], s.name[1])
				s.depth++
				s.st = sText
				if s.depth == 1 {
					s.rootEnd = p
					if s.header {
						s.p = p
						return true, nil
					}
				}
			case c == '/':
				p++
				s.st = sEmptyTag
			case isNameByte(c):
				if !s.space {
					return false, notWellFormed("missing whitespace before attribute")
				}
				s.mark = p
				s.st = sAttrName
			default:
				return false, notWellFormed("invalid character in tag")
			}

		case sAttrName:
			for p < lim && isNameByte(b[p]) {
				p++
			}
			if p == lim {
				break loop
			}
			name := b[s.mark:p]
			colon, ok := qname(name)
			if !ok || string(name) == "xmlns:xmlns" {
				return false, notWellFormed("invalid attribute name")
			}
			if r.duplicateAttr(b, s.mark, p) {
				return false, notWellFormed("duplicate attribute")
			}
			s.xmlnsAt = colon == 5 && hasPrefix(name, "xmlns:")
			s.defAt = len(name) == 5 && string(name) == "xmlns"
			switch {
			case s.xmlnsAt && s.header:
				s.decls++
				if s.decls > MaxStreamPrefixes {
					return false, &Error{"policy-violation", "too many namespace declarations on the stream header"}
				}
			case s.xmlnsAt:
				s.scope = append(s.scope, int32(s.mark+6), int32(p-s.mark-6), 0, 0, int32(s.depth))
			case colon > 0 && !(colon == 3 && hasPrefix(name, "xml:")):
				s.uses = append(s.uses, int32(s.mark), int32(colon), int32(p-s.mark))
			}
			s.st = sAfterAttrName

		case sAfterAttrName:
			c := b[p]
			switch {
			case isSpace(c):
				p++
			case c == '=':
				p++
				s.st = sBeforeValue
			default:
				return false, notWellFormed("attribute without value")
			}

		case sBeforeValue:
			c := b[p]
			switch {
			case isSpace(c):
				p++
			case c == '\'' || c == '"':
				p++
				s.quote = c
				s.valStart = p
				s.st = sAttrValue
			default:
				return false, notWellFormed("unquoted attribute value")
			}

		case sAttrValue:
			for p < lim {
				c := b[p]
				if c >= 0x20 && c < utf8.RuneSelf {
					switch c {
					case s.quote:
						if s.xmlnsAt && p == s.valStart {
							return false, notWellFormed("empty namespace name for a prefix")
						}
						if (s.xmlnsAt || s.defAt) && !s.header {
							if err := s.declaration(b, p); err != nil {
								return false, err
							}
						}
						p++
						s.space = false
						s.st = sInTag
						continue loop
					case '<':
						return false, notWellFormed("'<' in attribute value")
					case '&':
						s.mark = p
						s.refRet = sAttrValue
						s.st = sRef
						p++
						continue loop
					}
					p++
					continue
				}
				n, err := charAt(b, p)
				if err != nil {
					return false, err
				}
				if n == 0 {
					break loop
				}
				p += n
			}

		case sEmptyTag:
			if b[p] != '>' {
				return false, notWellFormed("expected '>' after '/'")
			}
			if !s.header {
				if s.colon > 0 || len(s.uses) > 0 {
					if err := r.checkPrefixes(b); err != nil {
						return false, err
					}
				}
				s.popScope()
			}
			p++
			if s.depth == 0 {
				s.rootEnd = p
				s.p = p
				s.empty = true
				return true, nil
			}
			s.st = sText

		case sRef:
			for p < lim {
				c := b[p]
				if c == ';' {
					if !validRef(b[s.mark+1 : p]) {
						return false, notWellFormed("invalid entity or character reference")
					}
					p++
					s.st = s.refRet
					continue loop
				}
				if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '#') {
					return false, notWellFormed("invalid entity or character reference")
				}
				p++
				if p-s.mark > maxRef {
					return false, notWellFormed("entity or character reference too long")
				}
			}

		case sEndName:
			for p < lim && isNameByte(b[p]) {
				p++
			}
			if p == lim {
				break loop
			}
			if p == s.mark {
				return false, notWellFormed("expected a name after '</'")
			}
			s.name = [2]int32{int32(s.mark), int32(p - s.mark)}
			s.st = sAfterEndName

		case sAfterEndName:
			c := b[p]
			if isSpace(c) {
				p++
				continue
			}
			if c != '>' {
				return false, notWellFormed("invalid character in end tag")
			}
			p++
			name := b[s.name[0] : s.name[0]+s.name[1]]
			if s.depth == 0 {
				s.p = p
				if !r.single && !r.framed && !s.header && string(name) == r.endName {
					return false, ErrStreamEnd
				}
				return false, notWellFormed("unexpected end tag")
			}
			n := len(s.stack)
			open := b[s.stack[n-2] : s.stack[n-2]+s.stack[n-1]]
			if string(open) != string(name) {
				return false, notWellFormed("mismatched end tag")
			}
			s.stack = s.stack[:n-2]
			s.depth--
			s.popScope()
			if s.depth == 0 {
				s.p = p
				return true, nil
			}
			s.st = sText

		case sBang:
			// b[s.tagStart:] is "<!"
			rest := b[p:]
			if len(rest) == 0 {
				break loop
			}
			switch c := rest[0]; {
			case c == '-':
				return false, &Error{"restricted-xml", "comment"}
			case 'A' <= c && c <= 'Z':
				return false, &Error{"restricted-xml", "DTD declaration"}
			case c != '[':
				return false, notWellFormed("invalid markup after '<!'")
			}
			const cdata = "[CDATA["
			n := len(rest)
			if n > len(cdata) {
				n = len(cdata)
			}
			if string(rest[:n]) != cdata[:n] {
				return false, notWellFormed("invalid markup after '<!['")
			}
			if n < len(cdata) {
				break loop
			}
			if s.depth == 0 {
				return false, notWellFormed("CDATA section outside an element")
			}
			p += len(cdata)
			s.mark = p
			s.st = sCDATA

		case sCDATA:
			for p < lim {
				c := b[p]
				if c >= 0x20 && c < utf8.RuneSelf {
					if c == '>' && p-s.mark >= 2 && b[p-1] == ']' && b[p-2] == ']' {
						p++
						s.st = sText
						continue loop
					}
					p++
					continue
				}
				n, err := charAt(b, p)
				if err != nil {
					return false, err
				}
				if n == 0 {
					break loop
				}
				p += n
			}
		}
	}
	s.p = p
	if r.w-r.r >= r.max {
		if s.header {
			return false, &Error{"policy-violation", "stream header too large"}
		}
		return false, &Error{"policy-violation", "element larger than the stanza size limit"}
	}
	return false, nil
}

// charAt checks the character at b[p], which is not printable ASCII: a
// control character or the start of a UTF-8 sequence. It returns its length,
// or 0 when the sequence is cut off at the end of b and more may come.
func charAt(b []byte, p int) (int, error) {
	c := b[p]
	if c < utf8.RuneSelf {
		if c == '\n' || c == '\t' || c == '\r' {
			return 1, nil
		}
		return 0, notWellFormed("control character")
	}
	if !utf8.FullRune(b[p:]) {
		return 0, nil // cut off: wait for more (the end of input is an error later)
	}
	rn, n := utf8.DecodeRune(b[p:])
	if rn == utf8.RuneError && n == 1 {
		return 0, notWellFormed("invalid UTF-8")
	}
	if rn == 0xFFFE || rn == 0xFFFF {
		return 0, notWellFormed("character not allowed in XML")
	}
	return n, nil
}

// duplicateAttr records the attribute name b[from:to] of the current tag and
// reports whether the tag already has it.
func (r *Reader) duplicateAttr(b []byte, from, to int) bool {
	s := &r.sc
	name := b[from:to]
	if s.attrSet != nil {
		if _, ok := s.attrSet[string(name)]; ok {
			return true
		}
		s.attrSet[string(name)] = struct{}{}
		return false
	}
	for i := 0; i < len(s.attrs); i += 2 {
		if string(b[s.attrs[i]:s.attrs[i]+s.attrs[i+1]]) == string(name) {
			return true
		}
	}
	s.attrs = append(s.attrs, int32(from), int32(to-from))
	if len(s.attrs) > 32 {
		// many attributes: switch to a set so a hostile tag costs O(n)
		s.attrSet = make(map[string]struct{}, len(s.attrs))
		for i := 0; i < len(s.attrs); i += 2 {
			s.attrSet[string(b[s.attrs[i]:s.attrs[i]+s.attrs[i+1]])] = struct{}{}
		}
	}
	return false
}

// MaxStreamPrefixes is how many prefixes a stream header may declare
// (xmlns:stream included); more is a policy-violation.
const MaxStreamPrefixes = 8

// nsXMLNS is the namespace of the xmlns prefix, which nothing may declare.
const nsXMLNS = "http://www.w3.org/2000/xmlns/"

// declaration checks the namespace declaration whose value ends at b[end]
// against the reserved names of Namespaces in XML §3 (the xml prefix is
// bound to NSXML and nothing else is; nothing is bound to nsXMLNS) and
// records the value of a prefix declaration.
func (s *scanner) declaration(b []byte, end int) error {
	val := b[s.valStart:end]
	var isXML, isXMLNS bool
	switch {
	case len(val) < len(nsXMLNS):
		// shorter than both reserved names, even after references
	case bytes.IndexByte(val, '&') < 0:
		isXML, isXMLNS = string(val) == NSXML, string(val) == nsXMLNS
	default:
		isXML, isXMLNS = attrEqual(val, NSXML), attrEqual(val, nsXMLNS)
	}
	reserved := isXMLNS
	if s.xmlnsAt {
		n := len(s.scope)
		s.scope[n-3], s.scope[n-2] = int32(s.valStart), int32(end-s.valStart)
		xmlPrefix := s.scope[n-4] == 3 && string(b[s.scope[n-5]:s.scope[n-5]+3]) == "xml"
		reserved = reserved || xmlPrefix != isXML
	} else {
		reserved = reserved || isXML
	}
	if reserved {
		return &Error{"bad-namespace-prefix", "reserved namespace or prefix declared"}
	}
	return nil
}

// checkPrefixes checks, at the end of a start tag, that the prefixes of its
// name and of its attributes are declared on it or on an enclosing element
// of the same top-level element. Only the top-level element's own name may
// use a prefix declared on the stream header, and only when it is not a
// stanza (s2s dialback's db:result): everything else the server might
// forward, store or archive must be namespace-well-formed standing alone.
func (r *Reader) checkPrefixes(b []byte) error {
	s := &r.sc
	if c := s.colon; c > 0 {
		at := int(s.name[0])
		if !(c == 3 && hasPrefix(b[at:], "xml:")) && s.lookup(b, at, c) < 0 {
			uri, ok := r.ctx.lookup(b[at : at+c])
			if s.depth > 0 || !ok || uri == r.ns {
				return &Error{"bad-namespace-prefix", "undeclared prefix " + string(b[at:at+c])}
			}
		}
	}
	for i := 0; i < len(s.uses); i += 3 {
		at, n := int(s.uses[i]), int(s.uses[i+1])
		if s.lookup(b, at, n) < 0 {
			return &Error{"bad-namespace-prefix", "undeclared prefix " + string(b[at:at+n])}
		}
	}
	if len(s.uses) >= 6 && s.sameExpandedName(b) {
		return notWellFormed("two attributes with the same namespace and local name")
	}
	return nil
}

// lookup returns the index in s.scope of the innermost declaration of the
// prefix b[at:at+n], or -1.
func (s *scanner) lookup(b []byte, at, n int) int {
	p := b[at : at+n]
	for i := len(s.scope) - 5; i >= 0; i -= 5 {
		if int(s.scope[i+1]) == n && string(b[s.scope[i]:int(s.scope[i])+n]) == string(p) {
			return i
		}
	}
	return -1
}

// sameExpandedName reports whether two prefixed attributes of the current
// tag have the same local name in the same namespace through different
// prefixes (Namespaces in XML §6.3; the same qualified name twice is
// caught earlier). All prefixes are known to be declared.
func (s *scanner) sameExpandedName(b []byte) bool {
	type attr struct {
		local []byte
		decl  int
	}
	var small [16]attr
	attrs := small[:0]
	for i := 0; i < len(s.uses); i += 3 {
		at, c, n := int(s.uses[i]), int(s.uses[i+1]), int(s.uses[i+2])
		attrs = append(attrs, attr{b[at+c+1 : at+n], s.lookup(b, at, c)})
	}
	uri := func(d int) string {
		return string(appendAttrValue(nil, b[s.scope[d+2]:s.scope[d+2]+s.scope[d+3]]))
	}
	if len(attrs) <= len(small) {
		for i := range attrs {
			for j := i + 1; j < len(attrs); j++ {
				if string(attrs[i].local) == string(attrs[j].local) && uri(attrs[i].decl) == uri(attrs[j].decl) {
					return true
				}
			}
		}
		return false
	}
	// Many prefixed attributes: a set, so a hostile tag costs O(n).
	seen := make(map[string]struct{}, len(attrs))
	for _, a := range attrs {
		k := uri(a.decl) + " " + string(a.local)
		if _, ok := seen[k]; ok {
			return true
		}
		seen[k] = struct{}{}
	}
	return false
}

// popScope drops the declarations of elements at s.depth and deeper (the
// element just closed).
func (s *scanner) popScope() {
	for n := len(s.scope); n > 0 && int(s.scope[n-1]) >= s.depth; n -= 5 {
		s.scope = s.scope[:n-5]
	}
}

func hasPrefix(b []byte, p string) bool { return len(b) >= len(p) && string(b[:len(p)]) == p }

// qname reports whether b is a name encoding/xml accepts that is also a
// QName of XML namespaces: one NCName, or two joined by a colon. colon is
// the colon's index (the prefix's length), 0 when there is none.
func qname(b []byte) (colon int, ok bool) {
	colon = -1
	for i, c := range b {
		if c == ':' {
			if colon >= 0 {
				return 0, false
			}
			colon = i
		}
	}
	if colon < 0 {
		return 0, validNCName(b)
	}
	return colon, validNCName(b[:colon]) && validNCName(b[colon+1:])
}

// asciiName classifies ASCII bytes in names: 1 may start a name, 2 may
// only continue one.
var asciiName = func() (t [utf8.RuneSelf]uint8) {
	for c := 0; c < utf8.RuneSelf; c++ {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
			t[c] = 1
		case '0' <= c && c <= '9', c == '.', c == '-':
			t[c] = 2
		}
	}
	return t
}()

func validNCName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			k := asciiName[c]
			if k == 0 || k == 2 && i == 0 {
				return false
			}
			i++
			continue
		}
		rn, n := utf8.DecodeRune(b[i:])
		if rn == utf8.RuneError && n == 1 {
			return false
		}
		if !inRanges(nameStartRanges[:], rn) && (i == 0 || !inRanges(nameRanges[:], rn)) {
			return false
		}
		i += n
	}
	return true
}

func inRanges(t [][2]rune, r rune) bool {
	lo, hi := 0, len(t)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch {
		case r < t[m][0]:
			hi = m
		case r > t[m][1]:
			lo = m + 1
		default:
			return true
		}
	}
	return false
}

// validRef checks the inside of a reference (between '&' and ';').
func validRef(b []byte) bool {
	switch string(b) {
	case "lt", "gt", "amp", "apos", "quot":
		return true
	}
	_, ok := refRune(b)
	return ok
}

// refRune decodes a character reference body ("#65", "#x41").
func refRune(b []byte) (rune, bool) {
	if len(b) < 2 || b[0] != '#' {
		return 0, false
	}
	base := rune(10)
	b = b[1:]
	if b[0] == 'x' {
		base = 16
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	var v rune
	for _, c := range b {
		var d rune
		switch {
		case '0' <= c && c <= '9':
			d = rune(c - '0')
		case base == 16 && 'a' <= c && c <= 'f':
			d = rune(c-'a') + 10
		case base == 16 && 'A' <= c && c <= 'F':
			d = rune(c-'A') + 10
		default:
			return 0, false
		}
		v = v*base + d
		if v > utf8.MaxRune {
			return 0, false
		}
	}
	if !isXMLChar(v) {
		return 0, false
	}
	return v, true
}

func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// checkDecl checks the inside of an XML declaration, after "<?xml".
func checkDecl(b []byte) error {
	bad := notWellFormed("malformed XML declaration")
	i := 0
	names := [...]string{"version", "encoding", "standalone"}
	next := 0
	for {
		j := i
		for j < len(b) && isSpace(b[j]) {
			j++
		}
		if j == len(b) {
			break
		}
		if j == i {
			return bad
		}
		i = j
		for j < len(b) && b[j] != '=' && !isSpace(b[j]) {
			j++
		}
		name := string(b[i:j])
		for j < len(b) && isSpace(b[j]) {
			j++
		}
		if j == len(b) || b[j] != '=' {
			return bad
		}
		j++
		for j < len(b) && isSpace(b[j]) {
			j++
		}
		if j == len(b) || (b[j] != '\'' && b[j] != '"') {
			return bad
		}
		q := b[j]
		j++
		k := j
		for k < len(b) && b[k] != q {
			k++
		}
		if k == len(b) {
			return bad
		}
		val := b[j:k]
		i = k + 1
		for next < len(names) && names[next] != name {
			if next == 0 {
				return bad // version comes first
			}
			next++
		}
		if next == len(names) {
			return bad
		}
		next++
		switch name {
		case "version":
			if len(val) < 3 || string(val[:2]) != "1." {
				return bad
			}
			for _, c := range val[2:] {
				if c < '0' || c > '9' {
					return bad
				}
			}
		case "encoding":
			if !equalFold(val, "utf-8") && !equalFold(val, "utf8") {
				return &Error{"unsupported-encoding", "only UTF-8 is supported"}
			}
		case "standalone":
			if string(val) != "yes" && string(val) != "no" {
				return bad
			}
		}
	}
	if next == 0 {
		return bad
	}
	return nil
}

func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
