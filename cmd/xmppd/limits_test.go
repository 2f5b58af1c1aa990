package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/client"
)

// TestSurvivesFileDescriptorExhaustion runs the binary with a limit of 256
// open files and opens 400 connections to it. Accept fails with EMFILE; the
// server must wait and retry rather than stop: the process stays up, a
// session logged in before keeps exchanging messages, and a new login
// succeeds once the connections are closed.
func TestSurvivesFileDescriptorExhaustion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	bin := xmppd(t)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "xmppd.xml")
	cfg := `<xmppd>
  <hosts><host name="localhost"/></hosts>
  <listeners><c2s address="127.0.0.1:0" tls="starttls"/></listeners>
  <auth failure-delay="0s" ip-failures-per-minute="0"/>
  <limits max-connections-per-ip="0"/>
</xmppd>
`
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	for _, u := range []string{"alice", "bob"} {
		if out, err := exec.Command(bin, "user", "add", "-config", cfgFile, "-data", data, u+"@localhost", "password-"+u).CombinedOutput(); err != nil {
			t.Fatalf("user add: %v %s", err, out)
		}
	}
	// The shell lowers the limit, then becomes xmppd (same process).
	cmd := exec.Command("sh", "-c", `ulimit -n 256 && exec "$0" "$@"`, bin, "-config", cfgFile, "-data", data)
	d, exited := startCmd(t, cmd)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alice, err := client.Dial(ctx, d.config("alice"))
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	bob, err := client.Dial(ctx, d.config("bob"))
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()

	// 400 connections: more than the server has descriptors for.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 400 {
		c, err := net.Dial("tcp", d.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// The server tells that accepting failed and that it retries.
	d.waitLine(t, exited, regexp.MustCompile(`accept failed; retrying.*too many open files`))

	// The logged-in sessions still work: a message round trip.
	if err := alice.Send("<message to='bob@localhost/r' type='chat' id='m1'><body>during</body></message>"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Expect(time.Minute, client.ID("m1")); err != nil {
		t.Fatalf("bob did not get alice's message while descriptors ran out: %v", err)
	}
	if err := bob.Send("<message to='alice@localhost/r' type='chat' id='m2'><body>reply</body></message>"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Expect(time.Minute, client.ID("m2")); err != nil {
		t.Fatalf("alice did not get bob's reply: %v", err)
	}

	// Once the connections close, a new login succeeds.
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	cfgBob := d.config("bob")
	cfgBob.Resource = "second"
	bob2, err := client.Dial(ctx, cfgBob)
	if err != nil {
		t.Fatalf("login after the connections closed: %v", err)
	}
	defer bob2.Close()
	if err := alice.Send("<message to='bob@localhost/second' type='chat' id='m3'><body>after</body></message>"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob2.Expect(time.Minute, client.ID("m3")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		t.Fatal("xmppd exited")
	default:
	}
}

// startCmd starts an xmppd command (maybe wrapped) and waits for its c2s
// address. The channel is closed when the process has exited.
func startCmd(t *testing.T, cmd *exec.Cmd) (*daemon, <-chan struct{}) {
	t.Helper()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, lines: make(chan string, 1000)}
	exited := make(chan struct{})
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	go func() {
		buf := make([]byte, 0, 4096)
		b := make([]byte, 4096)
		for {
			n, err := stderr.Read(b)
			buf = append(buf, b[:n]...)
			for {
				i := strings.IndexByte(string(buf), '\n')
				if i < 0 {
					break
				}
				select {
				case d.lines <- string(buf[:i]):
				default:
				}
				buf = buf[i+1:]
			}
			if err != nil {
				close(d.lines)
				_ = cmd.Wait()
				close(exited)
				return
			}
		}
	}()
	re := regexp.MustCompile(`c2s listening" address=(\S+)`)
	deadline := time.After(30 * time.Second)
	for d.addr == "" {
		select {
		case l, ok := <-d.lines:
			if !ok {
				t.Fatal("xmppd exited before listening")
			}
			if m := re.FindStringSubmatch(l); m != nil {
				d.addr = m[1]
			}
		case <-deadline:
			t.Fatal("xmppd did not start")
		}
	}
	return d, exited
}

// waitLine waits for a log line matching re; it fails if the process exits
// first.
func (d *daemon) waitLine(t *testing.T, exited <-chan struct{}, re *regexp.Regexp) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		select {
		case l, ok := <-d.lines:
			if !ok {
				t.Fatalf("xmppd exited before a log line matching %s", re)
			}
			if re.MatchString(l) {
				return
			}
		case <-deadline:
			t.Fatalf("no log line matching %s", re)
		}
	}
}
