package interop

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/server/servertest"
)

// TestSendxmpp sends a message with go-sendxmpp (Debian's go-sendxmpp)
// over STARTTLS and over direct TLS to a user logged in with the Go client,
// which receives the body intact from alice's full JID.
//
// go-sendxmpp is given no -n (skip verification): Go's crypto/x509 reads
// SSL_CERT_FILE, so it verifies the server's self-signed certificate
// against exactly that file, with the name from -j (localhost).
func TestSendxmpp(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("go-sendxmpp")
	if err != nil {
		missing(t, "go-sendxmpp not in PATH (apt-get install go-sendxmpp)")
	}
	e := servertest.Start(t, nil)
	aliceJID := e.AddUser("alice", "alice pw")
	e.AddUser("bob", "bob pw")
	bob := e.Login("bob", "bob pw", "go")
	goOnline(t, bob)

	for _, tc := range []struct {
		name  string
		addr  string
		flags []string
	}{
		{"starttls", e.StartTLS, nil},
		{"directtls", e.DirectTLS, []string{"--tls"}},
	} {
		// Sequential: both messages go to the same Go client.
		body := "grüße from go-sendxmpp over " + tc.name + " <&> ✓"
		_, port, _ := strings.Cut(tc.addr, ":")
		args := append([]string{
			"--username", aliceJID, "--password", "alice pw",
			"--jserver", "localhost:" + port,
			"--timeout", "20",
		}, tc.flags...)
		args = append(args, bob.JID)
		ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Stdin = strings.NewReader(body)
		// A HOME without a sendxmpprc: only the flags count.
		cmd.Env = append(cmd.Environ(), "HOME="+t.TempDir(), "SSL_CERT_FILE="+certFile(t, e))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		cancel()
		if err != nil {
			t.Fatalf("%s: go-sendxmpp %s: %v\n%s", tc.name, strings.Join(args, " "), err, out.String())
		}
		m := expectGoMessage(t, bob, "go-sendxmpp's message over "+tc.name)
		if m.Body != body {
			t.Errorf("%s: body = %q, want %q", tc.name, m.Body, body)
		}
		if !strings.HasPrefix(m.From, aliceJID+"/") {
			t.Errorf("%s: from = %q, want a full JID of %s", tc.name, m.From, aliceJID)
		}
		if m.Delay != nil {
			t.Errorf("%s: live message carries a delay (stamp %s)", tc.name, m.Delay.Stamp)
		}
	}
}
