package c2s_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/certs"
	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/sasl"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/wire"
)

var (
	hostA = net.ParseIP("127.0.0.1") // the stranger
	hostB = net.ParseIP("127.0.0.2") // the owner (Linux routes 127/8 to lo)
)

// authFrom makes one login attempt from ip and returns the SASL failure
// condition, or "" when the client logged in.
func authFrom(t *testing.T, e *servertest.Env, ip net.IP, user, password string) string {
	t.Helper()
	cfg := e.ClientConfig(user, password, "r")
	cfg.LocalIP = ip
	c, err := client.Dial(context.Background(), cfg)
	if err == nil {
		c.Close()
		return ""
	}
	var ae *client.AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("login %s from %s: %v", user, ip, err)
	}
	for _, cond := range []string{"not-authorized", "temporary-auth-failure"} {
		if strings.Contains(ae.Raw, "<"+cond+"/>") {
			return cond
		}
	}
	t.Fatalf("login %s from %s: %s", user, ip, ae.Raw)
	return ""
}

// TestStrangerCannotLockOwnerOut: wrong guesses against alice from one
// address throttle that address (for alice, then for everyone), never
// alice herself logging in from another address.
func TestStrangerCannotLockOwnerOut(t *testing.T) {
	e := servertest.Start(t, func(c *conf.Config) {
		c.Auth.IPFailuresPerMinute = 20
		c.Auth.AccountFailuresPerMinute = 10
	})
	e.AddUser("alice", "secret-pw")
	e.AddUser("bob", "secret-pw")
	for i := 0; i < 10; i++ {
		if got := authFrom(t, e, hostA, "alice", "guess"); got != "not-authorized" {
			t.Fatalf("guess %d: %s", i, got)
		}
	}
	// The stranger is throttled for alice: even the right password fails.
	if got := authFrom(t, e, hostA, "alice", "secret-pw"); got != "temporary-auth-failure" {
		t.Fatalf("right password from the guessing address: %q, want temporary-auth-failure", got)
	}
	// The owner, elsewhere, logs in.
	if got := authFrom(t, e, hostB, "alice", "secret-pw"); got != "" {
		t.Fatalf("owner from another address: %s", got)
	}
	// The stranger's address as a whole: bob still logs in from it until
	// the per-address limit is used up, then nobody does.
	if got := authFrom(t, e, hostA, "bob", "secret-pw"); got != "" {
		t.Fatalf("bob from the guessing address before its limit: %s", got)
	}
	for i := 0; i < 10; i++ {
		if got := authFrom(t, e, hostA, "nobody", "guess"); got != "not-authorized" {
			t.Fatalf("guess %d against an unknown user: %s", i, got)
		}
	}
	if got := authFrom(t, e, hostA, "bob", "secret-pw"); got != "temporary-auth-failure" {
		t.Fatalf("bob from an address over its limit: %q, want temporary-auth-failure", got)
	}
	if got := authFrom(t, e, hostB, "bob", "secret-pw"); got != "" {
		t.Fatalf("bob from another address: %s", got)
	}
}

// rawTLS is a direct-TLS stream driven by hand.
type rawTLS struct {
	t  *testing.T
	c  *tls.Conn
	rd *wire.Reader
}

func dialRawTLS(t *testing.T, e *servertest.Env) *rawTLS {
	t.Helper()
	return dialRawTLSWith(t, e, 0, nil)
}

// dialRawTLSWith is dialRawTLS with a highest TLS version (0: the newest)
// and a function run between the TLS handshake and the stream header.
func dialRawTLSWith(t *testing.T, e *servertest.Env, maxVersion uint16, afterHandshake func()) *rawTLS {
	t.Helper()
	c, err := tls.Dial("tcp", e.DirectTLS, &tls.Config{ServerName: e.Domain, InsecureSkipVerify: true, NextProtos: []string{"xmpp-client"}, MaxVersion: maxVersion}) //nolint:gosec // test certificate
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(timeout))
	r := &rawTLS{t: t, c: c, rd: wire.NewReader(c, 1<<20)}
	if afterHandshake != nil {
		afterHandshake()
	}
	r.send(header)
	if _, err := r.rd.Header(); err != nil {
		t.Fatal(err)
	}
	if f := r.next(); f.Name != "features" {
		t.Fatalf("want features, got %s", f.Raw)
	}
	return r
}

func (r *rawTLS) send(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.c, s); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawTLS) next() *wire.Stanza {
	r.t.Helper()
	st, err := r.rd.Next()
	if err != nil {
		r.t.Fatal(err)
	}
	return st
}

// scram runs one SCRAM exchange with m and returns the server's last
// element (<success/> or <failure/>).
func (r *rawTLS) scram(mech string, m *sasl.Client) *wire.Stanza {
	r.t.Helper()
	first, _, err := m.Step(nil)
	if err != nil {
		r.t.Fatal(err)
	}
	r.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='" + mech + "'>" + base64.StdEncoding.EncodeToString(first) + "</auth>")
	for {
		st := r.next()
		if st.Name != "challenge" {
			return st
		}
		var ch struct {
			Data string `xml:",chardata"`
		}
		_ = st.Decode(&ch)
		data, _ := base64.StdEncoding.DecodeString(ch.Data)
		resp, _, err := m.Step(data)
		if err != nil {
			r.t.Fatal(err)
		}
		r.send("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + base64.StdEncoding.EncodeToString(resp) + "</response>")
	}
}

// plusUnique sends a -PLUS first message with the tls-unique binding, which
// TLS 1.3 does not define.
func (r *rawTLS) plusUnique(mech string) *wire.Stanza {
	r.t.Helper()
	r.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='" + mech + "'>" +
		base64.StdEncoding.EncodeToString([]byte("p=tls-unique,,n=alice,r=abcdefgh")) + "</auth>")
	return r.next()
}

// TestUnsupportedBindingTypeThenY: a client whose -PLUS attempt was refused
// for its channel-binding type may go on with plain SCRAM and the GS2 flag
// "y" (it now knows the server cannot bind with it). Such refusals are not
// failed logins: not counted per stream, per address or per account. A
// client that never tried -PLUS and sends "y" while -PLUS is offered is
// refused (RFC 5802 §6 downgrade protection).
func TestUnsupportedBindingTypeThenY(t *testing.T) {
	e := servertest.Start(t, func(c *conf.Config) {
		c.Auth.MaxFailures = 1
		c.Auth.IPFailuresPerMinute = 1
	})
	e.AddUser("alice", "secret-pw")
	yClient := func() *sasl.Client {
		m, err := sasl.NewClient("SCRAM-SHA-256", "alice", "secret-pw", sasl.ClientOptions{SupportsBinding: true})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	r := dialRawTLS(t, e)
	for _, mech := range []string{"SCRAM-SHA-512-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"} {
		if f := r.plusUnique(mech); f.Name != "failure" || !client.Contains(f, "<invalid-mechanism/>") {
			t.Fatalf("%s with tls-unique: %s", mech, f.Raw)
		}
	}
	if f := r.scram("SCRAM-SHA-256", yClient()); f.Name != "success" {
		t.Fatalf("\"y\" after a refused binding type: %s", f.Raw)
	}

	// Never tried -PLUS: "y" is a downgrade. With max-failures 1 and one
	// failure per minute from this address, it ends the stream and
	// throttles the address, which shows that it, unlike the refusals
	// above, counted.
	r = dialRawTLS(t, e)
	if f := r.scram("SCRAM-SHA-256", yClient()); f.Name != "failure" || !client.Contains(f, "<not-authorized/>") {
		t.Fatalf("\"y\" without a -PLUS attempt: %s", f.Raw)
	}
	if st, err := r.rd.Next(); err != nil || !client.Contains(st, "<policy-violation") {
		t.Fatalf("after the downgrade: %v %v", st, err)
	}
	r = dialRawTLS(t, e)
	if f := r.scram("SCRAM-SHA-256", yClient()); f.Name != "failure" || !client.Contains(f, "<temporary-auth-failure/>") {
		t.Fatalf("from a throttled address: %s", f.Raw)
	}
}

// TestBindingRefusalsAreBounded: refusals for the binding type are free
// only as many times as -PLUS mechanisms are offered; after that they count
// as failed attempts (a client cannot loop on them for ever).
func TestBindingRefusalsAreBounded(t *testing.T) {
	e := servertest.Start(t, func(c *conf.Config) { c.Auth.MaxFailures = 1 })
	r := dialRawTLS(t, e)
	for i := 0; i < 4; i++ {
		if f := r.plusUnique("SCRAM-SHA-256-PLUS"); f.Name != "failure" || !client.Contains(f, "<invalid-mechanism/>") {
			t.Fatalf("attempt %d: %s", i, f.Raw)
		}
	}
	if st, err := r.rd.Next(); err != nil || !client.Contains(st, "<policy-violation") {
		t.Fatalf("after four refusals: %v %v", st, err)
	}
}

// TestServerEndPointAfterReload: tls-server-end-point binds to the
// certificate the handshake presented, even when a new one is loaded (as
// by SIGHUP) between the handshake and SASL.
func TestServerEndPointAfterReload(t *testing.T) {
	for _, max := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		e := servertest.Start(t, nil)
		e.AddUser("alice", "secret-pw")
		r := dialRawTLSWith(t, e, max, func() {
			dir := e.Config.DataDir
			if err := certs.GenerateSelfSigned(filepath.Join(dir, "selfsigned.crt"), filepath.Join(dir, "selfsigned.key"), e.Config.Hosts); err != nil {
				t.Fatal(err)
			}
			if err := e.Srv.ReloadCertificates(); err != nil {
				t.Fatal(err)
			}
		})
		cs := r.c.ConnectionState()
		if bytes.Equal(e.Srv.Certs.Leaf().Raw, cs.PeerCertificates[0].Raw) {
			t.Fatal("the reload did not change the certificate")
		}
		m, err := sasl.NewClient("SCRAM-SHA-256-PLUS", "alice", "secret-pw", sasl.ClientOptions{
			Bindings:    sasl.BindingsFromTLS(cs, cs.PeerCertificates[0]),
			BindingType: sasl.BindingTLSServerEndPoint,
		})
		if err != nil {
			t.Fatal(err)
		}
		if f := r.scram("SCRAM-SHA-256-PLUS", m); f.Name != "success" {
			t.Fatalf("TLS %x: tls-server-end-point after a reload: %s", max, f.Raw)
		}
	}
}
