package conf

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// Every error carries FILE:LINE and the key of the element or attribute.
func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want []string
	}{
		// Structure.
		{"unknown element", "<xmppd>\n<listners/>\n</xmppd>", []string{
			`:2: xmppd/listners: unknown element <listners> (known elements: hosts, tls, listeners, storage, auth, registration, limits, log, modules)`}},
		{"unknown nested element", "<xmppd>\n<listeners>\n  <s2s address=\":5269\"/>\n</listeners>\n</xmppd>", []string{
			`:3: xmppd/listeners/s2s: unknown element <s2s> (known elements: c2s, http)`}},
		{"unknown attribute", "<xmppd>\n<tls cert=\"\" crt=\"x\"/>\n</xmppd>", []string{
			`:2: xmppd/tls@crt: unknown attribute (known attributes: cert, key, min-version)`}},
		{"unknown attribute on root", "<xmppd version=\"2\"/>", []string{
			`:1: xmppd@version: unknown attribute (there are no attributes)`}},
		{"attribute on its own line", "<xmppd>\n<limits\n  max-stanza-size=\"1MiB\"\n  ping-timeout=\"forever\"/>\n</xmppd>", []string{
			`:4: xmppd/limits@ping-timeout: "forever" is not a duration (e.g. "30s", "5m", "1h" or plain seconds)`}},
		{"unknown child of list item", "<xmppd><listeners>\n<c2s address=\":1\"><tls/></c2s>\n</listeners></xmppd>", []string{
			`:2: xmppd/listeners/c2s/tls: unknown element <tls> (there are no elements)`}},
		{"namespaced element", "<xmppd>\n<x:tls xmlns:x=\"urn:x\"/>\n</xmppd>", []string{
			`:2: xmppd/{urn:x}tls: unknown element <{urn:x}tls> (known elements: hosts, tls, listeners, storage, auth, registration, limits, log, modules)`}},
		{"xmlns attribute", "<xmppd xmlns=\"urn:xmppd\"/>", []string{
			`:1: xmppd: the root element must be <xmppd>, not <{urn:xmppd}xmppd>`}},
		{"duplicate section", "<xmppd>\n<tls/>\n<log/>\n<tls/>\n</xmppd>", []string{
			`:4: xmppd/tls: element given twice (first at line 2)`}},
		{"duplicate hosts", "<xmppd>\n<hosts/>\n<hosts><host name=\"a.example\"/></hosts>\n</xmppd>", []string{
			`:2: xmppd/hosts: at least one <host name="…"/> is needed`,
			`:3: xmppd/hosts: element given twice (first at line 2)`}},
		{"text", "<xmppd>\n<tls>\n  cert.pem\n</tls>\n</xmppd>", []string{
			`:3: xmppd/tls: unexpected text "cert.pem"`}},
		{"wrong root", "<openfire>\n</openfire>", []string{
			`:1: xmppd: the root element must be <xmppd>, not <openfire>`}},
		{"empty file", "", []string{
			`:1: xmppd: no <xmppd> root element`}},
		{"only a comment", "<!-- nothing -->\n", []string{
			`:1: xmppd: no <xmppd> root element`}},
		{"two roots", "<xmppd/>\n<xmppd/>", []string{
			`:2: xmppd: a second root element <xmppd> after </xmppd>`}},
		{"byte order mark", "\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xmppd/>", nil},
		{"encoding", "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<xmppd/>", []string{
			`:1: xmppd: encoding "ISO-8859-1" is not supported: write the file in UTF-8`}},
		{"invalid UTF-8", "<xmppd>\n<tls cert=\"\xff\"/>\n</xmppd>", []string{
			`:2: xmppd: XML syntax error: invalid UTF-8`}},
		{"undefined entity", "<xmppd>\n<tls cert=\"&nbsp;\"/>\n</xmppd>", []string{
			`:2: xmppd: XML syntax error: invalid character entity &nbsp;`}},
		{"doctype", "<!DOCTYPE xmppd>\n<xmppd/>", []string{
			`:1: xmppd: <!DOCTYPE> is not allowed`}},
		{"processing instruction", "<xmppd>\n<?php echo ?>\n</xmppd>", []string{
			`:2: xmppd: processing instruction <?php?> is not allowed`}},
		{"syntax error", "<xmppd>\n<tls cert=\"a\">\n</xmppd>", []string{
			`:3: xmppd/tls: XML syntax error: element <tls> closed by </xmppd>`}},
		{"unterminated", "<xmppd>\n<tls>\n", []string{
			`:3: xmppd/tls: XML syntax error: unexpected EOF`}},
		{"errors before a syntax error are kept", "<xmppd>\n<tls bad=\"1\"/>\n<log level=\"x\"\n", []string{
			`:2: xmppd/tls@bad: unknown attribute (known attributes: cert, key, min-version)`,
			`:4: xmppd: XML syntax error: unexpected EOF`}},
		{"repeated attribute", "<xmppd>\n<tls cert=\"a\" cert=\"b\" key=\"k\"/>\n</xmppd>", []string{
			`:2: xmppd/tls@cert: attribute given twice`}},
		{"missing required attribute", "<xmppd>\n<listeners>\n<c2s tls=\"direct\"/>\n</listeners>\n</xmppd>", []string{
			`:3: xmppd/listeners/c2s@address: missing required attribute`}},
		{"host without name", "<xmppd>\n<hosts>\n<host/>\n</hosts>\n</xmppd>", []string{
			`:3: xmppd/hosts/host@name: missing required attribute`}},

		// Scalars.
		{"bad host:port", "<xmppd>\n<listeners>\n<c2s\n address=\"127.0.0.1:99999\"/>\n</listeners>\n</xmppd>", []string{
			`:4: xmppd/listeners/c2s@address: "127.0.0.1:99999" is not a host:port: port 99999 is out of range 0-65535`}},
		{"host:port without port", "<xmppd><listeners>\n<http address=\"localhost\"/>\n</listeners></xmppd>", []string{
			`:2: xmppd/listeners/http@address: "localhost" is not a host:port`}},
		{"bad bool", "<xmppd>\n<auth channel-binding=\"maybe\"/>\n</xmppd>", []string{
			`:2: xmppd/auth@channel-binding: "maybe" is not a boolean (true/false, yes/no, 1/0)`}},
		{"bad int", "<xmppd>\n<limits max-roster-items=\"lots\"/>\n</xmppd>", []string{
			`:2: xmppd/limits@max-roster-items: "lots" is not an integer`}},
		{"int out of range", "<xmppd>\n<limits max-roster-items=\"99999999999999999999\"/>\n</xmppd>", []string{
			`:2: xmppd/limits@max-roster-items: "99999999999999999999" is out of range`}},
		{"bad size", "<xmppd>\n<limits max-stanza-size=\"10 parsecs\"/>\n</xmppd>", []string{
			`:2: xmppd/limits@max-stanza-size: "10 parsecs" is not a byte size (e.g. "256KiB", "10MB", "1GiB" or plain bytes)`}},
		{"negative duration", "<xmppd>\n<auth failure-delay=\"-1s\"/>\n</xmppd>", []string{
			`:2: xmppd/auth@failure-delay: "-1s": a duration must not be negative`}},
		{"bad level", "<xmppd>\n<log level=\"verbose\"/>\n</xmppd>", []string{
			`:2: xmppd/log@level: "verbose" is not one of debug, info, warn, error`}},
		{"bad format", "<xmppd>\n<log format=\"xml\"/>\n</xmppd>", []string{
			`:2: xmppd/log@format: "xml" is not one of text, json`}},
		{"bad tls mode", "<xmppd><listeners>\n<c2s address=\":5222\" tls=\"ssl\"/>\n</listeners></xmppd>", []string{
			`:2: xmppd/listeners/c2s@tls: "ssl" is not one of starttls, direct, none`}},
		{"bad min-version", "<xmppd>\n<tls min-version=\"1.0\"/>\n</xmppd>", []string{
			`:2: xmppd/tls@min-version: "1.0" is not one of 1.2, 1.3`}},
		{"bad driver", "<xmppd>\n<storage driver=\"mysql\"/>\n</xmppd>", []string{
			`:2: xmppd/storage@driver: "mysql" is not one of sqlite`}},
		{"bad proxy", "<xmppd><listeners>\n<http address=\":80\" trusted-proxies=\"10.0.0.0/8, nginx\"/>\n</listeners></xmppd>", []string{
			`:2: xmppd/listeners/http@trusted-proxies: "nginx" is not an IP address or CIDR prefix`}},

		// Validation.
		{"no hosts", "<xmppd>\n<hosts>\n</hosts>\n</xmppd>", []string{
			`:2: xmppd/hosts: at least one <host name="…"/> is needed`}},
		{"uppercase host", "<xmppd><hosts>\n<host name=\"Example.ORG\"/>\n</hosts></xmppd>", []string{
			`:2: xmppd/hosts/host@name: "Example.ORG" is not in canonical form (lowercase, no trailing dot): write "example.org"`}},
		{"trailing dot", "<xmppd><hosts>\n<host name=\"example.org.\"/>\n</hosts></xmppd>", []string{
			`:2: xmppd/hosts/host@name: "example.org." is not in canonical form (lowercase, no trailing dot): write "example.org"`}},
		{"invalid host", "<xmppd><hosts>\n<host name=\"user@example.org\"/>\n<host name=\"a..b\"/>\n<host name=\"-a.example\"/>\n</hosts></xmppd>", []string{
			`:2: xmppd/hosts/host@name: "user@example.org" is not a valid domain: idna: disallowed rune U+0040`,
			`:3: xmppd/hosts/host@name: "a..b" is not a valid domain: empty label`,
			`:4: xmppd/hosts/host@name: "-a.example" is not a valid domain: idna: invalid label "-a"`}},
		{"duplicate host", "<xmppd><hosts>\n<host name=\"a.example\"/>\n<host name=\"b.example\"/>\n<host name=\"a.example\"/>\n</hosts></xmppd>", []string{
			`:4: xmppd/hosts/host@name: host "a.example" is listed twice (first at line 2)`}},
		{"cert without key", "<xmppd>\n<tls cert=\"/etc/c.pem\"/>\n</xmppd>", []string{
			`:2: xmppd/tls@key: cert is set but key is not: set both, or neither for a generated self-signed certificate`}},
		{"key without cert", "<xmppd>\n<tls\n key=\"/etc/k.pem\"/>\n</xmppd>", []string{
			`:2: xmppd/tls@cert: key is set but cert is not: set both, or neither for a generated self-signed certificate`}},
		{"scram iterations", "<xmppd>\n<auth scram-iterations=\"1000\"/>\n</xmppd>", []string{
			`:2: xmppd/auth@scram-iterations: 1000 is less than the minimum 4096`}},
		{"stanza size", "<xmppd>\n<limits max-stanza-size=\"8KiB\"/>\n</xmppd>", []string{
			`:2: xmppd/limits@max-stanza-size: 8192 bytes is less than the minimum 10000 bytes`}},
		{"negative ints", "<xmppd>\n<limits max-connections-per-ip=\"-1\"\n max-sessions-per-account=\"-5\"/>\n</xmppd>", []string{
			`:2: xmppd/limits@max-connections-per-ip: -1 is less than the minimum 0`,
			`:3: xmppd/limits@max-sessions-per-account: -5 is less than the minimum 0`}},
		{"zero timeout", "<xmppd>\n<limits negotiation-timeout=\"0\" outbound-queue=\"0\"/>\n</xmppd>", []string{
			`:2: xmppd/limits@negotiation-timeout: 0s is less than the minimum 1s`,
			`:2: xmppd/limits@outbound-queue: 0 is less than the minimum 1`}},
		{"failure delay max", "<xmppd>\n<auth failure-delay=\"2m\"/>\n</xmppd>", []string{
			`:2: xmppd/auth@failure-delay: 2m is more than the maximum 1m`}},
		{"password length", "<xmppd>\n<registration min-password-length=\"0\"/>\n</xmppd>", []string{
			`:2: xmppd/registration@min-password-length: 0 is less than the minimum 1`}},
		{"same address twice", "<xmppd><listeners>\n<c2s address=\"127.0.0.1:5222\"/>\n<http address=\"127.0.0.1:5222\"/>\n</listeners></xmppd>", []string{
			`:3: xmppd/listeners/http@address: 127.0.0.1:5222 is already used by xmppd/listeners/c2s (at line 2)`}},
		{"port 0 may repeat", "<xmppd><listeners>\n<c2s address=\"127.0.0.1:0\"/>\n<c2s address=\"127.0.0.1:0\"/>\n</listeners></xmppd>", nil},
		{"websocket path", "<xmppd><listeners>\n<http address=\":80\" websocket-path=\"xmpp\"/>\n<http address=\":81\" websocket-path=\"/.well-known/host-meta\"/>\n</listeners></xmppd>", []string{
			`:2: xmppd/listeners/http@websocket-path: "xmpp" is not a URL path (it must start with / and have no query or fragment); "" turns WebSocket off`,
			`:3: xmppd/listeners/http@websocket-path: "/.well-known/host-meta" is taken by host-meta`}},
		{"empty storage path", "<xmppd>\n<storage path=\"\"/>\n</xmppd>", []string{
			`:2: xmppd/storage@path: the sqlite driver needs a database path`}},

		// Everything at once, in file order, each reported once.
		{"all errors collected", "<xmppd>\n<hosts><host name=\"A\"/></hosts>\n<tls cert=\"c\" min-version=\"9\"/>\n<bogus/>\n<limits max-stanza-size=\"1\" ping-interval=\"x\"/>\n</xmppd>", []string{
			`:2: xmppd/hosts/host@name: "A" is not in canonical form (lowercase, no trailing dot): write "a"`,
			`:3: xmppd/tls@min-version: "9" is not one of 1.2, 1.3`,
			`:3: xmppd/tls@key: cert is set but key is not: set both, or neither for a generated self-signed certificate`,
			`:4: xmppd/bogus: unknown element <bogus> (known elements: hosts, tls, listeners, storage, auth, registration, limits, log, modules)`,
			`:5: xmppd/limits@ping-interval: "x" is not a duration (e.g. "30s", "5m", "1h" or plain seconds)`,
			`:5: xmppd/limits@max-stanza-size: 1 bytes is less than the minimum 10000 bytes`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parse(t, tc.doc)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if c != nil {
				t.Error("a Config was returned with errors")
			}
			var want []string
			for _, w := range tc.want {
				want = append(want, file+w)
			}
			if got := errLines(t, err); !reflect.DeepEqual(got, want) {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func TestErrorType(t *testing.T) {
	_, err := parse(t, "<xmppd>\n<tls min-version=\"1.1\"/>\n<log level=\"loud\"/>\n</xmppd>")
	var list Errors
	if !errors.As(err, &list) || len(list) != 2 {
		t.Fatalf("errors.As Errors: %v", err)
	}
	var first *Error
	if !errors.As(err, &first) {
		t.Fatal("errors.As *Error failed")
	}
	want := &Error{File: file, Line: 2, Column: 6, Path: "xmppd/tls", Attr: "min-version", Msg: `"1.1" is not one of 1.2, 1.3`}
	if !reflect.DeepEqual(first, want) {
		t.Errorf("got %+v, want %+v", first, want)
	}
	if first.Key() != "xmppd/tls@min-version" {
		t.Errorf("Key() = %q", first.Key())
	}
	if got := (&Error{Path: "xmppd/log", Msg: "m"}).Error(); got != "xmppd/log: m" {
		t.Errorf("no file: %q", got)
	}
	if got := (&Error{File: "f", Path: "xmppd", Msg: "m"}).Error(); got != "f: xmppd: m" {
		t.Errorf("no line: %q", got)
	}
}
