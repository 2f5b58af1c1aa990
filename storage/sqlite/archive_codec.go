package sqlite

import (
	"bytes"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"
)

// The archive's stanza column holds each message compressed (DEFLATE with a
// preset dictionary of XMPP message boilerplate), so a typical chat message
// takes about 42 % of its bytes: see storage/README.md for the figures.
//
// The column is self-describing, so rows written before compression (and
// rows it did not shrink) read as they are, with no migration:
//
//   - a value starting with '<' (any byte other than 0) is the element
//     itself;
//   - 0x00 0x01 then DEFLATE data is the element compressed with
//     archiveDict1.
//
// A NUL can never start an XML document, so no stored element is mistaken
// for a compressed one. A new dictionary or algorithm gets the next tag,
// and readers keep decoding the old ones.
const (
	codecTag     = 0x00
	codecDeflate = 0x01 // DEFLATE, archiveDict1
)

// codecLevel is the DEFLATE level: with the dictionary, levels 1 and 2 of
// klauspost/compress compress chat messages within 1 % of the higher ones
// at half their CPU (and a third of the standard library's level 2, whose
// Reset clears large tables for every message).
const codecLevel = 2

// archiveDict1 is what archived messages repeat: the envelope, the
// namespaces and elements clients put next to a body. Strings nearer the
// end are cheaper to refer to, so the most common come last. Never change
// it: stored rows depend on it byte for byte (add archiveDict2 with a new
// tag instead).
var archiveDict1 = []byte(`<message xmlns='jabber:client' type='normal' xml:lang='en'><thread></thread><subject></subject>` +
	`<x xmlns='jabber:x:oob'><url>https://</url></x><x xmlns='jabber:x:encrypted'></x><openpgp xmlns='urn:xmpp:openpgp:0'></openpgp>` +
	`<encryption xmlns='urn:xmpp:eme:0' namespace='eu.siacs.conversations.axolotl' name='OMEMO'/>` +
	`<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid=''><key rid='' prekey='true'></key><iv></iv></header><payload></payload></encrypted>` +
	`<store xmlns='urn:xmpp:hints'/><no-copy xmlns='urn:xmpp:hints'/>` +
	`<reply xmlns='urn:xmpp:reply:0' to='' id=''/><fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'><body start='0' end=''/></fallback>` +
	`<retract xmlns='urn:xmpp:message-retract:1' id=''/><retracted xmlns='urn:xmpp:message-retract:1' id='' stamp=''/>` +
	`<propose xmlns='urn:xmpp:jingle-message:0' id=''><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose>` +
	`<received xmlns='urn:xmpp:chat-markers:0' id=''/><displayed xmlns='urn:xmpp:chat-markers:0' id=''/>` +
	`<received xmlns='urn:xmpp:receipts' id=''/><composing xmlns='http://jabber.org/protocol/chatstates'/>` +
	`<active xmlns='http://jabber.org/protocol/chatstates'/><markable xmlns='urn:xmpp:chat-markers:0'/><request xmlns='urn:xmpp:receipts'/>` +
	`</body><origin-id xmlns='urn:xmpp:sid:0' id=''/></message>` +
	`<message xmlns='jabber:client' from='' to='' type='chat' id=''><body>`)

var (
	deflaters = sync.Pool{New: func() any {
		w, err := flate.NewWriterDict(nil, codecLevel, archiveDict1)
		if err != nil {
			panic(err)
		}
		return w
	}}
	inflaters = sync.Pool{New: func() any { return flate.NewReaderDict(bytes.NewReader(nil), archiveDict1) }}
)

// encodeStanza returns what the stanza column stores for stanza: the
// compressed form, or stanza itself when that is not shorter. (A value that
// starts with a NUL, which no element does, is always compressed, so that
// it reads back as itself.)
func encodeStanza(stanza []byte) []byte {
	if len(stanza) == 0 {
		return nonNil(stanza)
	}
	var out bytes.Buffer
	out.Grow(len(stanza)/2 + 16)
	out.WriteByte(codecTag)
	out.WriteByte(codecDeflate)
	w := deflaters.Get().(*flate.Writer)
	w.Reset(&out)
	w.Write(stanza) // writes to a bytes.Buffer do not fail
	w.Close()
	deflaters.Put(w)
	if out.Len() >= len(stanza) && stanza[0] != codecTag {
		return stanza
	}
	return out.Bytes()
}

// decodeStanza returns the stanza a stanza column value stores.
func decodeStanza(v []byte) ([]byte, error) {
	if len(v) == 0 || v[0] != codecTag {
		return v, nil
	}
	if len(v) < 2 || v[1] != codecDeflate {
		return nil, fmt.Errorf("sqlite: archived stanza in an unknown encoding % x", v[:min(len(v), 2)])
	}
	r := inflaters.Get().(io.ReadCloser)
	defer inflaters.Put(r)
	if err := r.(flate.Resetter).Reset(bytes.NewReader(v[2:]), archiveDict1); err != nil {
		return nil, err
	}
	out := bytes.NewBuffer(make([]byte, 0, len(v)*3))
	if _, err := out.ReadFrom(r); err != nil {
		return nil, fmt.Errorf("sqlite: archived stanza: %w", err)
	}
	return out.Bytes(), nil
}
