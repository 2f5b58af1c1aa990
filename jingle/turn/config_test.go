package turn

import (
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
