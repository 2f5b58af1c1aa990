package mam

// Archive ids (XEP-0313 UIDs, XEP-0359 stanza-ids) are the store's Seq
// written in 11 characters of a lower-case base 32 alphabet (digits and
// letters without i, l, o, u), most significant first, so that they sort
// like the archive. Clients must treat them as opaque; SQLite's Seq is the
// receive time in microseconds, which the delay stamp shows anyway, so an
// id reveals nothing about other traffic.

const (
	idAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	idLen      = 11 // 55 bits
)

var idValue = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(idAlphabet); i++ {
		t[idAlphabet[i]] = int8(i)
	}
	return t
}()

// FormatID returns the archive id of a Seq.
func FormatID(seq int64) string {
	var b [idLen]byte
	v := uint64(seq)
	for i := idLen - 1; i >= 0; i-- {
		b[i] = idAlphabet[v&31]
		v >>= 5
	}
	return string(b[:])
}

// ParseID returns the Seq of an archive id; ok is false for anything
// FormatID cannot have written.
func ParseID(id string) (seq int64, ok bool) {
	if len(id) != idLen {
		return 0, false
	}
	var v uint64
	for i := 0; i < idLen; i++ {
		d := idValue[id[i]]
		if d < 0 {
			return 0, false
		}
		v = v<<5 | uint64(d)
	}
	if v == 0 || v >= 1<<63 {
		return 0, false
	}
	return int64(v), true
}
