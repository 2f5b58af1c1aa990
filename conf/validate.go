package conf

import (
	"fmt"
	"net"
	"reflect"
	"sort"
	"strings"

	"golang.org/x/net/idna"
)

// Validate checks the configuration as a whole: value bounds, hosts,
// listeners, the TLS certificate pair, and every module (its tag bounds and
// its own Validate method). It returns Errors (nil if all is well), located
// in the file the configuration came from, and recomputes c.Warnings.
// Parse and Load call it; call it again after changing a Config in Go.
func (c *Config) Validate() error {
	if errs := c.validate(nil); len(errs) > 0 {
		return errs
	}
	return nil
}

type validator struct {
	c    *Config
	skip map[string]bool
	errs Errors
	warn []string
}

func (v *validator) errorf(key, format string, args ...any) {
	if v.skip[key] {
		return // already reported while parsing
	}
	v.errs = append(v.errs, v.c.errAt(key, fmt.Sprintf(format, args...)))
}

func (v *validator) warnf(key, format string, args ...any) {
	v.warn = append(v.warn, v.c.errAt(key, fmt.Sprintf(format, args...)).Error())
}

func (c *Config) validate(skip map[string]bool) Errors {
	v := &validator{c: c, skip: skip}
	root := reflect.ValueOf(c).Elem()
	walkValues(root, infoFor(root.Type()), "xmppd", v.bounds)

	v.hosts()
	v.tls()
	v.listeners()
	if c.Storage.Driver == DriverSQLite && c.Storage.Path == "" {
		v.errorf("xmppd/storage@path", "the sqlite driver needs a database path")
	}
	if !c.Auth.RequireTLS {
		v.warnf("xmppd/auth@require-tls", "require-tls=\"false\": clients may authenticate on streams without TLS")
		if c.Auth.AllowPlain {
			v.warnf("xmppd/auth@allow-plain", "with require-tls=\"false\", SASL PLAIN can send passwords in clear text")
		}
	}
	if c.Limits.PingInterval > 0 && c.Limits.PingInterval < c.Limits.PingTimeout {
		v.warnf("xmppd/limits@ping-interval", "ping-interval (%s) is shorter than ping-timeout (%s)",
			formatDuration(c.Limits.PingInterval), formatDuration(c.Limits.PingTimeout))
	}
	if l := c.Limits; l.SessionBuffer < l.MaxStanzaSize {
		v.errorf("xmppd/limits@session-buffer", "session-buffer (%s) is smaller than max-stanza-size (%s): one stanza would not fit", l.SessionBuffer, l.MaxStanzaSize)
	}
	v.modules()
	c.Warnings = v.warn
	sortErrors(v.errs)
	return v.errs
}

// atLine returns " (WORD at line N)" for key, or "" without a file.
func (c *Config) atLine(word, key string) string {
	p := c.src.position(key)
	if p.Line == 0 {
		return ""
	}
	if word != "" {
		word += " "
	}
	return fmt.Sprintf(" (%sat line %d)", word, p.Line)
}

// sortErrors puts errors in file order (stable, so errors on one line keep
// the order they were found in).
func sortErrors(errs Errors) {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
}

// enumTypes are the enumerations whose zero or out-of-range values (possible
// in a Config built in Go) Validate refuses.
var enumTypes = map[reflect.Type]bool{
	levelType:                        true,
	reflect.TypeFor[TLSMode]():       true,
	reflect.TypeFor[TLSVersion]():    true,
	reflect.TypeFor[StorageDriver](): true,
	reflect.TypeFor[LogFormat]():     true,
}

// bounds checks the tag options of one attribute.
func (v *validator) bounds(f *field, fv reflect.Value, key string) {
	if f.required && fv.IsZero() {
		v.errorf(key, "missing required attribute")
		return
	}
	if (fv.Type() == durationType || fv.Type() == byteSizeType) && fv.Int() < 0 {
		v.errorf(key, "must not be negative")
		return
	}
	if enumTypes[fv.Type()] {
		// An enumeration set in Go to something the file could not say.
		if err := setScalar(reflect.New(fv.Type()).Elem(), formatScalar(fv)); err != nil {
			v.errorf(key, "%v", err)
			return
		}
	}
	show := formatScalar
	if fv.Type() == byteSizeType {
		show = func(v reflect.Value) string { return fmt.Sprintf("%d bytes", v.Int()) }
	}
	if f.min.IsValid() && cmpScalar(fv, f.min) < 0 {
		v.errorf(key, "%s is less than the minimum %s", show(fv), show(f.min))
	}
	if f.max.IsValid() && cmpScalar(fv, f.max) > 0 {
		v.errorf(key, "%s is more than the maximum %s", show(fv), show(f.max))
	}
}

func (v *validator) hosts() {
	c := v.c
	if len(c.Hosts) == 0 {
		v.errorf("xmppd/hosts", "at least one <host name=\"…\"/> is needed")
		return
	}
	first := map[string]int{}
	for i, h := range c.Hosts {
		key := fmt.Sprintf("xmppd/hosts/host[%d]@name", i)
		if err := checkDomain(h); err != nil {
			v.errorf(key, "%v", err)
			continue
		}
		if j, dup := first[h]; dup {
			v.errorf(key, "host %q is listed twice%s", h, c.atLine("first", fmt.Sprintf("xmppd/hosts/host[%d]", j)))
			continue
		}
		first[h] = i
	}
}

// checkDomain accepts a domain JID's domainpart in canonical form.
func checkDomain(h string) error {
	canon, err := canonicalDomain(h)
	if err != nil || h == "" {
		return fmt.Errorf("%q is not a valid domain: %v", h, err)
	}
	if canon != h {
		return fmt.Errorf("%q is not in canonical form (lowercase, no trailing dot): write %q", h, canon)
	}
	if strings.HasPrefix(h, "[") || net.ParseIP(h) != nil {
		return nil // an IP literal is a valid domainpart (RFC 7622 §3.2)
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" {
			return fmt.Errorf("%q is not a valid domain: empty label", h)
		}
	}
	if _, err := idna.Registration.ToASCII(h); err != nil {
		return fmt.Errorf("%q is not a valid domain: %v", h, err)
	}
	return nil
}

// normalizeHosts converts IDNA A-labels ("xn--…") to the canonical U-label
// form used in JIDs. Anything else non-canonical is left for Validate to
// refuse.
func (c *Config) normalizeHosts() {
	for i, h := range c.Hosts {
		if isAlabelSpelling(h) {
			if canon, err := canonicalDomain(h); err == nil {
				c.Hosts[i] = canon
			}
		}
	}
}

func (v *validator) tls() {
	t := v.c.TLS
	switch {
	case t.Cert != "" && t.Key == "":
		v.errorf("xmppd/tls@key", "cert is set but key is not: set both, or neither for a generated self-signed certificate")
	case t.Cert == "" && t.Key != "":
		v.errorf("xmppd/tls@cert", "key is set but cert is not: set both, or neither for a generated self-signed certificate")
	}
}

func (v *validator) listeners() {
	c := v.c
	used := map[HostPort]string{}
	claim := func(addr HostPort, key string) {
		if addr == "" || addr.Port() == 0 {
			return
		}
		if prev, dup := used[addr]; dup {
			p, _ := displayKey(prev)
			v.errorf(key+"@address", "%s is already used by %s%s", addr, p, c.atLine("", prev))
			return
		}
		used[addr] = key
	}
	for i, l := range c.Listeners.C2S {
		key := fmt.Sprintf("xmppd/listeners/c2s[%d]", i)
		claim(l.Address, key)
		if l.TLS == TLSNone && c.Auth.RequireTLS {
			v.warnf(key+"@tls", "tls=\"none\" with <auth require-tls=\"true\">: nobody can log in on %s", l.Address)
		}
	}
	for i, l := range c.Listeners.HTTP {
		key := fmt.Sprintf("xmppd/listeners/http[%d]", i)
		claim(l.Address, key)
		p := l.WebSocketPath
		if p != "" && (!strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?# \t\r\n")) {
			v.errorf(key+"@websocket-path", "%q is not a URL path (it must start with / and have no query or fragment); \"\" turns WebSocket off", p)
		}
		if p == "/.well-known/host-meta" || p == "/.well-known/host-meta.json" {
			v.errorf(key+"@websocket-path", "%q is taken by host-meta", p)
		}
		b := l.BOSHPath
		if b != "" && (!strings.HasPrefix(b, "/") || strings.ContainsAny(b, "?# \t\r\n")) {
			v.errorf(key+"@bosh-path", "%q is not a URL path (it must start with / and have no query or fragment); \"\" turns BOSH off", b)
		}
		if b != "" && (b == p || b == "/.well-known/host-meta" || b == "/.well-known/host-meta.json") {
			v.errorf(key+"@bosh-path", "%q is taken by another endpoint", b)
		}
	}
}

func (v *validator) modules() {
	c := v.c
	for _, name := range c.moduleNames() {
		key := "xmppd/modules/" + name
		m := c.Modules[name]
		mv := reflect.ValueOf(m)
		if mv.Kind() != reflect.Pointer || mv.IsNil() || mv.Elem().Kind() != reflect.Struct {
			v.errorf(key, "module configuration is %T, not a struct pointer", m)
			continue
		}
		walkValues(mv.Elem(), infoFor(mv.Elem().Type()), key, v.bounds)
		val, ok := m.(interface{ Validate() error })
		if !ok {
			continue
		}
		attrs, msgs := splitModuleErr(val.Validate())
		for i, a := range attrs {
			k := key
			if a != "" {
				k += "@" + a
			}
			v.errorf(k, "%s", msgs[i])
		}
	}
}
