package interop

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/wire"
)

// xmpp.js (@xmpp/client from npm) is driven through
// testdata/xmppjs/client.mjs; .ci/run installs it with npm ci.

const xmppjsDir = "testdata/xmppjs"

// nodeArgs finds node and the flags it needs for a global WebSocket
// (built in from Node 22; behind --experimental-websocket from 20.10).
var nodeArgs = sync.OnceValues(func() ([]string, string) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, "node not in PATH"
	}
	if _, err := os.Stat(filepath.Join(xmppjsDir, "node_modules", "@xmpp", "client", "package.json")); err != nil {
		return nil, "@xmpp/client not installed (cd interop/" + xmppjsDir + " && npm ci)"
	}
	const check = "process.exit(typeof WebSocket === 'function' ? 0 : 3)"
	for _, flags := range [][]string{nil, {"--experimental-websocket"}} {
		if _, err := probe(20*time.Second, node, append(flags, "-e", check)...); err == nil {
			return append([]string{node}, flags...), ""
		}
	}
	v, _ := probe(20*time.Second, node, "--version")
	return nil, "node " + v + " has no WebSocket (need Node >= 20.10)"
})

// TestXMPPJSWebSocket logs xmpp.js in over wss:// (RFC 7395) with SCRAM,
// sends a message to a user of the Go client and receives the reply.
func TestXMPPJSWebSocket(t *testing.T) {
	t.Parallel()
	node, why := nodeArgs()
	if node == nil {
		missing(t, "%s", why)
	}
	// wss:// with the server's own certificate: a plain ws:// stream is not
	// secure (only a trusted proxy can vouch for one), and the browser-style
	// WebSocket of Node cannot send the proxy headers.
	e := servertest.Start(t, func(c *conf.Config) { c.Listeners.HTTP[0].TLS = true })
	port := e.Srv.HTTPAddrs()[0].(*net.TCPAddr).Port
	wss := "wss://" + e.Domain + ":" + strconv.Itoa(port) + "/xmpp-websocket"
	carolJID := e.AddUser("carol", "carol pw")
	daveJID := e.AddUser("dave", "dave pw")
	carol := e.Login("carol", "carol pw", "go")
	goOnline(t, carol)

	dir, err := filepath.Abs(xmppjsDir)
	if err != nil {
		t.Fatal(err)
	}
	argv := append(append([]string{}, node...), "client.mjs", wss, e.Domain, "dave", "dave pw", "js")
	js := startProc(t, "xmpp.js[dave]", dir, []string{"NODE_EXTRA_CA_CERTS=" + certFile(t, e)}, argv...)
	s := js.expect("session_start", func(ev event) bool {
		if ev.is("error") || ev.is("auth_failure") {
			t.Fatalf("xmpp.js: login failed: %v", ev)
		}
		return ev.is("session_start")
	})
	daveFull := s.str("jid")
	if daveFull != daveJID+"/js" {
		t.Errorf("bound JID = %q, want %q", daveFull, daveJID+"/js")
	}
	var mechs []string
	for _, ev := range js.seen {
		if ev.is("auth_attempt") {
			mechs = append(mechs, ev.str("mech"))
		}
	}
	if len(mechs) != 1 || !strings.HasPrefix(mechs[0], "SCRAM-SHA-") {
		t.Errorf("SASL attempts = [%s], want one SCRAM-SHA-*", quoteList(mechs))
	}
	js.expect("ready", evNamed("ready"))
	js.expect("own presence", presenceFrom("available", daveFull))

	// xmpp.js → Go client, to the bare JID.
	body := "hello from xmpp.js <&> ☃ 𝄞"
	js.do(map[string]any{"cmd": "message", "to": carolJID, "body": body, "id": "js1"})
	m := expectGoMessage(t, carol, "xmpp.js's message")
	if m.Body != body || m.From != daveFull || m.ID != "js1" || m.Type != "chat" {
		t.Errorf("Go client got body %q from %q (id %q, type %q), want %q from %q (id js1, chat)", m.Body, m.From, m.ID, m.Type, body, daveFull)
	}

	// Go client → xmpp.js, to the full JID it came from.
	reply := "reply from Go: \"quoted\" & <tagged> ✓"
	var b []byte
	b = append(b, "<message type='chat' id='go1' to='"...)
	b = wire.AppendEscapedAttr(b, m.From)
	b = append(b, "'><body>"...)
	b = wire.AppendEscapedText(b, reply)
	b = append(b, "</body></message>"...)
	if err := carol.Send(string(b)); err != nil {
		t.Fatal(err)
	}
	r := js.expect("reply", isMessage(reply))
	if r.str("frm") != carol.JID || r.str("id") != "go1" {
		t.Errorf("xmpp.js got the reply from %q (id %q), want from %q (id go1)", r.str("frm"), r.str("id"), carol.JID)
	}

	js.send(map[string]any{"cmd": "quit"})
	evs := js.wait(waitEvent)
	if !hasEvent(evs, evNamed("offline")) {
		t.Errorf("xmpp.js did not go offline cleanly")
	}
}
