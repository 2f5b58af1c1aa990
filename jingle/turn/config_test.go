package turn

import (
	"runtime"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/conf"
)

func parse(t *testing.T, turnElem string) (*Config, error) {
	t.Helper()
	cfg, err := conf.Parse(strings.NewReader("<xmppd><modules>"+turnElem+"</modules></xmppd>"), "test.xml", t.TempDir())
	if err != nil {
		return nil, err
	}
	return cfg.Module("turn").(*Config), nil
}

func TestConfig(t *testing.T) {
	c, err := parse(t, `<turn enabled="true" listen="0.0.0.0:3478" relay-address="203.0.113.9" ports="50000-50100"
		credential-ttl="1h" bandwidth-per-allocation="250kB" allow-peers="127.0.0.0/8, 10.0.0.0/8">
		<external host="turn.example.net" secret="s" transports="tcp"/>
	</turn>`)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Enabled() || c.Ports != (PortRange{50000, 50100}) || c.BandwidthPerAllocation != 250000 ||
		len(c.AllowPeers) != 2 || c.TLSListen != DefaultTLSListen {
		t.Errorf("%+v", c)
	}
	if e := c.External[0]; e.Port != 3478 || !e.STUN || e.TLSPort != 0 {
		t.Errorf("external defaults: %+v", e)
	}
	if a, _ := c.relayAddress(); a.String() != "203.0.113.9" {
		t.Errorf("relay %v", a)
	}

	d, err := parse(t, `<turn enabled="true"/>`)
	if err != nil {
		t.Fatal(err)
	}
	if a, err := d.relayAddress(); err != nil || a.String() != "127.0.0.1" {
		t.Errorf("default relay address %v %v", a, err)
	}

	for _, bad := range []struct{ elem, msg string }{
		{`<turn enabled="true" listen="0.0.0.0:3478"/>`, "relay-address"},
		{`<turn enabled="true" listen=":3478"/>`, "relay-address"},
		{`<turn relay-address="::1"/>`, "IPv4"},
		{`<turn listen="nonsense"/>`, "listen"},
		{`<turn ports="3-2"/>`, "port range"},
		{`<turn enabled="true" embedded="false"/>`, "external"},
		{`<turn enabled="true" listen="" tls-listen=""/>`, "listen"},
		{`<turn><external host="h" secret="s" transports="sctp"/></turn>`, "transports"},
		{`<turn><external host="h"/></turn>`, "secret"},
		{`<turn credential-ttl="10s"/>`, "credential-ttl"},
	} {
		if _, err := parse(t, bad.elem); err == nil || !strings.Contains(err.Error(), bad.msg) {
			t.Errorf("%s: %v (want %q)", bad.elem, err, bad.msg)
		}
	}
}

// TestSocketBufferConfig: receive-buffer and send-buffer size the UDP
// listening sockets of the running server; out-of-range values are
// configuration errors.
func TestSocketBufferConfig(t *testing.T) {
	c, err := parse(t, `<turn enabled="true" receive-buffer="256KiB" send-buffer="128KiB"/>`)
	if err != nil {
		t.Fatal(err)
	}
	if c.ReceiveBuffer != 256<<10 || c.SendBuffer != 128<<10 {
		t.Fatalf("receive-buffer %d, send-buffer %d", c.ReceiveBuffer, c.SendBuffer)
	}
	if d, _ := parse(t, `<turn/>`); d.ReceiveBuffer != DefaultSocketBuffer || d.SendBuffer != DefaultSocketBuffer {
		t.Errorf("defaults %d %d", d.ReceiveBuffer, d.SendBuffer)
	}
	for _, bad := range []string{`<turn receive-buffer="1KB"/>`, `<turn send-buffer="2GiB"/>`, `<turn receive-buffer="lots"/>`} {
		if _, err := parse(t, bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	s := startServer(t, func(o *Options) {
		o.TLSListen, o.UDPSockets = "", 2
		o.ReceiveBuffer, o.SendBuffer = int(c.ReceiveBuffer), int(c.SendBuffer)
	})
	for i, uc := range s.udp {
		rcv, snd := sockBuffers(t, uc)
		// Linux doubles the value set (bookkeeping overhead) and reports that.
		if rcv != 2*256<<10 || snd != 2*128<<10 {
			t.Errorf("socket %d: SO_RCVBUF %d, SO_SNDBUF %d; want %d, %d", i, rcv, snd, 2*256<<10, 2*128<<10)
		}
	}
}

// TestUDPSockets: udp-sockets is read, and the server opens 4 × GOMAXPROCS
// sockets on the listening port by default (one reader each).
func TestUDPSockets(t *testing.T) {
	c, err := parse(t, `<turn udp-sockets="3"/>`)
	if err != nil || c.UDPSockets != 3 {
		t.Fatalf("udp-sockets: %v %v", c, err)
	}
	if _, err := parse(t, `<turn udp-sockets="-1"/>`); err == nil {
		t.Error("udp-sockets=-1 accepted")
	}
	s := startServer(t, func(o *Options) { o.TLSListen = "" })
	if want := 4 * runtime.GOMAXPROCS(0); len(s.udp) != want {
		t.Errorf("%d UDP sockets, want %d", len(s.udp), want)
	}
	s3 := startServer(t, func(o *Options) { o.TLSListen, o.UDPSockets = "", c.UDPSockets })
	if len(s3.udp) != 3 {
		t.Errorf("%d UDP sockets, want 3", len(s3.udp))
	}
}
