package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
)

// xmppd builds the command once per test binary.
func xmppd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "xmppd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func runCLI(args []string, stdin string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestConfigExampleChecks(t *testing.T) {
	code, example, _ := runCLI([]string{"config", "example"}, "")
	if code != 0 || !strings.Contains(example, "<xmppd") {
		t.Fatalf("config example: %d %q", code, example)
	}
	f := filepath.Join(t.TempDir(), "x.xml")
	if err := os.WriteFile(f, []byte(example), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI([]string{"config", "check", "-config", f}, "")
	if code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("check of the example failed: %d %s %s", code, out, errs)
	}
}

func TestConfigCheckReportsFileLine(t *testing.T) {
	f := filepath.Join(t.TempDir(), "bad.xml")
	bad := "<xmppd>\n  <hosts><host name='localhost'/></hosts>\n  <limits max-stanza-size='10'/>\n  <bogus/>\n</xmppd>\n"
	if err := os.WriteFile(f, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCLI([]string{"config", "check", "-config", f}, "")
	if code == 0 {
		t.Fatal("a bad config passed the check")
	}
	for _, want := range []string{f + ":3:", "max-stanza-size", f + ":4:", "bogus"} {
		if !strings.Contains(errs, want) {
			t.Errorf("error output lacks %q:\n%s", want, errs)
		}
	}
}

func TestUserCommands(t *testing.T) {
	data := t.TempDir()
	if code, _, errs := runCLI([]string{"user", "add", "-data", data, "alice@localhost", "pw-alice-1"}, ""); code != 0 {
		t.Fatalf("add: %s", errs)
	}
	if code, _, errs := runCLI([]string{"user", "add", "-data", data, "bob@localhost"}, "pw-from-stdin\n"); code != 0 {
		t.Fatalf("add from stdin: %s", errs)
	}
	if code, _, _ := runCLI([]string{"user", "add", "-data", data, "alice@localhost", "x"}, ""); code == 0 {
		t.Fatal("adding an existing user succeeded")
	}
	if code, _, _ := runCLI([]string{"user", "add", "-data", data, "carol@elsewhere.example", "x"}, ""); code == 0 {
		t.Fatal("adding a user of a foreign domain succeeded")
	}
	if code, _, _ := runCLI([]string{"user", "add", "-data", data, "not a jid@@", "x"}, ""); code == 0 {
		t.Fatal("adding a malformed JID succeeded")
	}
	_, out, _ := runCLI([]string{"user", "list", "-data", data}, "")
	if out != "alice@localhost\nbob@localhost\n" {
		t.Fatalf("list: %q", out)
	}
	if code, _, errs := runCLI([]string{"user", "passwd", "-data", data, "alice@localhost", "pw-alice-2"}, ""); code != 0 {
		t.Fatalf("passwd: %s", errs)
	}
	if code, _, _ := runCLI([]string{"user", "passwd", "-data", data, "nobody@localhost", "x"}, ""); code == 0 {
		t.Fatal("passwd of a missing user succeeded")
	}
	if code, _, errs := runCLI([]string{"user", "del", "-data", data, "bob@localhost"}, ""); code != 0 {
		t.Fatalf("del: %s", errs)
	}
	_, out, _ = runCLI([]string{"user", "list", "-data", data}, "")
	if out != "alice@localhost\n" {
		t.Fatalf("list after del: %q", out)
	}
}

// TestServeLifecycle runs the real binary: accounts added by the CLI while
// it runs can log in; SIGHUP reloads certificates; SIGTERM ends streams
// with <system-shutdown/> and exits 0.
func TestServeLifecycle(t *testing.T) {
	bin := xmppd(t)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "xmppd.xml")
	cfg := `<xmppd>
  <hosts><host name="localhost"/></hosts>
  <listeners>
    <c2s address="127.0.0.1:0" tls="starttls"/>
  </listeners>
  <auth failure-delay="0s"/>
</xmppd>
`
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", cfgFile, "-data", filepath.Join(dir, "data"))
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	waitLine := func(re *regexp.Regexp) []string {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("xmppd exited while waiting for %v", re)
				}
				if m := re.FindStringSubmatch(l); m != nil {
					return m
				}
			case <-deadline:
				t.Fatalf("timed out waiting for %v", re)
			}
		}
	}
	addr := waitLine(regexp.MustCompile(`c2s listening" address=(\S+)`))[1]
	waitLine(regexp.MustCompile(`xmppd started`))

	out, err := exec.Command(bin, "user", "add", "-config", cfgFile, "-data", filepath.Join(dir, "data"), "alice@localhost", "pw-alice-1").CombinedOutput()
	if err != nil {
		t.Fatalf("user add while serving: %v %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Addr: addr, Domain: "localhost", Username: "alice", Password: "pw-alice-1", Resource: "r",
		TLS: &tls.Config{ServerName: "localhost", InsecureSkipVerify: true}}) //nolint:gosec // self-signed
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	_ = cmd.Process.Signal(syscall.SIGHUP)
	waitLine(regexp.MustCompile(`certificates reloaded`))

	_ = cmd.Process.Signal(syscall.SIGTERM)
	st, err := c.Next(10 * time.Second)
	if err != nil || !client.Contains(st, "<system-shutdown") {
		t.Fatalf("want system-shutdown, got %v %v", st, err)
	}
	go func() {
		for range lines {
		}
	}()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("xmppd exit: %v", err)
	}
}

// TestExampleDocumentsEveryModule checks the committed example against the
// modules linked into the real binary: every key present, every value the
// default.
func TestExampleDocumentsEveryModule(t *testing.T) {
	if err := conf.CheckExample(); err != nil {
		t.Fatal(err)
	}
}
