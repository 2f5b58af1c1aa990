// Package conf reads xmppd's single XML configuration file into typed
// structs, with defaults, strict checking and errors that point at the file
// and line.
//
// # The file
//
// The root element is <xmppd>. Settings are attributes; groups and lists are
// child elements:
//
//	<xmppd>
//	  <hosts><host name="example.org"/></hosts>
//	  <tls cert="/etc/xmppd/cert.pem" key="/etc/xmppd/key.pem" min-version="1.2"/>
//	  <listeners>
//	    <c2s address=":5222" tls="starttls"/>
//	    <http address="127.0.0.1:5280" websocket-path="/xmpp-websocket"/>
//	  </listeners>
//	  <limits max-stanza-size="256KiB" negotiation-timeout="30s"/>
//	  <modules><offline enabled="false"/></modules>
//	</xmppd>
//
// Everything left out keeps its default (see Default). A list element
// (<hosts>, <listeners>) present in the file replaces the default list.
// Unknown elements, unknown attributes, text content, repeated sections and
// module elements of modules that are not registered are errors. Relative
// file paths are resolved against the data directory given to Load, never
// against the working directory. Example returns the commented example file,
// conf/xmppd.example.xml, which lists every setting with its default value.
//
// Scalar syntax: booleans true/false, yes/no, 1/0; durations in Go syntax
// ("30s", "5m", "1h") or plain seconds; sizes as plain bytes or with a unit
// ("256KiB", "10MB", "1GiB"); addresses host:port; log levels debug, info,
// warn, error.
//
// # Errors
//
// Load, Parse and Validate report every problem they find, not only the
// first, as an Errors; each *Error reads
//
//	FILE:LINE: PATH@ATTR: MESSAGE
//	/etc/xmppd.xml:12: xmppd/listeners/c2s@address: "127.0.0.1:99999" is not a host:port: port 99999 is out of range 0-65535
//
// Things that are allowed but unwise (require-tls="false") are not errors;
// they are listed, located the same way, in Config.Warnings.
//
// # Module sections
//
// A module owns its section, <modules><NAME …/></modules>. It declares the
// section from an init function with a struct using the same conf tags as
// this package's types, and reads it back from the Config it is started with:
//
//	type Config struct {
//		conf.ModuleBase                                 // enabled="…" (optional)
//		MaxMessages int           `conf:"max-messages,min=0"`
//		Expire      time.Duration `conf:"expire"`
//	}
//
//	func (c *Config) Validate() error {                 // optional
//		if c.Expire > 0 && c.Expire < time.Hour {
//			return conf.AttrError("expire", "must be at least 1h")
//		}
//		return nil
//	}
//
//	func init() {
//		conf.RegisterModule("offline", func() any {
//			return &Config{MaxMessages: 1000, Expire: 30 * 24 * time.Hour}
//		})
//	}
//
//	// at startup:
//	if cfg.ModuleEnabled("offline") {
//		oc := cfg.Module("offline").(*offline.Config)
//	}
//
// Struct tags: `conf:"name"` on a scalar field is an attribute; on a struct
// field a child element; on a slice of structs a repeated child element;
// `conf:"wrap>item@attr"` on a slice of scalars is a wrapped list
// (<wrap><item attr="…"/>…</wrap>). Options: required, min=V, max=V.
// Supported scalars: string, bool, integers, floats, time.Duration, ByteSize,
// HostPort, Path, slog.Level and any encoding.TextUnmarshaler (enumerations).
// A module that adds a setting must add it to conf/xmppd.example.xml too;
// CheckExample, run by a test of the program linking every module, fails
// otherwise.
package conf
