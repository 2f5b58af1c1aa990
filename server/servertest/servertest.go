// Package servertest starts a real xmppd on 127.0.0.1 with ephemeral ports
// and a temporary data directory, for integration tests over real sockets.
package servertest

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/sasl"
	"github.com/xmppd/xmppd/server"
	"github.com/xmppd/xmppd/storage"
)

// Env is a running server.
type Env struct {
	T      testing.TB
	Srv    *server.Server
	Config *conf.Config
	Domain string
	// Addresses of the listeners: STARTTLS, direct TLS, plain (none) c2s;
	// the WebSocket URL.
	StartTLS, DirectTLS, Plain, WS, BOSH string
}

// Start runs a server; edit may change the configuration first (ports are
// always ephemeral). The server stops when the test ends.
func Start(t testing.TB, edit func(*conf.Config)) *Env {
	t.Helper()
	dir := t.TempDir()
	cfg := conf.Default(dir)
	cfg.Listeners.C2S = []conf.C2SListener{
		{Address: "127.0.0.1:0", TLS: conf.TLSStartTLS},
		{Address: "127.0.0.1:0", TLS: conf.TLSDirect},
		{Address: "127.0.0.1:0", TLS: conf.TLSNone},
	}
	cfg.Listeners.HTTP = []conf.HTTPListener{{Address: "127.0.0.1:0", WebSocketPath: "/xmpp-websocket", BOSHPath: "/http-bind", HostMeta: true}}
	cfg.Auth.FailureDelay = 0
	cfg.Auth.SCRAMIterations = 4096
	if edit != nil {
		edit(cfg)
	}
	var w io.Writer = io.Discard
	if os.Getenv("XMPPD_TEST_LOG") != "" {
		w = os.Stderr
	}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.New(cfg, log)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("server.Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	e := &Env{T: t, Srv: srv, Config: cfg, Domain: cfg.Hosts[0]}
	addrs := srv.C2SAddrs()
	for i, l := range cfg.Listeners.C2S {
		if i >= len(addrs) {
			break
		}
		switch l.TLS {
		case conf.TLSStartTLS:
			e.StartTLS = addrs[i].String()
		case conf.TLSDirect:
			e.DirectTLS = addrs[i].String()
		case conf.TLSNone:
			e.Plain = addrs[i].String()
		}
	}
	if h := srv.HTTPAddrs(); len(h) > 0 {
		e.WS = "ws://" + h[0].String() + "/xmpp-websocket"
		e.BOSH = "http://" + h[0].String() + "/http-bind"
	}
	return e
}

// AddUser creates local@domain with password.
func (e *Env) AddUser(local, password string) string {
	e.T.Helper()
	keys, err := sasl.NewKeys(password, e.Config.Auth.SCRAMIterations)
	if err != nil {
		e.T.Fatal(err)
	}
	j := local + "@" + e.Domain
	if err := e.Srv.Store.Accounts().Create(context.Background(), storage.Account{JID: j, Keys: keys, Created: time.Now()}); err != nil {
		e.T.Fatalf("creating %s: %v", j, err)
	}
	return j
}

// ClientConfig returns a client configuration for local over STARTTLS.
func (e *Env) ClientConfig(local, password, resource string) client.Config {
	return client.Config{
		Addr: e.StartTLS, Mode: client.StartTLS, Domain: e.Domain,
		Username: local, Password: password, Resource: resource,
		TLS: &tls.Config{ServerName: e.Domain, InsecureSkipVerify: true}, //nolint:gosec // self-signed test certificate
	}
}

// Login connects local over STARTTLS and binds resource.
func (e *Env) Login(local, password, resource string) *client.Client {
	e.T.Helper()
	return e.LoginWith(e.ClientConfig(local, password, resource))
}

// LoginWith connects with cfg; the client is closed when the test ends.
func (e *Env) LoginWith(cfg client.Config) *client.Client {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		e.T.Fatalf("login %s@%s/%s: %v", cfg.Username, cfg.Domain, cfg.Resource, err)
	}
	e.T.Cleanup(func() { _ = c.Close() })
	return c
}
