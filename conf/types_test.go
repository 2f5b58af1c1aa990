package conf

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestParseByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ByteSize
		ok   bool
	}{
		{"0", 0, true},
		{"10000", 10000, true},
		{"512B", 512, true},
		{"256KiB", 256 * 1024, true},
		{"10MB", 10_000_000, true},
		{"10 MB", 10_000_000, true},
		{"1GiB", 1 << 30, true},
		{"2TiB", 2 << 40, true},
		{"3kB", 3000, true},
		{"3KB", 3000, true},
		{" 7MiB ", 7 << 20, true},
		{"", 0, false},
		{"KiB", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"1.5MiB", 0, false},
		{"10mb", 0, false},
		{"10XB", 0, false},
		{"9999999999TiB", 0, false},
	} {
		got, err := ParseByteSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	for b, want := range map[ByteSize]string{0: "0", 256 * KiB: "256KiB", 10_000_000: "10MB", 1500: "1500", GiB: "1GiB", 10000: "10kB"} {
		if got := b.String(); got != want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(b), got, want)
		}
		if back, err := ParseByteSize(b.String()); err != nil || back != b {
			t.Errorf("round trip %d: %d, %v", int64(b), back, err)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30s", 30 * time.Second, true},
		{"5m", 5 * time.Minute, true},
		{"1h", time.Hour, true},
		{"1h30m", 90 * time.Minute, true},
		{"250ms", 250 * time.Millisecond, true},
		{"30", 30 * time.Second, true},
		{"0", 0, true},
		{"", 0, false},
		{"-5s", 0, false},
		{"-5", 0, false},
		{"5x", 0, false},
		{"1.5", 0, false},
		{"99999999999999", 0, false},
	} {
		got, err := ParseDuration(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseBool(t *testing.T) {
	for in, want := range map[string]bool{"true": true, "yes": true, "1": true, "TRUE": true, "on": true,
		"false": false, "no": false, "0": false, "No": false, "off": false} {
		if got, err := ParseBool(in); err != nil || got != want {
			t.Errorf("ParseBool(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "y", "2", "maybe"} {
		if _, err := ParseBool(in); err == nil {
			t.Errorf("ParseBool(%q) accepted", in)
		}
	}
}

func TestParseHostPort(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ok   bool
		host string
		port int
	}{
		{"127.0.0.1:5222", true, "127.0.0.1", 5222},
		{":5222", true, "", 5222},
		{"[::1]:5280", true, "::1", 5280},
		{"localhost:0", true, "localhost", 0},
		{"example.org:65535", true, "example.org", 65535},
		{"127.0.0.1:99999", false, "", 0},
		{"127.0.0.1", false, "", 0},
		{"::1:5222", false, "", 0},
		{"host:port", false, "", 0},
		{"host:-1", false, "", 0},
		{"host:+1", false, "", 0},
		{"a b:1", false, "", 0},
		{"", false, "", 0},
	} {
		got, err := ParseHostPort(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseHostPort(%q): %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok && (got.Host() != tc.host || got.Port() != tc.port || got.String() != tc.in) {
			t.Errorf("ParseHostPort(%q) = host %q port %d", tc.in, got.Host(), got.Port())
		}
	}
}

func TestPrefixList(t *testing.T) {
	var l PrefixList
	if err := l.UnmarshalText([]byte(" 127.0.0.1,,::1  10.1.2.3/8\n")); err != nil {
		t.Fatal(err)
	}
	if got, want := l.String(), "127.0.0.1, ::1, 10.0.0.0/8"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	if err := l.UnmarshalText(nil); err != nil || l != nil {
		t.Errorf("empty: %v %v", l, err)
	}
	if err := l.UnmarshalText([]byte("10.0.0.0/33 x")); err == nil || !strings.Contains(err.Error(), "10.0.0.0/33") || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("bad list: %v", err)
	}
}

func TestAttrOffsets(t *testing.T) {
	data := []byte("<a\n  b='1'  c = \"x>y\"\n\td=\"\"/>")
	got := attrOffsets(data, 0, int64(len(data)))
	want := map[string]int64{"b": 5, "c": 12, "d": 23}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("offset of %s = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
	// Garbage never panics.
	for _, s := range []string{"", "<", "<a b", "<a b=", "<a b='", "x", "<a b=c>"} {
		attrOffsets([]byte(s), 0, int64(len(s)))
	}
	attrOffsets([]byte("<a>"), 2, 1)
	attrOffsets([]byte("<a>"), 0, 99)
}

func TestFileTooLarge(t *testing.T) {
	big := append([]byte("<xmppd>"), bytes.Repeat([]byte(" "), MaxFileSize)...)
	big = append(big, "</xmppd>"...)
	_, err := Parse(bytes.NewReader(big), "big.xml", "/d")
	if err == nil || !strings.HasPrefix(err.Error(), "big.xml: xmppd: file larger than") {
		t.Errorf("got %v", err)
	}
}
