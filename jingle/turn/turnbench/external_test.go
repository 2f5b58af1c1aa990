package main

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExternalTURNServer runs the load's client against coturn
// (Debian's turnserver) with TURN REST API credentials, as the -external
// mode does: two allocations bound to each other relay a packet each way,
// and coturn's CPU is read from /proc. Without turnserver it skips, unless
// XMPPD_INTEROP=1 (CI), where it fails.
func TestExternalTURNServer(t *testing.T) {
	bin, err := exec.LookPath("turnserver")
	if err != nil {
		if os.Getenv("XMPPD_INTEROP") == "1" {
			t.Fatal("turnserver (Debian package coturn) not installed")
		}
		t.Skip("turnserver not installed")
	}
	// 127.0.0.6: apart from coturn.sh's addresses, which may be in use.
	const secret = "external-test-secret"
	dir := t.TempDir()
	cfg := strings.Join([]string{
		"listening-ip=127.0.0.6", "listening-port=25000", "relay-ip=127.0.0.6",
		"min-port=25001", "max-port=25999", "realm=localhost",
		"use-auth-secret", "static-auth-secret=" + secret, "fingerprint", "allow-loopback-peers",
		"no-tls", "no-dtls", "no-tcp", "no-tcp-relay", "no-cli", "simple-log",
		"log-file=" + filepath.Join(dir, "turn.log"), "pidfile=" + filepath.Join(dir, "turn.pid"),
		"userdb=" + filepath.Join(dir, "turndb"),
	}, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "turnserver.conf"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", filepath.Join(dir, "turnserver.conf"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	srv := netip.MustParseAddrPort("127.0.0.6:25000")
	// dialLean retransmits its first Allocate until coturn answers (five
	// times, a second apart): coturn binds its port soon after it starts.
	var a *lean
	for try := 0; a == nil; try++ {
		if a, err = dialLean(srv, secret, "caller@localhost"); err != nil && try == 5 {
			t.Fatalf("allocate: %v (coturn log in %s)", err, dir)
		}
	}
	b, err := dialLean(srv, secret, "callee@localhost")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dialLean(srv, "wrong-secret", "mallory@localhost"); err == nil {
		t.Error("coturn accepted credentials made with another secret")
	}
	if err := a.bind(b.relay, 0x4000); err != nil {
		t.Fatal(err)
	}
	if err := b.bind(a.relay, 0x4001); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	_ = a.conn.SetReadDeadline(deadline)
	_ = b.conn.SetReadDeadline(deadline)
	for _, d := range []struct {
		from, to *lean
		msg      string
	}{{a, b, "to the callee"}, {b, a, "to the caller"}} {
		frame := make([]byte, 4+16)
		copy(frame[4:], d.msg)
		if err := d.from.send(frame); err != nil {
			t.Fatal(err)
		}
		p := make([]byte, 64)
		n, kernel, err := d.to.recv(p)
		if err != nil || string(p[:n]) != d.msg+"\x00\x00\x00" {
			t.Fatalf("relayed %q, %v; want %q", p[:n], err, d.msg)
		}
		if kernel == 0 {
			t.Error("no kernel receive timestamp")
		}
	}
	if _, err := procCPU(cmd.Process.Pid); err != nil {
		t.Errorf("coturn's CPU: %v", err)
	}
}
