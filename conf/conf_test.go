package conf

import (
	"bytes"
	"crypto/tls"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

const file = "/etc/xmppd.xml"

func parse(t *testing.T, doc string) (*Config, error) {
	t.Helper()
	return Parse(strings.NewReader(doc), file, "/data")
}

func mustParse(t *testing.T, doc string) *Config {
	t.Helper()
	c, err := parse(t, doc)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

// errLines returns the error's lines, failing if err is not an Errors.
func errLines(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var list Errors
	if !errors.As(err, &list) {
		t.Fatalf("error is %T, not conf.Errors: %v", err, err)
	}
	if len(list) == 0 {
		t.Fatalf("empty Errors returned")
	}
	return strings.Split(err.Error(), "\n")
}

func TestDefault(t *testing.T) {
	c := Default("/srv/xmppd")
	if err := c.Validate(); err != nil {
		t.Fatalf("default does not validate: %v", err)
	}
	want := &Config{
		DataDir: "/srv/xmppd",
		Hosts:   []string{"localhost"},
		TLS:     TLS{MinVersion: tls.VersionTLS12},
		Listeners: Listeners{
			C2S: []C2SListener{
				{Address: "127.0.0.1:5222", TLS: TLSStartTLS},
				{Address: "127.0.0.1:5223", TLS: TLSDirect},
			},
			HTTP: []HTTPListener{
				{Address: "127.0.0.1:5280", WebSocketPath: "/xmpp-websocket", BOSHPath: "/http-bind", HostMeta: true},
				{Address: "127.0.0.1:5281", TLS: true, WebSocketPath: "/xmpp-websocket", BOSHPath: "/http-bind", HostMeta: true},
			},
		},
		Storage: Storage{Driver: DriverSQLite, Path: "/srv/xmppd/xmppd.db", Sync: SyncNormal},
		Auth: Auth{RequireTLS: true, AllowPlain: true, SCRAMIterations: 4096, MaxFailures: 3,
			FailureDelay: time.Second, IPFailuresPerMinute: 20, AccountFailuresPerMinute: 10, ChannelBinding: true},
		Registration: Registration{PerIPPerHour: 5, MinPasswordLength: 8, AllowPasswordChange: true, AllowRemoval: true},
		Limits: Limits{MaxStanzaSize: 256 * KiB, MaxConnectionsPerIP: 100, MaxSessionsPerAccount: 20,
			NegotiationTimeout: 30 * time.Second, PingInterval: time.Minute, PingTimeout: 30 * time.Second,
			MaxRosterItems: 1000, OutboundQueue: 1000, UnackedWrites: 256, GCPercent: 50, IdleRestack: 10 * time.Second,
			PreAuthStanzaSize: 10 * KiB, BytesPerSecond: 32 * KiB, BytesBurst: MiB, SessionBuffer: 4 * MiB},
		Log:       Log{Level: slog.LevelInfo, Format: LogText},
		Modules:   map[string]any{},
		moduleOff: map[string]bool{},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Default:\n got %+v\nwant %+v", c, want)
	}
	if !c.TLS.SelfSigned() || c.Path != "" || len(c.Warnings) != 0 {
		t.Errorf("SelfSigned=%v Path=%q Warnings=%q", c.TLS.SelfSigned(), c.Path, c.Warnings)
	}
	if d := Default(""); d.DataDir != DefaultDataDir || d.Storage.Path != Path(filepath.Join(DefaultDataDir, "xmppd.db")) {
		t.Errorf("Default(\"\"): DataDir=%q Storage.Path=%q", d.DataDir, d.Storage.Path)
	}
	// Default returns a fresh value each time.
	a, b := Default("x"), Default("x")
	a.Listeners.C2S[0].Address = "changed:1"
	if b.Listeners.C2S[0].Address == "changed:1" {
		t.Error("Default shares state between calls")
	}
}

// coreExample is the example without its module sections: conf's own tests
// link no modules (cmd/xmppd's test runs CheckExample with all of them).
var coreExample = regexp.MustCompile(`(?s)<modules>.*</modules>`).ReplaceAll(example, []byte("<modules>\n  </modules>"))

// withCoreExample makes CheckExample look at coreExample until the test ends.
func withCoreExample(t *testing.T) {
	saved := example
	example = coreExample
	t.Cleanup(func() { example = saved })
}

func TestExampleFile(t *testing.T) {
	onDisk, err := os.ReadFile("xmppd.example.xml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(Example(), onDisk) {
		t.Fatal("Example() differs from conf/xmppd.example.xml")
	}
	c, err := Parse(bytes.NewReader(coreExample), "xmppd.example.xml", "/data")
	if err != nil {
		t.Fatalf("the example does not parse: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("the example does not validate: %v", err)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("the example has warnings: %q", c.Warnings)
	}
	// Every key present, every value the default (no module is linked into
	// this test binary; cmd/xmppd's test runs CheckExample with all of them).
	if err := exampleProblems(example, true, nil); err != nil {
		t.Fatalf("example is stale:\n%v", err)
	}
	withCoreExample(t)
	if err := CheckExample(); err != nil {
		t.Fatalf("CheckExample: %v", err)
	}
	// The example means the default configuration.
	d := Default("/data")
	c.Path, c.src = "", nil
	if !reflect.DeepEqual(c, d) {
		t.Errorf("example:\n%+v\ndefault:\n%+v", c, d)
	}
}

// The completeness check must notice a missing key and a wrong value,
// otherwise TestExampleFile proves nothing.
func TestExampleCheckCatchesStaleness(t *testing.T) {
	for _, tc := range []struct{ name, old, new, want string }{
		{"missing attribute", ` outbound-queue="1000"`, ``, "xmppd/limits@outbound-queue is not in the example"},
		{"missing element", `<log level="info" format="text" file=""/>`, ``, "xmppd/log is not in the example"},
		{"missing list", "<http address=\"127.0.0.1:5280\" tls=\"false\" websocket-path=\"/xmpp-websocket\" bosh-path=\"/http-bind\" host-meta=\"true\" trusted-proxies=\"\"/>\n" + httpsExample, ``, "xmppd/listeners/http is not in the example"},
		{"shorter list", httpsExample, ``, "lists differ in length"},
		{"wrong value", `ping-interval="60s"`, `ping-interval="61s"`, `xmppd/limits@ping-interval: the example says "61s" but the default is "1m"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !bytes.Contains(example, []byte(tc.old)) {
				t.Fatalf("example has no %q", tc.old)
			}
			data := bytes.Replace(example, []byte(tc.old), []byte(tc.new), 1)
			err := exampleProblems(data, true, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// Every key the walk produces is one the example has: the walk itself
	// must cover all fields.
	var keys []string
	walkKeys(infoFor(reflect.TypeFor[Config]()), "xmppd", func(key string, f *field) { keys = append(keys, key) })
	for _, k := range []string{"xmppd/hosts", "xmppd/hosts/host", "xmppd/hosts/host@name", "xmppd/tls@min-version",
		"xmppd/listeners/c2s@tls", "xmppd/listeners/http@trusted-proxies", "xmppd/modules", "xmppd/log@file"} {
		found := false
		for _, got := range keys {
			found = found || got == k
		}
		if !found {
			t.Errorf("walkKeys misses %s (got %q)", k, keys)
		}
	}
}

func TestParseValues(t *testing.T) {
	c := mustParse(t, `<?xml version="1.0"?>
<!-- comment -->
<xmppd>
  <hosts><host name="example.org"/><host name="chat.example.org"/><host name="xn--bcher-kva.example"/></hosts>
  <tls cert="cert.pem" key="/etc/ssl/key.pem" min-version="1.3"/>
  <listeners>
    <c2s address=":5222"/>
    <http address="[::1]:443" tls="yes" websocket-path="" host-meta="no" trusted-proxies="127.0.0.1, 10.0.0.0/8 ::1"/>
  </listeners>
  <storage path="db/x.sqlite"/>
  <auth require-tls="1" allow-plain="false" scram-iterations="10000" failure-delay="2" channel-binding="off"/>
  <registration enabled="true" min-password-length="12"/>
  <limits max-stanza-size="1MiB" bytes-per-second="10kB" ping-interval="0" negotiation-timeout="1m30s" outbound-queue="5"/>
  <log level="debug" format="json" file="log/xmppd.log"/>
  <modules/>
</xmppd>
`)
	if got, want := c.Hosts, []string{"example.org", "chat.example.org", "bücher.example"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Hosts = %q, want %q", got, want)
	}
	if c.TLS != (TLS{Cert: "/data/cert.pem", Key: "/etc/ssl/key.pem", MinVersion: tls.VersionTLS13}) {
		t.Errorf("TLS = %+v", c.TLS)
	}
	if got, want := c.Listeners.C2S, []C2SListener{{Address: ":5222", TLS: TLSStartTLS}}; !reflect.DeepEqual(got, want) {
		t.Errorf("C2S = %+v, want %+v", got, want)
	}
	wantHTTP := []HTTPListener{{Address: "[::1]:443", TLS: true, WebSocketPath: "", BOSHPath: "/http-bind", HostMeta: false, TrustedProxies: PrefixList{
		netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}}}
	if !reflect.DeepEqual(c.Listeners.HTTP, wantHTTP) {
		t.Errorf("HTTP = %+v, want %+v", c.Listeners.HTTP, wantHTTP)
	}
	if !c.Listeners.HTTP[0].TrustedProxies.Contains(netip.MustParseAddr("10.1.2.3")) || c.Listeners.HTTP[0].TrustedProxies.Contains(netip.MustParseAddr("192.168.0.1")) {
		t.Error("PrefixList.Contains")
	}
	if c.Storage != (Storage{Driver: DriverSQLite, Path: "/data/db/x.sqlite", Sync: SyncNormal}) {
		t.Errorf("Storage = %+v", c.Storage)
	}
	wantAuth := Auth{RequireTLS: true, AllowPlain: false, SCRAMIterations: 10000, MaxFailures: 3, FailureDelay: 2 * time.Second,
		IPFailuresPerMinute: 20, AccountFailuresPerMinute: 10, ChannelBinding: false}
	if c.Auth != wantAuth {
		t.Errorf("Auth = %+v, want %+v", c.Auth, wantAuth)
	}
	if c.Registration != (Registration{Enabled: true, PerIPPerHour: 5, MinPasswordLength: 12, AllowPasswordChange: true, AllowRemoval: true}) {
		t.Errorf("Registration = %+v", c.Registration)
	}
	l := c.Limits
	if l.MaxStanzaSize != MiB || l.BytesPerSecond != 10000 || l.PingInterval != 0 || l.NegotiationTimeout != 90*time.Second || l.OutboundQueue != 5 || l.MaxRosterItems != 1000 {
		t.Errorf("Limits = %+v", l)
	}
	if c.Log != (Log{Level: slog.LevelDebug, Format: LogJSON, File: "/data/log/xmppd.log"}) {
		t.Errorf("Log = %+v", c.Log)
	}
	if c.Path != file || c.DataDir != "/data" {
		t.Errorf("Path=%q DataDir=%q", c.Path, c.DataDir)
	}
}

func TestMinimalFile(t *testing.T) {
	c := mustParse(t, `<xmppd/>`)
	d := Default("/data")
	c.Path, c.src = "", nil
	if !reflect.DeepEqual(c, d) {
		t.Errorf("<xmppd/> is not the default:\n%+v\n%+v", c, d)
	}
	// Present but empty sections keep defaults; present list parents drop theirs.
	c = mustParse(t, `<xmppd><tls/><limits/><listeners/></xmppd>`)
	if c.TLS != d.TLS || c.Limits != d.Limits {
		t.Error("empty section lost its defaults")
	}
	if len(c.Listeners.C2S) != 0 || len(c.Listeners.HTTP) != 0 {
		t.Errorf("<listeners/> kept the default listeners: %+v", c.Listeners)
	}
	// An item starts from its own defaults.
	c = mustParse(t, `<xmppd><listeners><http address=":80"/></listeners></xmppd>`)
	if got := c.Listeners.HTTP; len(got) != 1 || got[0].WebSocketPath != "/xmpp-websocket" || !got[0].HostMeta {
		t.Errorf("http item defaults: %+v", got)
	}
}

func TestRelativePaths(t *testing.T) {
	for _, tc := range []struct {
		dataDir, in string
		want        Path
	}{
		{"/data", "xmppd.db", "/data/xmppd.db"},
		{"/data", "sub/../x.db", "/data/x.db"},
		{"/data", "/abs/x.db", "/abs/x.db"},
		{"rel/data", "x.db", "rel/data/x.db"},
		{"", "x.db", Path(filepath.Join(DefaultDataDir, "x.db"))},
		{"/data", "../outside.db", "/outside.db"},
	} {
		c, err := Parse(strings.NewReader(`<xmppd><storage path="`+tc.in+`"/></xmppd>`), "f", tc.dataDir)
		if err != nil {
			t.Fatal(err)
		}
		if c.Storage.Path != tc.want {
			t.Errorf("dataDir %q, path %q: got %q, want %q", tc.dataDir, tc.in, c.Storage.Path, tc.want)
		}
	}
	// Not against the working directory.
	wd, _ := os.Getwd()
	c := mustParse(t, `<xmppd><log file="x.log"/><tls cert="c.pem" key="k.pem"/></xmppd>`)
	for _, p := range []Path{c.Log.File, c.TLS.Cert, c.TLS.Key} {
		if !strings.HasPrefix(string(p), "/data/") || strings.HasPrefix(string(p), wd) {
			t.Errorf("path %q not under the data dir", p)
		}
	}
	// Empty stays empty (meaning "not set").
	c = mustParse(t, `<xmppd><log file=""/></xmppd>`)
	if c.Log.File != "" || c.TLS.Cert != "" {
		t.Errorf("empty path resolved: %q %q", c.Log.File, c.TLS.Cert)
	}
}

func TestStorageSync(t *testing.T) {
	if c := mustParse(t, `<xmppd><storage sync="full"/></xmppd>`); c.Storage.Sync != SyncFull {
		t.Errorf("sync=full: %+v", c.Storage)
	}
	if c := mustParse(t, `<xmppd><storage/></xmppd>`); c.Storage.Sync != SyncNormal {
		t.Errorf("default sync: %+v", c.Storage)
	}
	_, err := parse(t, "<xmppd>\n<storage sync=\"always\"/></xmppd>")
	lines := errLines(t, err)
	if len(lines) != 1 || !strings.HasPrefix(lines[0], file+":2:") || !strings.Contains(lines[0], "sync") {
		t.Errorf("sync=always: %q", lines)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "xmppd.xml")
	if err := os.WriteFile(path, []byte("<xmppd>\n<hosts><host name=\"example.net\"/></hosts>\n</xmppd>\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != path || c.Hosts[0] != "example.net" || c.Storage.Path != Path(filepath.Join(dir, "data", "xmppd.db")) {
		t.Errorf("Load: Path=%q Hosts=%q Storage=%q", c.Path, c.Hosts, c.Storage.Path)
	}
	if err := os.WriteFile(path, []byte("<xmppd>\n<limits ping-interval=\"soon\"/>\n</xmppd>\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path, dir)
	if got, want := errLines(t, err), []string{path + `:2: xmppd/limits@ping-interval: "soon" is not a duration (e.g. "30s", "5m", "1h" or plain seconds)`}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if _, err := Load(filepath.Join(dir, "missing.xml"), dir); err == nil || !strings.HasPrefix(err.Error(), filepath.Join(dir, "missing.xml")+": ") {
		t.Errorf("missing file: %v", err)
	}
	c, err = Load("", dir)
	if err != nil || c.Path != "" || c.DataDir != dir {
		t.Errorf("Load(\"\"): %+v, %v", c, err)
	}
}

func TestIsLocal(t *testing.T) {
	c := mustParse(t, `<xmppd><hosts><host name="example.org"/><host name="bücher.example"/></hosts></xmppd>`)
	for in, want := range map[string]bool{
		"example.org": true, "Example.ORG": true, "example.org.": true, "bücher.example": true,
		"xn--bcher-kva.example": true, "localhost": false, "": false, "sub.example.org": false, "a@example.org": false,
	} {
		if got := c.IsLocal(in); got != want {
			t.Errorf("IsLocal(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestWarnings(t *testing.T) {
	c := mustParse(t, `<xmppd>
<auth require-tls="false"/>
<listeners><c2s address=":5222" tls="none"/></listeners>
</xmppd>`)
	want := []string{
		file + `:2: xmppd/auth@require-tls: require-tls="false": clients may authenticate on streams without TLS`,
		file + `:2: xmppd/auth@allow-plain: with require-tls="false", SASL PLAIN can send passwords in clear text`,
	}
	if !reflect.DeepEqual(c.Warnings, want) {
		t.Errorf("Warnings = %q\nwant %q", c.Warnings, want)
	}
	c = mustParse(t, `<xmppd>
<listeners><c2s address=":5222" tls="none"/></listeners>
<limits ping-interval="10s"/>
</xmppd>`)
	want = []string{
		file + `:2: xmppd/listeners/c2s@tls: tls="none" with <auth require-tls="true">: nobody can log in on :5222`,
		file + `:3: xmppd/limits@ping-interval: ping-interval (10s) is shorter than ping-timeout (30s)`,
	}
	if !reflect.DeepEqual(c.Warnings, want) {
		t.Errorf("Warnings = %q\nwant %q", c.Warnings, want)
	}
}

// A Config built or changed in Go validates too, without file positions.
func TestValidateInGo(t *testing.T) {
	c := Default("/data")
	c.Hosts = append(c.Hosts, "Bad Host")
	c.Limits.MaxStanzaSize = 100
	c.Listeners.C2S = append(c.Listeners.C2S, C2SListener{Address: "127.0.0.1:5222"})
	c.Log.Level = slog.Level(2)
	c.Storage.Driver = ""
	err := c.Validate()
	want := []string{
		`xmppd/storage@driver: "" is not one of sqlite`,
		`xmppd/limits@max-stanza-size: 100 bytes is less than the minimum 10000 bytes`,
		`xmppd/log@level: "info+2" is not one of debug, info, warn, error`,
		`xmppd/hosts/host@name: "Bad Host" is not a valid domain: idna: disallowed rune U+0020`,
		`xmppd/listeners/c2s@tls: "" is not one of starttls, direct, none`,
		`xmppd/listeners/c2s@address: 127.0.0.1:5222 is already used by xmppd/listeners/c2s`,
	}
	got := errLines(t, err)
	if !sameSet(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

// httpsExample is the example's second HTTP listener with its comment.
const httpsExample = `    <!-- The same over HTTPS: browsers reach WebSocket and BOSH here without a
         proxy (a plain-HTTP stream may log in only through a trusted proxy
         that terminated TLS, see above). -->
    <http address="127.0.0.1:5281" tls="true" websocket-path="/xmpp-websocket" bosh-path="/http-bind" host-meta="true" trusted-proxies=""/>`
