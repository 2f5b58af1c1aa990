package conf

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// ByteSize is a number of bytes. In the file it is written as plain bytes
// ("10000") or with a unit: decimal kB, MB, GB, TB (powers of 1000) or binary
// KiB, MiB, GiB, TiB (powers of 1024), e.g. "256KiB", "10MB", "1GiB".
// A "B" suffix ("512B") is accepted too. Units are case-sensitive except for
// the kB/KB spelling; an optional space may separate number and unit.
type ByteSize int64

// Common sizes.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
	TiB ByteSize = 1 << 40
)

var byteUnits = []struct {
	suffix string
	mult   ByteSize
}{
	// Longest suffixes first so that "KiB" is not read as "B".
	{"KiB", KiB}, {"MiB", MiB}, {"GiB", GiB}, {"TiB", TiB},
	{"kB", 1000}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"TB", 1000 * 1000 * 1000 * 1000},
	{"B", 1},
}

// ParseByteSize parses a size as written in the configuration file.
func ParseByteSize(s string) (ByteSize, error) {
	bad := fmt.Errorf("%q is not a byte size (e.g. \"256KiB\", \"10MB\", \"1GiB\" or plain bytes)", s)
	t := strings.TrimSpace(s)
	mult := ByteSize(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(t, u.suffix) {
			t = strings.TrimSpace(strings.TrimSuffix(t, u.suffix))
			mult = u.mult
			break
		}
	}
	if t == "" || t[0] < '0' || t[0] > '9' {
		return 0, bad
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		return 0, bad
	}
	if n > math.MaxInt64/int64(mult) {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return ByteSize(n) * mult, nil
}

// String writes the size in the shortest exact form: "256KiB", "10MB", "1500".
func (b ByteSize) String() string {
	if b == 0 {
		return "0"
	}
	if b < 0 {
		return strconv.FormatInt(int64(b), 10)
	}
	for _, u := range []struct {
		suffix string
		mult   ByteSize
	}{{"TiB", TiB}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB}, {"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3}} {
		if b%u.mult == 0 {
			return strconv.FormatInt(int64(b/u.mult), 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// ParseDuration parses a duration as written in the configuration file: Go
// syntax ("30s", "5m", "1h30m", "250ms") or a plain number of seconds ("30").
// Negative durations are refused.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	var d time.Duration
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		if n > int64(math.MaxInt64/time.Second) {
			return 0, fmt.Errorf("%q is too large", s)
		}
		d = time.Duration(n) * time.Second
	} else {
		d, err = time.ParseDuration(t)
		if err != nil || t == "" {
			return 0, fmt.Errorf("%q is not a duration (e.g. \"30s\", \"5m\", \"1h\" or plain seconds)", s)
		}
	}
	if d < 0 {
		return 0, fmt.Errorf("%q: a duration must not be negative", s)
	}
	return d, nil
}

// ParseBool accepts true/false, yes/no, on/off and 1/0 (case-insensitive).
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (true/false, yes/no, 1/0)", s)
}

// HostPort is a listening address "host:port". The host may be empty (all
// interfaces), an IP address (IPv6 in brackets) or a host name; the port is a
// number 0–65535 (0 picks a free port, useful in tests).
type HostPort string

// ParseHostPort checks s and returns it as a HostPort.
func ParseHostPort(s string) (HostPort, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a host:port", s)
	}
	n, err := strconv.ParseUint(port, 10, 32)
	if err != nil || port == "" || port[0] == '+' {
		return "", fmt.Errorf("%q is not a host:port: port %q is not a number", s, port)
	}
	if n > 65535 {
		return "", fmt.Errorf("%q is not a host:port: port %d is out of range 0-65535", s, n)
	}
	if strings.ContainsAny(host, " \t\r\n/") {
		return "", fmt.Errorf("%q is not a host:port: bad host %q", s, host)
	}
	return HostPort(s), nil
}

// Host returns the host part ("" for all interfaces).
func (h HostPort) Host() string { host, _, _ := net.SplitHostPort(string(h)); return host }

// Port returns the port number.
func (h HostPort) Port() int {
	_, p, _ := net.SplitHostPort(string(h))
	n, _ := strconv.Atoi(p)
	return n
}

// String returns the address as written.
func (h HostPort) String() string { return string(h) }

// Path is a file system path. Relative paths in the file are resolved against
// the data directory given to Load/Parse/Default, never the working directory.
// The empty path keeps its meaning ("not set") and is not resolved.
type Path string

// String returns the path.
func (p Path) String() string { return string(p) }

// TLSMode says how a c2s listener does TLS.
type TLSMode string

// TLS modes of a c2s listener.
const (
	TLSStartTLS TLSMode = "starttls" // plain TCP upgraded with STARTTLS (RFC 6120 §5), usually port 5222
	TLSDirect   TLSMode = "direct"   // TLS from the first byte (XEP-0368), usually port 5223
	TLSNone     TLSMode = "none"     // no TLS at all; only for tests or behind a TLS-terminating proxy
)

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *TLSMode) UnmarshalText(b []byte) error {
	return oneOf((*string)(m), string(b), string(TLSStartTLS), string(TLSDirect), string(TLSNone))
}

// TLSVersion is a TLS protocol version written "1.2" or "1.3"; its value is
// the crypto/tls constant (tls.VersionTLS12, tls.VersionTLS13).
type TLSVersion uint16

// UnmarshalText implements encoding.TextUnmarshaler.
func (v *TLSVersion) UnmarshalText(b []byte) error {
	switch string(b) {
	case "1.2":
		*v = tls.VersionTLS12
	case "1.3":
		*v = tls.VersionTLS13
	default:
		return fmt.Errorf("%q is not one of 1.2, 1.3", b)
	}
	return nil
}

// String returns "1.2" or "1.3".
func (v TLSVersion) String() string {
	switch uint16(v) {
	case tls.VersionTLS12:
		return "1.2"
	case tls.VersionTLS13:
		return "1.3"
	}
	return fmt.Sprintf("0x%04x", uint16(v))
}

// StorageDriver names the storage implementation.
type StorageDriver string

// Storage drivers.
const (
	DriverSQLite StorageDriver = "sqlite"
)

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *StorageDriver) UnmarshalText(b []byte) error {
	return oneOf((*string)(d), string(b), string(DriverSQLite))
}

// StorageSync is how durable a storage commit is.
type StorageSync string

// Storage sync modes.
const (
	SyncNormal StorageSync = "normal" // survives a crash of the process (SQLite synchronous=NORMAL)
	SyncFull   StorageSync = "full"   // survives power loss: fsync per commit (synchronous=FULL)
)

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *StorageSync) UnmarshalText(b []byte) error {
	return oneOf((*string)(s), string(b), string(SyncNormal), string(SyncFull))
}

// LogFormat is the log output format.
type LogFormat string

// Log formats.
const (
	LogText LogFormat = "text" // slog.TextHandler
	LogJSON LogFormat = "json" // slog.JSONHandler
)

// UnmarshalText implements encoding.TextUnmarshaler.
func (f *LogFormat) UnmarshalText(b []byte) error {
	return oneOf((*string)(f), string(b), string(LogText), string(LogJSON))
}

// PrefixList is a list of IP networks, written as IP addresses or CIDR
// prefixes separated by commas and/or spaces: "127.0.0.1, 10.0.0.0/8 ::1".
// A bare address is a single-address prefix (/32 or /128).
type PrefixList []netip.Prefix

// UnmarshalText implements encoding.TextUnmarshaler.
func (l *PrefixList) UnmarshalText(b []byte) error {
	var out PrefixList
	var errs []error
	for _, f := range strings.FieldsFunc(string(b), func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' }) {
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				errs = append(errs, fmt.Errorf("%q is not an IP address or CIDR prefix", f))
				continue
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("%q is not an IP address or CIDR prefix", f))
			continue
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	*l = out
	return nil
}

// Contains reports whether addr is in one of the prefixes.
func (l PrefixList) Contains(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range l {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// String writes the list as it would appear in the file.
func (l PrefixList) String() string {
	s := make([]string, len(l))
	for i, p := range l {
		if p.IsSingleIP() {
			s[i] = p.Addr().String()
		} else {
			s[i] = p.String()
		}
	}
	return strings.Join(s, ", ")
}

// parseLevel accepts exactly debug, info, warn, error (case-insensitive).
func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q is not one of debug, info, warn, error", s)
}

// oneOf stores s in *dst if it is one of the allowed values.
func oneOf(dst *string, s string, allowed ...string) error {
	for _, a := range allowed {
		if s == a {
			*dst = s
			return nil
		}
	}
	return fmt.Errorf("%q is not one of %s", s, strings.Join(allowed, ", "))
}
