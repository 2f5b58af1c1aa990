package sqlite

import (
	"fmt"
	"slices"

	"github.com/klauspost/compress/s2"
)

// The archive's stanza column holds each message compressed (an S2 block,
// github.com/klauspost/compress/s2, against a fixed dictionary of XMPP
// message boilerplate), so a typical chat message takes about 55 % of its
// bytes: see storage/README.md for the figures.
//
// The column is self-describing, so rows written before compression (and
// rows it did not shrink) read as they are, with no migration:
//
//   - a value starting with '<' (any byte other than 0) is the element
//     itself;
//   - 0x00 0x01 then an S2 block is the element compressed against
//     archiveDict1.
//
// A NUL can never start an XML document, so no stored element is mistaken
// for a compressed one. A new dictionary or algorithm gets the next tag,
// and readers keep decoding the old ones.
//
// Why S2 and not DEFLATE or zstd, which compress better: it is
// dictionary-matching without entropy coding, so a message costs about 3
// CPU-µs to compress and 1 to decompress. DEFLATE with the same dictionary
// stored 42 % instead of 55 % but cost about 23 and 12 CPU-µs (building
// the Huffman tables of every message dominates its decoding), which
// doubled the storage CPU of reading a page of 50; zstd was between the two
// (45 %, 26 and 6 CPU-µs).
const (
	codecTag = 0x00
	codecS2  = 0x01 // an S2 block, archiveDict1
)

// maxDecoded bounds what a stored value may claim to decompress to (a
// corrupt row must not make the reader allocate gigabytes); stanzas are
// far smaller (max-stanza-size).
const maxDecoded = 256 << 20

// archiveDict1 is what archived messages repeat: the envelope, the
// namespaces and elements clients put next to a body. Strings nearer the
// end are cheaper to refer to in DEFLATE, so the most common come last. Never change
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

// dict1 is archiveDict1 prepared for S2 (its match tables are built on
// first use and shared); a block starts by repeating the envelope's start.
var dict1 = func() *s2.Dict {
	d := s2.MakeDict(archiveDict1, []byte("<message xmlns='jabber:client' from='"))
	if d == nil {
		panic("sqlite: archiveDict1 is not a valid S2 dictionary")
	}
	return d
}()

// encodeStanza returns what the stanza column stores for stanza: the
// compressed form, or stanza itself when that is not shorter. (A value that
// starts with a NUL, which no element does, is always compressed, so that
// it reads back as itself.)
func encodeStanza(stanza []byte) []byte {
	return appendStanza(nil, stanza)
}

// appendStanza appends the stanza column's value for stanza to dst and
// returns the extended slice (the archive writer encodes a whole batch
// into one reused buffer).
func appendStanza(dst, stanza []byte) []byte {
	if len(stanza) == 0 {
		return append(nonNil(dst), stanza...)
	}
	m := s2.MaxEncodedLen(len(stanza))
	if m < 0 { // over 4 GiB: far beyond any stanza size limit
		return append(dst, stanza...)
	}
	start := len(dst)
	dst = slices.Grow(dst, 2+m)
	dst = append(dst, codecTag, codecS2)
	n := len(dict1.Encode(dst[len(dst):cap(dst)], stanza))
	if n+2 >= len(stanza) && stanza[0] != codecTag {
		return append(dst[:start], stanza...)
	}
	return dst[:len(dst)+n]
}

// decodeStanza returns the stanza a stanza column value stores.
func decodeStanza(v []byte) ([]byte, error) {
	if len(v) == 0 || v[0] != codecTag {
		return v, nil
	}
	if len(v) < 2 || v[1] != codecS2 {
		return nil, fmt.Errorf("sqlite: archived stanza in an unknown encoding % x", v[:min(len(v), 2)])
	}
	if n, err := s2.DecodedLen(v[2:]); err != nil || n > maxDecoded {
		return nil, fmt.Errorf("sqlite: archived stanza: bad compressed value (%d bytes, %v)", n, err)
	}
	out, err := dict1.Decode(nil, v[2:])
	if err != nil {
		return nil, fmt.Errorf("sqlite: archived stanza: %w", err)
	}
	return out, nil
}
