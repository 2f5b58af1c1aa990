package interop

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMissingClientSkipsOrFails runs TestSendxmpp in a child process whose
// PATH has no go-sendxmpp: without XMPPD_INTEROP it is skipped with a
// message naming the client, its package and how to run the interop tests;
// with XMPPD_INTEROP=1 it fails.
func TestMissingClientSkipsOrFails(t *testing.T) {
	t.Parallel()
	run := func(interop string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSendxmpp$", "-test.v", "-test.count=1")
		cmd.Env = []string{"PATH=" + t.TempDir(), "HOME=" + os.Getenv("HOME")}
		if interop != "" {
			cmd.Env = append(cmd.Env, "XMPPD_INTEROP="+interop)
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("")
	if err != nil || !strings.Contains(out, "--- SKIP: TestSendxmpp") {
		t.Fatalf("without the client and XMPPD_INTEROP: %v\n%s", err, out)
	}
	for _, want := range []string{"go-sendxmpp", "apt-get install go-sendxmpp", ".ci/run", "XMPPD_INTEROP=1 go test"} {
		if !strings.Contains(out, want) {
			t.Errorf("the skip message does not say %q:\n%s", want, out)
		}
	}
	out, err = run("1")
	if err == nil || !strings.Contains(out, "--- FAIL: TestSendxmpp") {
		t.Fatalf("without the client and with XMPPD_INTEROP=1: %v\n%s", err, out)
	}
}
