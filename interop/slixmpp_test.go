package interop

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/server/servertest"
)

// slixmpp (Debian's python3-slixmpp) is driven through testdata/slixclient.py.

var slixPython = sync.OnceValues(func() (string, string) {
	var cands []string
	if p := os.Getenv("XMPPD_INTEROP_PYTHON"); p != "" {
		cands = append(cands, p)
	}
	// Debian's package installs into /usr/lib/python3/dist-packages, which
	// only the system interpreter sees (a pyenv python3 may come first in
	// PATH).
	cands = append(cands, "/usr/bin/python3")
	if p, err := exec.LookPath("python3"); err == nil {
		cands = append(cands, p)
	}
	var tried []string
	for _, py := range cands {
		out, err := probe(20*time.Second, py, "-c", "import slixmpp; print(slixmpp.__version__)")
		if err == nil {
			return py, out
		}
		tried = append(tried, py+": "+lastLine(out))
	}
	return "", strings.Join(tried, "; ")
})

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// slixOpts are the command-line options of slixclient.py.
type slixOpts struct {
	DirectTLS bool
	// Mechs restricts SASL mechanisms (comma-separated); "" lets slixmpp
	// choose among everything offered.
	Mechs string
	// ChannelBinding lets slixmpp's SCRAM see the TLS channel-binding data.
	// slixmpp 1.8.3 only knows tls-unique, which RFC 9266 leaves undefined
	// for TLS 1.3 and which the server does not offer; with it, SCRAM-*-PLUS
	// fails and plain SCRAM sends the GS2 flag "y" (see
	// TestSlixmppChannelBinding).
	ChannelBinding bool
	NoRoster       bool // skip the roster get after session start
	NoPresence     bool // send no initial presence
}

// scramOnly makes slixmpp use SCRAM without -PLUS and GS2 flag "n", which is
// how it logs in to a server that offers -PLUS with tls-exporter only.
var scramOnly = slixOpts{Mechs: "SCRAM-SHA-1,SCRAM-SHA-256,SCRAM-SHA-512"}

// startSlix logs local in with slixmpp; resource is the requested resource.
func startSlix(t *testing.T, e *servertest.Env, local, password, resource string, o slixOpts) *proc {
	t.Helper()
	py, info := slixPython()
	if py == "" {
		missing(t, "no python3 that can import slixmpp (apt-get install python3-slixmpp): %s", info)
	}
	addr := e.StartTLS
	if o.DirectTLS {
		addr = e.DirectTLS
	}
	host, port, ok := strings.Cut(addr, ":")
	if !ok {
		t.Fatalf("bad listener address %q", addr)
	}
	script, err := filepath.Abs(filepath.Join("testdata", "slixclient.py"))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{py, script,
		"--jid", local + "@" + e.Domain + "/" + resource, "--password", password,
		"--host", host, "--port", port,
		// Trust exactly the server's self-signed certificate; slixmpp checks
		// it and its name (the JID's domain).
		"--cafile", certFile(t, e),
	}
	if o.DirectTLS {
		args = append(args, "--direct-tls")
	}
	if o.Mechs != "" {
		args = append(args, "--mechs", o.Mechs)
	}
	if !o.ChannelBinding {
		args = append(args, "--no-channel-binding")
	}
	if o.NoRoster {
		args = append(args, "--no-roster")
	}
	if o.NoPresence {
		args = append(args, "--no-presence")
	}
	p := startProc(t, "slixmpp["+local+"]", "", []string{"PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1"}, args...)
	p.selfPresence = !o.NoPresence
	return p
}

// certFile is the server's self-signed certificate.
func certFile(t *testing.T, e *servertest.Env) string {
	t.Helper()
	f := filepath.Join(e.Config.DataDir, "selfsigned.crt")
	if _, err := os.Stat(f); err != nil {
		t.Fatalf("server certificate: %v", err)
	}
	return f
}

// online waits for the session and the script's "ready" (roster fetched,
// initial presence sent) and returns the session_start event. If the client
// sent initial presence, it also waits for the server to reflect it back
// (RFC 6121 §4.2.2), after which the session is available: messages to the
// bare JID reach it rather than offline storage.
func (p *proc) online() event {
	p.t.Helper()
	s := p.expect("session_start", func(e event) bool {
		if e.is("auth_failure") || e.is("stream_error") || e.is("ssl_invalid_chain") {
			p.t.Fatalf("%s: login failed: %v", p.name, e)
		}
		return e.is("session_start")
	})
	p.expect("ready", evNamed("ready"))
	if p.selfPresence {
		p.expect("own initial presence", presenceFrom("available", s.str("jid")))
	}
	return s
}

func isMessage(body string) func(event) bool {
	return func(e event) bool { return e.is("message") && e.str("body") == body }
}

// presenceFrom matches a presence of type typ ("available", "subscribe", …)
// from the JID from.
func presenceFrom(typ, from string) func(event) bool {
	return func(e event) bool { return e.is("presence") && e.str("type") == typ && e.str("frm") == from }
}

// rosterPush matches a roster push carrying contact with subscription sub
// and ask (ask "" = no pending subscription request).
func rosterPush(contact, sub, ask string) func(event) bool {
	return func(e event) bool {
		if !e.is("roster_push") {
			return false
		}
		it := e.obj("items").obj(contact)
		return it != nil && it.str("subscription") == sub && it.str("ask") == ask
	}
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = strconv.Quote(x)
	}
	return strings.Join(q, ", ")
}
